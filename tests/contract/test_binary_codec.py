"""The codec's own Avro encoding (`processors.codec.binary`, ADR 42) writes and reads what
fastavro does, byte for byte and value for value, for every event of the contract."""

import io
import re
import typing
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import annotated_types
import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic.fields import FieldInfo

from loyalty.contract import current_schemas, example
from processors.codec import binary, framing
from processors.codec.avro import AvroCodec, DecodeError
from processors.codec.json_form import from_json_object
from processors.contract.base import Record
from processors.contract.catalogue import all_events
from processors.contract.deadletter import DeadLetterReason
from processors.contract.enrolments import MemberEnrolled


def TEXT(max_size: int) -> st.SearchStrategy[str]:  # noqa: N802 - a strategy, named as one
    """Any text a string of the contract may hold: all of Unicode but NUL (U+0000), which the
    codec refuses to read (`binary.Reader.text`)."""
    return st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=max_size)


SCHEMAS = {event: fastavro.parse_schema(schema) for event, schema in current_schemas().items()}
EVENTS = sorted(SCHEMAS, key=lambda event: event.__name__)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def fastavro_bytes(schema: Any, value: Any) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, schema, value)
    return out.getvalue()


def fastavro_value(schema: Any, data: bytes) -> tuple[Any, int]:
    stream = io.BytesIO(data)
    value = fastavro.schemaless_reader(stream, schema, schema)
    return value, stream.tell()


# --- values of any schema of the contract, as fastavro writes them --------------------------


