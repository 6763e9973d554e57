"""The Avro codec: contract models ⇄ framed Avro bytes, with schema resolution for old writers.

Events are written, and read when written with their current schema, through the schema's
node tree (`processors.codec.binary`, compiled with the rule core: ADR 42); data an older
version of a schema wrote is read by fastavro, which resolves it to the current one.

Decoding failures are classified (`DecodeError.reason`), never raised as bare exceptions, so
the front door can dead-letter each with a stable reason.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form
from pydantic import ValidationError

from processors.codec import binary, framing
from processors.codec.schemas import expanded, named_types
from processors.contract.base import Event
from processors.contract.catalogue import all_events
from processors.contract.deadletter import DeadLetterReason


class DecodeError(ValueError):
    """Bytes that are not an admissible event; `reason` says which check refused them."""

    def __init__(self, reason: DeadLetterReason, detail: str, event_type: str | None = None):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.event_type = event_type


@dataclass(frozen=True)
class Decoded:
    """An event's data as its Avro schema reads it, before its model validates it.

    `data` has the current schema's field names (an older writer's record is resolved to the
    current schema, defaults filled in), enum symbols as `str`, timestamps as aware UTC
    datetimes: the shape `event.model_dump()` gives. Only bytes encoded from a validated model
    may be used unvalidated (ADR 39)."""

    event: type[Event]
    data: dict[str, Any]

    def partition_key(self) -> str | None:
        """The record key the event must have been produced with: its `key_field`'s value
        (None if that is not a string). Events whose model computes its key otherwise
        (`Event.partition_key` overridden) are never used unvalidated."""
        value = self.data.get(self.event.key_field)
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class WriterSchema:
    """A schema some producer wrote with, and how to read its data as the current model."""

    event: type[Event]
    writer: Any  # parsed by fastavro
    reader: Any  # the current schema of `event`, parsed
    fingerprint: bytes
    tree: binary.Node | None = None
    """The current schema's nodes, which write it and read its data; None for an older
    writer, whose data fastavro resolves to the current schema."""


def schema_fingerprint(schema: dict[str, Any]) -> bytes:
    """CRC-64-AVRO of the parsing canonical form, in single-object byte order."""
    canonical = to_parsing_canonical_form(fastavro.parse_schema(schema, _write_hint=False))
    # fastavro renders the fingerprint as the little-endian bytes, as the framing wants them.
    return bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))


def format_validation_error(error: ValidationError) -> str:
    """Pydantic's errors as `path: message` lines a person can act on."""
    parts = []
    for item in error.errors():
        path = ".".join(str(p) for p in item["loc"]) or "(event)"
        parts.append(f"{path}: {item['msg']}")
    return "; ".join(parts)


HISTORY_DIR = Path(__file__).resolve().parents[2] / "schemas" / "history"
"""Every version of every event schema ever published (`loyalty contract snapshot`)."""


class AvroCodec:
    """Encodes events with their current schema; decodes any known version into the model."""

    def __init__(
        self, events: Iterable[type[Event]] | None = None, history_dir: Path | None = None
    ):
        event_classes = tuple(events or all_events())
        types = named_types(event_classes)
        self._current: dict[type[Event], WriterSchema] = {}
        self._by_fingerprint: dict[bytes, WriterSchema] = {}
        for event in event_classes:
            schema = expanded(event.avro_name(), types)
            parsed = fastavro.parse_schema(schema)
            writer = WriterSchema(
                event, parsed, parsed, schema_fingerprint(schema), binary.tree(parsed)
            )
            self._current[event] = writer
            self._by_fingerprint[writer.fingerprint] = writer
        if history_dir is not None:
            self._load_history(history_dir, {e.avro_name(): e for e in event_classes})

    def _load_history(self, history_dir: Path, by_name: dict[str, type[Event]]) -> None:
        for path in sorted(history_dir.glob("*/*.avsc")):
            event = by_name.get(path.parent.name)
            if event is None:
                continue  # an event retired from the contract: no reader for it any more
            schema = json.loads(path.read_text())
            print_ = schema_fingerprint(schema)
            if print_ not in self._by_fingerprint:
                reader = self._current[event].reader
                self._by_fingerprint[print_] = WriterSchema(
                    event, fastavro.parse_schema(schema), reader, print_
                )

    @classmethod
    def with_history(cls) -> AvroCodec:
        """The codec every process reads its topics with: the current schemas and every
        earlier version, so records written before an upgrade still decode."""
        return cls(history_dir=HISTORY_DIR)

    def fingerprint_of(self, event: type[Event]) -> bytes:
        """The fingerprint `event` is currently written with."""
        return self._current[event].fingerprint

    def encode(self, event: Event) -> bytes:
        """The event as single-object-framed Avro bytes."""
        writer = self._current[type(event)]
        assert writer.tree is not None  # every current schema has its tree
        return framing.frame_single_object(writer.fingerprint, binary.encode(writer.tree, event))

    def decode(self, value: bytes | None) -> Event:
        """The event in `value`; DecodeError with a reason when it is not admissible."""
        return self.validate(self.decode_data(value))

    def decode_data(self, value: bytes | None) -> Decoded:
        """The data in `value`, read with its writer's schema into the current one, not yet
        validated by the model; DecodeError with a reason when the bytes are not an event."""
        if not value:
            raise DecodeError(DeadLetterReason.EMPTY, "record has no value")
        try:
            framed = framing.unframe(value)
        except framing.NotFramedError as error:
            raise DecodeError(DeadLetterReason.NOT_FRAMED, str(error)) from None
        if framed.framing != "single-object":
            raise DecodeError(
                DeadLetterReason.UNKNOWN_SCHEMA,
                f"Confluent-framed value (schema id {framed.schema_ref!r}) but no schema registry "
                "is configured",
            )
        assert isinstance(framed.schema_ref, bytes)
        writer = self._by_fingerprint.get(framed.schema_ref)
        if writer is None:
            raise DecodeError(
                DeadLetterReason.UNKNOWN_SCHEMA,
                f"no known schema has fingerprint {framed.schema_ref.hex()}",
            )
        name = writer.event.__name__
        try:
            datum, used = _read(writer, framed.body)
        except Exception as error:  # noqa: BLE001 - bad bytes raise many types
            raise DecodeError(
                DeadLetterReason.MALFORMED, f"{name} body does not decode: {error!r}", name
            ) from None
        if used != len(framed.body):
            raise DecodeError(
                DeadLetterReason.MALFORMED,
                f"{name} body has {len(framed.body) - used} trailing bytes",
                name,
            )
        assert isinstance(datum, dict)  # every event's schema is a record
        return Decoded(writer.event, datum)

    @staticmethod
    def validate(decoded: Decoded) -> Event:
        """The model of `decoded`; DecodeError (INVALID) when the data breaks the contract."""
        try:
            return decoded.event.model_validate(decoded.data)
        except ValidationError as error:
            name = decoded.event.__name__
            raise DecodeError(
                DeadLetterReason.INVALID, f"{name}: {format_validation_error(error)}", name
            ) from None


def _read(writer: WriterSchema, body: bytes) -> tuple[Any, int]:
    """The data in `body` and the bytes it took: by the schema's tree when it is current, by
    fastavro's resolution into the current schema when an older version wrote it."""
    if writer.tree is not None:
        return binary.decode(writer.tree, body)
    stream = io.BytesIO(body)
    datum = fastavro.schemaless_reader(stream, writer.writer, writer.reader)
    if _holds_nul(datum):  # as the codec's own reader refuses (`binary.Reader.text`)
        raise ValueError("a string holds a NUL character (U+0000)")
    return datum, stream.tell()


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False
