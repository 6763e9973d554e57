"""The Avro codec: events round-trip; bad bytes are refused with a stable, specific reason."""

import io
import json
from datetime import UTC, datetime

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.codec import framing
from processors.codec.avro import AvroCodec, DecodeError, schema_fingerprint
from processors.codec.json_form import from_json_object, to_json_object
from processors.codec.schemas import expanded, named_types
from processors.contract.common import Store
from processors.contract.deadletter import DeadLetterReason
from processors.contract.transactions import TransactionCompleted, TransactionLine
from tests.builders import purchase


@pytest.fixture(scope="module")
def codec() -> AvroCodec:
    return AvroCodec()


def test_an_event_round_trips_through_avro_unchanged(codec):
    event = purchase()
    assert codec.decode(codec.encode(event)) == event


def test_the_value_is_single_object_framed_with_the_schema_fingerprint(codec):
    value = codec.encode(purchase())
    assert value[:2] == b"\xc3\x01"
    assert value[2:10] == codec.fingerprint_of(TransactionCompleted)


amounts = st.integers(min_value=0, max_value=10**9)
quantities = st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False)
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
ids = st.text(alphabet="ABCdef0123456789-_", min_size=1, max_size=20)


@settings(max_examples=200, deadline=None)
@given(
    amount=amounts,
    quantity=quantities,
    at=instants,
    member=st.none() | ids,
    codes=st.lists(ids, max_size=3),
    province=st.none() | st.sampled_from(["QC", "ON", "BC"]),
)
def test_any_purchase_round_trips_through_avro_and_json(
    codec, amount, quantity, at, member, codes, province
):
    line = TransactionLine(line_id="1", sku="S", quantity=quantity, unit_price_cents=amount,
                           amount_cents=amount)  # fmt: skip
    event = purchase(occurred_at=at, member_id=member, promo_codes=codes, lines=[line],
                     store=Store(store_id="S9", province=province))  # fmt: skip
    assert codec.decode(codec.encode(event)) == event
    as_json = to_json_object(event)
    assert to_json_object(from_json_object(json.loads(json.dumps(as_json)))) == as_json


def test_anonymous_purchases_are_keyed_by_transaction():
    assert purchase(member_id=None).partition_key() == "T1"
    assert purchase().partition_key() == "M1"


def test_times_are_kept_in_utc_to_the_millisecond():
    event = purchase(occurred_at=datetime.fromisoformat("2026-11-02T05:30:00.123456-04:00"))
    assert event.occurred_at == datetime(2026, 11, 2, 9, 30, 0, 123000, tzinfo=UTC)
    assert to_json_object(event)["occurred_at"] == "2026-11-02T09:30:00.123000Z"


def refusal(codec: AvroCodec, value: bytes | None) -> DecodeError:
    with pytest.raises(DecodeError) as caught:
        codec.decode(value)
    return caught.value


def test_an_empty_value_is_refused_as_empty(codec):
    assert refusal(codec, b"").reason is DeadLetterReason.EMPTY
    assert refusal(codec, None).reason is DeadLetterReason.EMPTY


def test_plain_json_is_refused_as_not_framed(codec):
    error = refusal(codec, b'{"type": "TransactionCompleted"}')
    assert error.reason is DeadLetterReason.NOT_FRAMED
    assert "7b227479" in error.detail


def test_an_unknown_fingerprint_is_refused_as_unknown_schema(codec):
    error = refusal(codec, framing.frame_single_object(b"\x00" * 8, b"\x02"))
    assert error.reason is DeadLetterReason.UNKNOWN_SCHEMA


def test_a_confluent_frame_without_a_registry_is_refused_as_unknown_schema(codec):
    error = refusal(codec, framing.frame_confluent(42, b"\x02"))
    assert error.reason is DeadLetterReason.UNKNOWN_SCHEMA
    assert "schema id 42" in error.detail


def test_a_truncated_body_is_refused_as_malformed(codec):
    value = codec.encode(purchase())
    error = refusal(codec, value[: len(value) // 2])
    assert error.reason is DeadLetterReason.MALFORMED
    assert error.event_type == "TransactionCompleted"


def test_trailing_bytes_are_refused_as_malformed(codec):
    error = refusal(codec, codec.encode(purchase()) + b"\x00")
    assert error.reason is DeadLetterReason.MALFORMED
    assert "trailing" in error.detail


def _raw_encode(codec: AvroCodec, datum: dict) -> bytes:
    schema = expanded(TransactionCompleted.avro_name(), named_types([TransactionCompleted]))
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(schema), datum)
    return framing.frame_single_object(codec.fingerprint_of(TransactionCompleted), body.getvalue())


def test_a_well_formed_but_invalid_event_is_refused_with_the_field_and_rule(codec):
    datum = purchase().model_dump(mode="python")
    datum["lines"][0]["amount_cents"] = -5
    datum["currency"] = "cad"
    error = refusal(codec, _raw_encode(codec, datum))
    assert error.reason is DeadLetterReason.INVALID
    assert "lines.0.amount_cents: Input should be greater than or equal to 0" in error.detail
    assert "currency: String should match pattern" in error.detail


def test_data_written_with_an_older_schema_is_read_with_the_current_one(tmp_path):
    # An older TransactionCompleted had no tenders and no discount_cents on its lines.
    old = expanded(TransactionCompleted.avro_name(), named_types([TransactionCompleted]))
    old["fields"] = [f for f in old["fields"] if f["name"] != "tenders"]
    line_record = next(f for f in old["fields"] if f["name"] == "lines")["type"]["items"]
    line_record["fields"] = [f for f in line_record["fields"] if f["name"] != "discount_cents"]
    folder = tmp_path / TransactionCompleted.avro_name()
    folder.mkdir()
    (folder / "001-old.avsc").write_text(json.dumps(old))
    codec = AvroCodec(history_dir=tmp_path)

    datum = purchase().model_dump(mode="python")
    del datum["tenders"]
    del datum["lines"][0]["discount_cents"]
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(old), datum)
    value = framing.frame_single_object(schema_fingerprint(old), body.getvalue())

    decoded = codec.decode(value)
    assert decoded == purchase(tenders=[])
    assert decoded.lines[0].discount_cents == 0