def values_of(schema: Any, named: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    if isinstance(schema, str):
        if schema in named:
            return named[schema]
        return PRIMITIVES[schema]
    if isinstance(schema, list):
        assert len(schema) == 2
        assert schema[0] == "null"
        return st.none() | values_of(schema[1], named)
    kind, logical = schema["type"], schema.get("logicalType")
    if logical == "timestamp-millis":
        return instants
    if logical == "date":
        return st.dates()
    if logical == "decimal":
        return decimals(schema["precision"], schema.get("scale", 0))
    if kind == "record":
        record = st.fixed_dictionaries(
            {f["name"]: values_of(f["type"], named) for f in schema["fields"]}
        )
        named[schema["name"]] = record
        return record
    if kind == "enum":
        named[schema["name"]] = st.sampled_from(schema["symbols"])
        return named[schema["name"]]
    if kind == "array":
        return st.lists(values_of(schema["items"], named), max_size=3)
    if kind == "map":
        return st.dictionaries(TEXT(max_size=6), values_of(schema["values"], named), max_size=3)
    return values_of(kind, named)


PRIMITIVES = {
    "long": st.integers(min_value=-(2**63), max_value=2**63 - 1),
    "int": st.integers(min_value=-(2**31), max_value=2**31 - 1),
    "string": TEXT(max_size=12),
    "boolean": st.booleans(),
    "bytes": st.binary(max_size=12),
    "null": st.none(),
}
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
# Any aware time (any offset, any microsecond), before and after the epoch.
instants = st.datetimes(
    min_value=datetime(1900, 1, 2), max_value=datetime(2200, 1, 1), timezones=offsets
)


def decimals(precision: int, scale: int) -> st.SearchStrategy[Decimal]:
    """Decimals the type can hold, with any exponent from 0 to `scale` places (2 and 2.000
    are both written)."""
    whole = 10 ** (precision - scale) - 1
    return st.integers(min_value=0, max_value=scale).flatmap(
        lambda places: st.decimals(
            min_value=-whole, max_value=whole, places=places, allow_nan=False,
            allow_infinity=False,
        )
    )  # fmt: skip


@pytest.mark.parametrize("event", EVENTS, ids=lambda event: event.__name__)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_any_value_of_every_event_is_written_and_read_as_fastavro_does(event, data):
    schema = SCHEMAS[event]
    value = data.draw(values_of(schema, {}))
    tree = binary.tree(schema)
    written = binary.encode(tree, value)
    assert written == fastavro_bytes(schema, value)
    read, used = binary.decode(tree, written)
    expected, expected_used = fastavro_value(schema, written)
    assert (repr(read), used) == (repr(expected), expected_used)


@pytest.mark.parametrize("event", EVENTS, ids=lambda event: event.__name__)
def test_every_events_example_is_encoded_from_its_model_as_fastavro_encodes_its_dump(event):
    codec = AvroCodec()
    model = from_json_object(example(event))
    value = codec.encode(model)
    body = fastavro_bytes(SCHEMAS[event], model.model_dump(mode="python"))
    assert value == framing.frame_single_object(codec.fingerprint_of(event), body)
    assert codec.decode(value) == model


def test_every_event_of_the_contract_has_a_tree():
    assert {type(binary.tree(s)) for s in SCHEMAS.values()} == {binary.Record}
    assert len(SCHEMAS) == len(all_events())


# --- bytes that are not a value ------------------------------------------------------------


def _example_body(event: type) -> bytes:
    return fastavro_bytes(SCHEMAS[event], from_json_object(example(event)).model_dump())


@pytest.mark.parametrize("event", EVENTS[:20], ids=lambda event: event.__name__)
def test_a_body_cut_short_anywhere_does_not_read(event):
    tree, body = binary.tree(SCHEMAS[event]), _example_body(event)
    for end in range(len(body)):
        with pytest.raises((ValueError, IndexError)):
            binary.decode(tree, body[:end])


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_bytes_changed_at_random_read_as_fastavro_reads_them_or_not_at_all(data):
    event = data.draw(st.sampled_from(EVENTS))
    body = bytearray(_example_body(event))
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        at = data.draw(st.integers(min_value=0, max_value=len(body) - 1))
        body[at] = data.draw(st.integers(min_value=0, max_value=255))
    schema = SCHEMAS[event]
    try:
        expected: Any = fastavro_value(schema, bytes(body))
    except Exception as error:  # noqa: BLE001 - fastavro raises many types on bad bytes
        expected = error
    try:
        read: Any = binary.decode(binary.tree(schema), bytes(body))
    except Exception as error:  # noqa: BLE001 - as fastavro: the codec reports any as malformed
        read = error
    if isinstance(read, tuple):
        assert repr(read) == repr(expected)
    elif isinstance(expected, tuple):
        # Stricter than fastavro in two ways only: fastavro takes a negative union or enum
        # index as Python does (counting from the end), which no writer writes, and keeps the
        # low 64 bits of a varint too long for Avro's long.
        # And it refuses a string that holds a NUL character, which the contract's cannot.
        allowed = (
            r"(union|enum) index -\d+ out of range|.*(long range|longer than ten bytes).*"
            r"|a string holds a NUL character.*"
        )
        assert re.fullmatch(allowed, str(read)), read


# --- the edges of the types ------------------------------------------------------------------


def test_a_decimal_is_written_by_its_digits_and_exponent_not_only_its_value():
    node = binary.DecimalBytes(12, 3)
    assert binary.encode(node, Decimal("2")) == binary.encode(node, Decimal("2.000"))
    read = [binary.decode(node, binary.encode(node, d))[0] for d in (Decimal(2), Decimal(2))]
    assert [repr(d) for d in read] == ["Decimal('2.000')"] * 2  # read back at the type's scale
    with pytest.raises(ValueError, match="Scale"):
        binary.encode(node, Decimal("2.0000"))  # one place too many, though 2.000 was written
    with pytest.raises(ValueError, match="precision"):
        binary.encode(node, Decimal("12345678901.23"))
    with pytest.raises(ValueError, match="not a Decimal"):
        binary.encode(node, 2.0)


def test_a_decimals_memory_is_bounded():
    node = binary.DecimalBytes(12, 3)
    for n in range(binary._DECIMALS_KEPT + 10):
        binary.decode(node, binary.encode(node, Decimal(n)))
    assert 0 < len(node.written) <= binary._DECIMALS_KEPT
    assert 0 < len(node.read_back) <= binary._DECIMALS_KEPT


def test_times_before_the_epoch_and_dates_read_back():
    schema = {"type": "record", "name": "T", "fields": [
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "on", "type": {"type": "int", "logicalType": "date"}},
    ]}  # fmt: skip
    value = {"at": EPOCH - timedelta(milliseconds=1), "on": date(1969, 12, 31)}
    tree = binary.tree(fastavro.parse_schema(schema))
    assert binary.decode(tree, binary.encode(tree, value))[0] == value


@pytest.mark.parametrize(
    "schema",
    [
        ["string", "long"],
        {"type": "fixed", "name": "F", "size": 4},
        "double",
        {"type": "long", "logicalType": "timestamp-micros"},
    ],
    ids=["union of two types", "fixed", "double", "timestamp-micros"],
)
def test_a_type_the_contract_does_not_use_is_refused_when_the_tree_is_built(schema):
    with pytest.raises(binary.UnsupportedSchemaError):
        binary.tree(schema)


