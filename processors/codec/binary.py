"""Avro's binary encoding of the contract's events, through a tree of typed nodes built once
per schema (docs/adr/0042-the-avro-codec-compiled.md).

`tree(schema)` turns a parsed schema (fastavro's `parse_schema` of an event's expanded
schema) into nodes, one per Avro type, each knowing how to write and read its own values; an
event is then encoded by walking its record's nodes, with no look-up of what a field is at
run time. Compiled with the rule core (`scripts/compile_rules.py`), each node is a native
class and each write and read a C call: this is what makes the codec cheaper than fastavro's
generic reader and writer, which interpret the schema for every value. Without a build it
runs as Python, slower than fastavro at reading (the schema interpretation is what costs,
and here it is Python), faster at writing, and alike in what it writes and reads.

What it writes and reads is fastavro's, byte for byte and value for value
(`tests/contract/test_binary_codec.py` checks every event's schema against fastavro), but for
two refusals fastavro does not make: a negative union or enum index (fastavro counts it from
the end of the list) and an integer outside Avro's long range, written or read (fastavro
cannot write one, and reads only its low 64 bits). The codec keeps fastavro for what this
module does not do: reading data written with another version of a schema (schema
resolution), and parsing schemas. The types are those the
contract uses (`processors.codec.schemas`): null, boolean, int and long, string, bytes,
records, enums, arrays, string maps, unions of null and one type, and the logical types
timestamp-millis, date and decimal on bytes. A schema with anything else is refused when its
tree is built (`UnsupportedSchemaError`), not when a value meets it.

A record is written from a model (its fields read as attributes) or from a dict (its fields
read as keys; every field must be present: no default is filled in); it is read as a dict,
enums as their symbols, as fastavro reads them. Bytes that are not a value of the schema
(cut short, a union or enum index out of range, a negative length, a varint of more than ten
bytes, text that is not UTF-8 or holds a NUL character, a time past year 9999) raise
`ValueError`, `IndexError` or `OverflowError`; the codec reports any error as malformed bytes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Context, Decimal
from typing import Any, Final

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
LONG_MIN: Final = -(2**63)
LONG_MAX: Final = 2**63 - 1
_DECIMALS_KEPT: Final = 4096
"""Decimals remembered per decimal type, written and read: quantities repeat (1.000, 2.000)."""


class UnsupportedSchemaError(ValueError):
    """A schema uses an Avro type the contract does not (`processors.codec.schemas`)."""


class Reader:
    """A position in the bytes being read."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.position = 0

    def long(self) -> int:
        """A zig-zag varint (Avro's int and long): ten bytes at most, a 64-bit value."""
        data = self.data
        position = self.position
        byte = data[position]
        position += 1
        value = byte & 0x7F
        shift = 7
        while byte & 0x80:
            if shift > 63:
                raise ValueError(f"a varint longer than ten bytes at byte {self.position}")
            byte = data[position]
            position += 1
            value |= (byte & 0x7F) << shift
            shift += 7
        decoded = (value >> 1) ^ -(value & 1)
        if not LONG_MIN <= decoded <= LONG_MAX:
            raise ValueError(f"a varint at byte {self.position} is out of Avro's long range")
        self.position = position
        return decoded

    def sized(self) -> bytes:
        """A length, then that many bytes (Avro's bytes and string)."""
        size = self.long()
        start = self.position
        end = start + size
        if size < 0 or end > len(self.data):
            raise ValueError(f"a length of {size} at byte {start} runs past the data")
        self.position = end
        return self.data[start:end]

    def text(self) -> str:
        """A string: UTF-8 without a NUL character (U+0000), which Postgres text and jsonb
        cannot hold (a name with one stalled the projector: a user's trial)."""
        raw = self.sized()
        if b"\x00" in raw:
            raise ValueError(f"a string holds a NUL character (U+0000) before byte {self.position}")
        return raw.decode()

    def block(self) -> int:
        """How many items the next block of an array or map holds; 0: no more blocks."""
        count = self.long()
        if count < 0:  # a block that also says its size in bytes
            self.long()
            return -count
        return count


def put_long(out: bytearray, value: int) -> None:
    """`value` as a zig-zag varint; ValueError outside Avro's long range (a signed 64-bit
    integer), which the encoding cannot hold."""
    if not LONG_MIN <= value <= LONG_MAX:
        raise ValueError(f"{value} is out of Avro's long range")
    n = (value << 1) ^ (value >> 63)
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def put_text(out: bytearray, value: str) -> None:
    data = value.encode()
    put_long(out, len(data))
    out += data


class Node:
    """One Avro type: writes its values to bytes and reads them back."""

    def write(self, out: bytearray, value: Any) -> None:
        raise NotImplementedError

    def read(self, reader: Reader) -> Any:
        raise NotImplementedError


