"""Topic `loyalty.deadletter.v1`: inputs that could not be admitted, kept with the reason."""

from __future__ import annotations

from typing import ClassVar

from pydantic import ConfigDict, Field

from processors.contract.base import LONG_MAX, ContractEnum, Event, Id, Text


class DeadLetterReason(ContractEnum):
    """Why a record was refused at the front door, from the outermost check inwards."""

    EMPTY = "EMPTY"  # no value (and not a tombstone on a compacted topic)
    NOT_FRAMED = "NOT_FRAMED"  # neither Avro single-object nor Confluent wire format
    UNKNOWN_SCHEMA = "UNKNOWN_SCHEMA"  # framed, but the schema fingerprint/id is not ours
    MALFORMED = "MALFORMED"  # the Avro body does not decode with its writer schema
    INVALID = "INVALID"  # decoded, but breaks a rule of the contract (pydantic validation)
    WRONG_TOPIC = "WRONG_TOPIC"  # a valid event of a type that does not belong on this topic
    KEY_MISMATCH = "KEY_MISMATCH"  # the record key is not the event's partition key
    # Admitted, but the rules raised: a bug to fix; the record is kept to be replayed after it.
    PROCESSING_FAILED = "PROCESSING_FAILED"
    # Admitted, but its id (transaction_id, return_id, command_id, event_id) already names
    # another body: refused whole, `error` gives both digests (docs/adr/0019-one-id-one-event).
    CONFLICT = "CONFLICT"
    # Admitted, but a rule refuses it whole (e.g. an enrolment into a programme that does not
    # exist, is another market's, or is closed): `error` starts with the stable reason.
    REFUSED = "REFUSED"
    UNKNOWN = "UNKNOWN"


class DeadLettered(Event):
    """An input record was refused before any rule ran; its bytes are kept for replay."""

    # Bytes appear in the JSON form as base64, so any original value survives the round trip.
    model_config = ConfigDict(
        frozen=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64"
    )

    topic: ClassVar[str] = "loyalty.deadletter.v1"
    key_field: ClassVar[str] = "original_topic"

    original_topic: Id = Field(description="Topic the refused record was read from.")
    original_partition: int = Field(ge=0, le=LONG_MAX, description="Partition it was read from.")
    original_offset: int = Field(ge=0, le=LONG_MAX, description="Its offset in that partition.")
    original_key: bytes | None = Field(default=None, description="Its key bytes, unchanged.")
    original_value: bytes | None = Field(default=None, description="Its value bytes, unchanged.")
    reason: DeadLetterReason = Field(description="Which front-door check refused it.")
    error: Text = Field(description="What was wrong, for a person: field paths and messages.")
    event_type: str | None = Field(
        default=None, max_length=128, description="The event type, when it could be read."
    )

    def partition_key(self) -> str:
        # Produced with the original key bytes (see processors.frontdoor); this is a fallback.
        return self.original_topic
