"""The front door: every consumed record is decoded and validated before any rule runs.

`admit` turns one delivered record into either the event it carries or a `DeadLettered` fact
saying why it was refused. `FrontDoor.admit_all` does it for a batch and returns both;
`FrontDoor.send_dead` sends a refusal to `loyalty.deadletter.v1` (with the original key, bytes,
topic/partition/offset and the reason). The batch protocol (`processors.runtime.batch`) waits
for those acknowledgements before the offsets are committed (DESIGN.md §7: no silent drops).
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, overload

from aiokafka import AIOKafkaProducer
from prometheus_client import Counter

from processors.base.logs import get_logger
from processors.base.topics import CONFIG, DEADLETTER
from processors.codec.avro import AvroCodec, Decoded, DecodeError
from processors.contract.base import Event
from processors.contract.catalogue import events_on
from processors.contract.deadletter import DeadLettered, DeadLetterReason

log = get_logger(__name__)

DEAD_LETTERS = Counter(
    "loyalty_dead_letters_total",
    "Input records refused at the front door and sent to the dead-letter topic.",
    ["topic", "reason"],
)
ADMITTED = Counter(
    "loyalty_events_admitted_total", "Input records decoded and validated.", ["topic", "type"]
)


@dataclass(frozen=True)
class Delivered:
    """A record as Kafka delivered it, before anything is trusted about it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int

    @classmethod
    def of(cls, record: object) -> Delivered:
        """From an aiokafka ConsumerRecord (or anything with the same attributes)."""
        return cls(
            topic=record.topic,  # type: ignore[attr-defined]
            partition=record.partition,  # type: ignore[attr-defined]
            offset=record.offset,  # type: ignore[attr-defined]
            key=record.key,  # type: ignore[attr-defined]
            value=record.value,  # type: ignore[attr-defined]
            timestamp_ms=record.timestamp,  # type: ignore[attr-defined]
        )


@dataclass(frozen=True)
class Tombstone:
    """A null value on the compacted config topic: the entity under `key` was deleted."""

    key: bytes | None


@overload
def admit(
    codec: AvroCodec,
    delivered: Delivered,
    contract_topic: str | None = None,
    *,
    trusted: Literal[False] = False,
) -> Event | Tombstone | DeadLettered: ...


@overload
def admit(
    codec: AvroCodec, delivered: Delivered, contract_topic: str | None = None, *, trusted: bool
) -> Event | Decoded | Tombstone | DeadLettered: ...


def admit(
    codec: AvroCodec,
    delivered: Delivered,
    contract_topic: str | None = None,
    *,
    trusted: bool = False,
) -> Event | Decoded | Tombstone | DeadLettered:
    """The event `delivered` carries, a tombstone, or why it must be dead-lettered.

    `contract_topic` is the contract topic the record's topic stands for, when its name differs
    (a prefixed deployment, a test topic); by default the record's own topic.

    Checks, outermost first: a value is present; it is framed; its schema is known; the body
    decodes; the event is valid; its type belongs on this topic; the key is its partition key.

    `trusted`: the topic carries the engine's own output, encoded from models validated when
    they were made, so the data is not validated a second time and is returned `Decoded`;
    every other check still refuses (ADR 39).
    """
    contract_topic = contract_topic or delivered.topic
    if delivered.value is None and contract_topic == CONFIG.name:
        return Tombstone(delivered.key)
    try:
        decoded = codec.decode_data(delivered.value)
        event: Event | Decoded = decoded if trusted else codec.validate(decoded)
    except DecodeError as error:
        return refuse(delivered, error.reason, error.detail, error.event_type)
    name = decoded.event.__name__
    allowed = events_on(contract_topic)
    if decoded.event not in allowed:
        return refuse(
            delivered,
            DeadLetterReason.WRONG_TOPIC,
            f"{name} does not belong on {contract_topic}; allowed: "
            f"{', '.join(sorted(e.__name__ for e in allowed)) or 'none'}",
            name,
        )
    expected = event.partition_key()
    if expected is None or delivered.key != expected.encode():
        return refuse(
            delivered,
            DeadLetterReason.KEY_MISMATCH,
            f"{name} must be keyed by {decoded.event.key_field} {expected!r}, "
            f"got {delivered.key!r}",
            name,
        )
    return event


def refuse(
    delivered: Delivered, reason: DeadLetterReason, detail: str, event_type: str | None
) -> DeadLettered:
    """The dead letter for `delivered`: its bytes, its position, and why."""
    return DeadLettered(
        # Derived from the record's position: a redelivered poison pill gets the same id.
        event_id=f"dlq:{delivered.topic}:{delivered.partition}:{delivered.offset}",
        occurred_at=datetime.fromtimestamp(delivered.timestamp_ms / 1000, tz=UTC),
        original_topic=delivered.topic,
        original_partition=delivered.partition,
        original_offset=delivered.offset,
        original_key=delivered.key,
        original_value=delivered.value,
        reason=reason,
        error=detail[:4000],
        event_type=event_type,
    )


class FrontDoor:
    """Admits records for a consumer; sends the refused ones to the dead-letter topic."""

    def __init__(
        self,
        codec: AvroCodec,
        producer: AIOKafkaProducer,
        *,
        dead_letter_topic: str = DEADLETTER.name,
        contract_topics: Mapping[str, str] | None = None,
    ):
        """`contract_topics` maps a consumed topic's name to the contract topic it carries
        when the two differ; `dead_letter_topic` likewise redirects refusals."""
        self.codec = codec
        self.producer = producer
        self.dead_letter_topic = dead_letter_topic
        self.contract_topics = dict(contract_topics or {})
        self._admitted: dict[tuple[str, type], Any] = {}  # labelled counters, looked up once

    def admit_all(
        self, records: Iterable[Delivered]
    ) -> tuple[list[tuple[Delivered, Event | Tombstone]], list[DeadLettered]]:
        """What `records` carry, in order, and the dead letters of those refused (to be sent,
        with `send_dead`, before the records' offsets are committed)."""
        admitted: list[tuple[Delivered, Event | Tombstone]] = []
        dead: list[DeadLettered] = []
        for delivered in records:
            event = admit(self.codec, delivered, self.contract_topics.get(delivered.topic))
            if isinstance(event, DeadLettered):
                dead.append(event)
                continue
            if isinstance(event, Event):
                labels = (delivered.topic, type(event))
                counter = self._admitted.get(labels)
                if counter is None:
                    counter = self._admitted[labels] = ADMITTED.labels(
                        delivered.topic, type(event).__name__
                    )
                counter.inc()
            admitted.append((delivered, event))
        return admitted, dead

    async def send_dead(self, dead: DeadLettered) -> Awaitable[object]:
        """Send a dead letter; the returned future is the broker's acknowledgement."""
        DEAD_LETTERS.labels(dead.original_topic, dead.reason.value).inc()
        log.warning(
            "frontdoor.dead_lettered",
            topic=dead.original_topic,
            partition=dead.original_partition,
            offset=dead.original_offset,
            reason=dead.reason.value,
            error=dead.error[:300],
        )
        future: Awaitable[object] = await self.producer.send(
            self.dead_letter_topic, self.codec.encode(dead), key=dead.original_key
        )
        return future