class Null(Node):
    def write(self, out: bytearray, value: Any) -> None:
        if value is not None:
            raise ValueError(f"{value!r} is not null")

    def read(self, reader: Reader) -> Any:
        return None


class Boolean(Node):
    def write(self, out: bytearray, value: Any) -> None:
        out.append(1 if value else 0)

    def read(self, reader: Reader) -> Any:
        byte = reader.data[reader.position]
        reader.position += 1
        return byte != 0


class Long(Node):
    """Avro's int and long (one encoding)."""

    def write(self, out: bytearray, value: Any) -> None:
        put_long(out, value)

    def read(self, reader: Reader) -> Any:
        return reader.long()


class String(Node):
    def write(self, out: bytearray, value: Any) -> None:
        put_text(out, value)

    def read(self, reader: Reader) -> Any:
        return reader.text()


class Bytes(Node):
    def write(self, out: bytearray, value: Any) -> None:
        put_long(out, len(value))
        out += value

    def read(self, reader: Reader) -> Any:
        return reader.sized()


class TimestampMillis(Node):
    """An aware datetime as milliseconds since the epoch; read back in UTC."""

    def write(self, out: bytearray, value: Any) -> None:
        delta: timedelta = value - _EPOCH
        put_long(out, (delta.days * 86400 + delta.seconds) * 1000 + delta.microseconds // 1000)

    def read(self, reader: Reader) -> Any:
        return _EPOCH + timedelta(microseconds=reader.long() * 1000)


class Date(Node):
    """A date as days since the epoch."""

    def write(self, out: bytearray, value: Any) -> None:
        put_long(out, value.toordinal() - _EPOCH_ORDINAL)

    def read(self, reader: Reader) -> Any:
        return date.fromordinal(reader.long() + _EPOCH_ORDINAL)


class DecimalBytes(Node):
    """A Decimal as its unscaled value at the type's scale, big-endian two's complement; its
    errors are fastavro's (more digits than the precision, more places than the scale)."""

    def __init__(self, precision: int, scale: int) -> None:
        self.precision = precision
        self.scale = scale
        self.context = Context(prec=precision)
        self.written: dict[str, bytes] = {}
        self.read_back: dict[bytes, Decimal] = {}  # a Decimal is immutable: one may be shared

    def write(self, out: bytearray, value: Any) -> None:
        # Keyed by the text, which keeps the exponent: 2 and 2.000 are one number but not
        # one decimal, and only the digits and exponent decide whether it may be written.
        if not isinstance(value, Decimal):
            raise ValueError(f"{value!r} is not a Decimal")
        key = str(value)
        data = self.written.get(key)
        if data is None:
            data = self._encoded(value)
            if len(self.written) >= _DECIMALS_KEPT:
                self.written.clear()
            self.written[key] = data
        out += data

    def _encoded(self, value: Decimal) -> bytes:
        sign, digits, exponent = value.as_tuple()
        if not isinstance(exponent, int):
            raise ValueError(f"{value} is not a finite decimal")
        if len(digits) > self.precision:
            raise ValueError("The decimal precision is bigger than allowed by schema")
        shift = exponent + self.scale
        if shift < 0:
            raise ValueError("Scale provided in schema does not match the decimal")
        unscaled = 0
        for digit in digits:
            unscaled = unscaled * 10 + digit
        unscaled *= 10**shift
        size = (unscaled.bit_length() + 8) // 8
        data = (-unscaled if sign else unscaled).to_bytes(size, "big", signed=True)
        out = bytearray()
        put_long(out, len(data))
        out += data
        return bytes(out)

    def read(self, reader: Reader) -> Any:
        data = reader.sized()
        value = self.read_back.get(data)
        if value is None:
            unscaled = int.from_bytes(data, "big", signed=True)
            value = self.context.create_decimal(unscaled).scaleb(-self.scale, self.context)
            if len(self.read_back) >= _DECIMALS_KEPT:
                self.read_back.clear()
            self.read_back[data] = value
        return value


class Enum(Node):
    """A symbol (a str or a str enum's member) by its position."""

    def __init__(self, symbols: list[str]) -> None:
        self.symbols = symbols
        self.positions = {symbol: i for i, symbol in enumerate(symbols)}

    def write(self, out: bytearray, value: Any) -> None:
        position = self.positions.get(value)
        if position is None:
            raise ValueError(f"{value!r} is not one of the enum's symbols")
        put_long(out, position)

    def read(self, reader: Reader) -> Any:
        position = reader.long()
        if not 0 <= position < len(self.symbols):
            raise ValueError(f"enum index {position} out of range")
        return self.symbols[position]


class Nullable(Node):
    """The union of null and one other type, null first (the contract's only union)."""

    def __init__(self, other: Node) -> None:
        self.other = other

    def write(self, out: bytearray, value: Any) -> None:
        if value is None:
            out.append(0)
        else:
            out.append(2)  # branch 1, zig-zag encoded
            self.other.write(out, value)

    def read(self, reader: Reader) -> Any:
        branch = reader.long()
        if branch == 0:
            return None
        if branch != 1:
            raise ValueError(f"union index {branch} out of range")
        return self.other.read(reader)


class Array(Node):
    """Written as one block (fastavro's way); blocks of any size read."""

    def __init__(self, items: Node) -> None:
        self.items = items

    def write(self, out: bytearray, value: Any) -> None:
        if len(value):
            put_long(out, len(value))
            items = self.items
            for item in value:
                items.write(out, item)
        out.append(0)

    def read(self, reader: Reader) -> Any:
        found: list[Any] = []
        items = self.items
        count = reader.block()
        while count != 0:
            for _ in range(count):
                found.append(items.read(reader))
            count = reader.block()
        return found


class Map(Node):
    """String keys; written as one block, blocks of any size read."""

    def __init__(self, values: Node) -> None:
        self.values = values

    def write(self, out: bytearray, value: Any) -> None:
        if len(value):
            put_long(out, len(value))
            values = self.values
            for key, item in value.items():
                put_text(out, key)
                values.write(out, item)
        out.append(0)

    def read(self, reader: Reader) -> Any:
        found: dict[str, Any] = {}
        values = self.values
        count = reader.block()
        while count != 0:
            for _ in range(count):
                key = reader.text()
                found[key] = values.read(reader)
            count = reader.block()
        return found


class Record(Node):
    """Its fields in order; from a model's attributes or a dict's keys, read as a dict."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.names: list[str] = []
        self.nodes: list[Node] = []

    def write(self, out: bytearray, value: Any) -> None:
        nodes = self.nodes
        if isinstance(value, dict):
            for i, name in enumerate(self.names):
                nodes[i].write(out, value[name])
        else:
            for i, name in enumerate(self.names):
                nodes[i].write(out, getattr(value, name))

    def read(self, reader: Reader) -> Any:
        found: dict[str, Any] = {}
        nodes = self.nodes
        for i, name in enumerate(self.names):
            found[name] = nodes[i].read(reader)
        return found


def tree(schema: Any) -> Node:
    """The nodes of a parsed schema; UnsupportedSchemaError for a type the contract does not use."""
    return _node(schema, {})


def _node(schema: Any, named: dict[str, Node]) -> Node:
    if isinstance(schema, str):
        found = named.get(schema)
        return found if found is not None else _primitive(schema)
    if isinstance(schema, list):
        if len(schema) == 2 and schema[0] == "null":
            return Nullable(_node(schema[1], named))
        raise UnsupportedSchemaError(f"a union other than [null, T]: {schema!r}")
    if not isinstance(schema, dict):
        raise UnsupportedSchemaError(f"not a schema: {schema!r}")
    kind = schema["type"]
    logical = schema.get("logicalType")
    if logical is not None:
        return _logical(schema, kind, logical)
    if kind == "record":
        record = Record(schema["name"])
        named[record.name] = record  # before its fields: a record may contain itself
        for field in schema["fields"]:
            record.names.append(field["name"])
            record.nodes.append(_node(field["type"], named))
        return record
    if kind == "enum":
        enum = Enum(list(schema["symbols"]))
        named[schema["name"]] = enum
        return enum
    if kind == "array":
        return Array(_node(schema["items"], named))
    if kind == "map":
        return Map(_node(schema["values"], named))
    return _node(kind, named)


def _logical(schema: dict[str, Any], kind: Any, logical: Any) -> Node:
    if logical == "timestamp-millis" and kind == "long":
        return TimestampMillis()
    if logical == "date" and kind == "int":
        return Date()
    if logical == "decimal" and kind == "bytes":
        return DecimalBytes(int(schema["precision"]), int(schema.get("scale", 0)))
    raise UnsupportedSchemaError(f"logical type {logical!r} on {kind!r}")


def _primitive(name: str) -> Node:
    if name in ("long", "int"):
        return Long()
    if name == "string":
        return String()
    if name == "boolean":
        return Boolean()
    if name == "bytes":
        return Bytes()
    if name == "null":
        return Null()
    raise UnsupportedSchemaError(f"type {name!r}")


def encode(node: Node, value: Any) -> bytes:
    """`value` in Avro's binary encoding."""
    out = bytearray()
    node.write(out, value)
    return bytes(out)


def decode(node: Node, data: bytes) -> tuple[Any, int]:
    """The value at the start of `data`, and how many bytes it took."""
    reader = Reader(data)
    value = node.read(reader)
    return value, reader.position