def test_a_string_with_a_nul_character_is_not_read():
    # Found by a user's trial: a name with U+0000 passed the front door, and the projector
    # retried its write for ever (Postgres text and jsonb cannot hold it).
    codec = AvroCodec()
    model = from_json_object(example(MemberEnrolled))
    assert isinstance(model, MemberEnrolled)
    assert model.profile is not None
    named = model.model_copy(
        update={"profile": model.profile.model_copy(update={"first_name": "A\x00B"})}
    )
    with pytest.raises(DecodeError) as refused:
        codec.decode(codec.encode(named))
    assert refused.value.reason is DeadLetterReason.MALFORMED
    assert "NUL character" in refused.value.detail
    assert codec.decode(codec.encode(model)) == model


def test_a_value_the_schema_cannot_hold_is_refused():
    enum = binary.tree({"type": "enum", "name": "E", "symbols": ["A", "B"]})
    with pytest.raises(ValueError, match="symbols"):
        binary.encode(enum, "C")
    with pytest.raises(ValueError, match="out of range"):
        binary.decode(enum, b"\x04")
    with pytest.raises(ValueError, match="union index"):
        binary.decode(binary.tree(["null", "long"]), b"\x04")
    with pytest.raises(ValueError, match="runs past"):
        binary.decode(binary.tree("string"), b"\x01")  # a length of -1


def _varint(n: int) -> bytes:
    """`n` zig-zag encoded with no bound on its size (what a forged record could hold)."""
    n = (n << 1) if n >= 0 else ((-n << 1) - 1)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def test_the_ends_of_avros_long_range_are_written_and_read_as_fastavro_does():
    tree = binary.tree("long")
    for n in (2**63 - 1, -(2**63), 0, -1):
        assert binary.encode(tree, n) == fastavro_bytes("long", n) == _varint(n)
        assert binary.decode(tree, _varint(n)) == (n, len(_varint(n)))


@pytest.mark.parametrize("n", [2**63, -(2**63) - 1, 2**70])
def test_an_integer_outside_avros_long_range_is_neither_written_nor_read(n):
    tree = binary.tree("long")
    with pytest.raises(ValueError, match="long range"):
        binary.encode(tree, n)
    with pytest.raises(ValueError, match=r"long range|longer than ten bytes"):
        binary.decode(tree, _varint(n))


def test_a_varint_that_never_ends_is_refused_at_its_eleventh_byte():
    # Read on, each byte would make a bigger number (a megabyte of them took a minute).
    with pytest.raises(ValueError, match="longer than ten bytes at byte 0"):
        binary.decode(binary.tree("long"), b"\xff" * 1_000_000 + b"\x01")


def _integer_fields(model: type, seen: set[type]) -> list[tuple[str, list[Any]]]:
    """Every int field of `model` and of the records it holds, with its constraints (those of
    the field and of the annotated type it names, `Cents | None` included)."""
    if model in seen:
        return []
    seen.add(model)
    found = []
    for name, info in model.model_fields.items():  # type: ignore[attr-defined]
        kinds, constraints = [info.annotation], list(info.metadata)
        for kind in kinds:  # grows as it goes: unions, Annotated, lists
            for arg in typing.get_args(kind):
                if isinstance(arg, FieldInfo):
                    constraints += arg.metadata
                elif isinstance(arg, annotated_types.BaseMetadata):
                    constraints.append(arg)
                else:
                    kinds.append(arg)
            if isinstance(kind, type) and issubclass(kind, Record):
                found += _integer_fields(kind, seen)
        if int in kinds:
            found.append((f"{model.__name__}.{name}", constraints))
    return found


def test_every_integer_of_the_contract_is_bounded_within_avros_long():
    seen: set[type] = set()
    fields = [field for event in EVENTS for field in _integer_fields(event, seen)]

    def bounded(constraints: list[Any]) -> bool:
        least = [getattr(c, "ge", getattr(c, "gt", None)) for c in constraints]
        most = [getattr(c, "le", getattr(c, "lt", None)) for c in constraints]
        return any(v is not None and v >= binary.LONG_MIN for v in least) and any(
            v is not None and v <= binary.LONG_MAX for v in most
        )

    assert len(fields) > 100
    assert [name for name, constraints in fields if not bounded(constraints)] == []


def test_a_block_that_says_its_size_in_bytes_reads_as_fastavro_reads_it():
    # Two items in a block of count -2 and 2 bytes (Avro's optional form), then the end.
    data = b"\x03\x04\x02\x04\x00"
    for schema in ({"type": "array", "items": "long"}, {"type": "map", "values": "long"}):
        body = data if schema["type"] == "array" else b"\x03\x08\x02a\x02\x02b\x04\x00"
        assert binary.decode(binary.tree(schema), body) == fastavro_value(schema, body)
