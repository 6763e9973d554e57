"""`loyalty dead-letters`: what the front door and the rules refused, and its replay.

Every refused input is kept on `loyalty.deadletter.v1` with its original key and value bytes,
where it came from and why (`DeadLettered`). Some refusals wait for something else, not for a
fix of the record: a purchase beyond the parked limit of a member not yet enrolled
(`REFUSED`, `parked_limit`), a record the rules raised on (`PROCESSING_FAILED`, replayed once
the bug is fixed). Replay produces the chosen records' original key and value again, unchanged,
to their original topic: the engine judges them as new deliveries, and one id means one event
(ADR 19), so a record that was applied meanwhile changes nothing and one refused again is
dead-lettered again. Reads the topic from its beginning to the end offsets seen at the start.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer

from loyalty.audit import Position, read_topic
from processors.base.settings import Settings
from processors.base.topics import DEADLETTER
from processors.codec.avro import AvroCodec, DecodeError
from processors.contract.deadletter import DeadLettered, DeadLetterReason


@dataclass(frozen=True)
class Letter:
    """A dead letter and where it sits on the dead-letter topic."""

    at: Position
    letter: DeadLettered

    @property
    def refusal(self) -> str:
        """The rule's stable reason for a `REFUSED` one (the error's first word), else ''."""
        if self.letter.reason is not DeadLetterReason.REFUSED:
            return ""
        return self.letter.error.split(":", 1)[0]


async def read_letters(settings: Settings, codec: AvroCodec | None = None) -> list[Letter]:
    """Every dead letter of the deployment, in each partition's order."""
    codec = codec or AvroCodec.with_history()
    topic = settings.topic(DEADLETTER.name)
    letters = []
    for position, value in await read_topic(
        settings.bootstrap_servers, topic, DEADLETTER.partitions(settings.partitions)
    ):
        try:
            event = codec.decode(value) if value is not None else None
        except DecodeError:
            continue  # not one of ours: nothing to replay from it
        if isinstance(event, DeadLettered):
            letters.append(Letter(position, event))
    return letters


def chosen(
    letters: Sequence[Letter],
    *,
    reason: DeadLetterReason | None = None,
    refusal: str | None = None,
    event_type: str | None = None,
    original_topic: str | None = None,
) -> list[Letter]:
    """The letters that match every filter given."""
    return [
        x
        for x in letters
        if (reason is None or x.letter.reason is reason)
        and (refusal is None or x.refusal == refusal)
        and (event_type is None or x.letter.event_type == event_type)
        and (original_topic is None or x.letter.original_topic == original_topic)
    ]


def summary(letters: Sequence[Letter], limit: int = 20) -> str:
    """Counts by reason and event type, then the last `limit` letters, for a person."""
    counts = Counter(
        (x.letter.reason.value + (f" {x.refusal}" if x.refusal else ""), x.letter.event_type or "?")
        for x in letters
    )
    lines = [f"{len(letters)} dead letter(s) of {len(distinct(letters))} distinct record(s)"]
    for (why, kind), count in counts.most_common():
        lines.append(f"  {count:>7}  {why:<32} {kind}")
    for x in letters[-limit:] if limit else []:
        origin = f"{x.letter.original_topic}[{x.letter.original_partition}]"
        lines.append(
            f"  {x.at}  from {origin}@{x.letter.original_offset}  {x.letter.reason.value}: "
            f"{x.letter.error[:160]}"
        )
    return "\n".join(lines)


def distinct(letters: Sequence[Letter]) -> list[Letter]:
    """One letter per record: a record replayed and refused again is dead-lettered again (its
    new position, the same bytes), and replaying both would send it twice, then four times."""
    seen: set[tuple[str, bytes | None, bytes | None]] = set()
    kept = []
    for x in letters:
        record = (x.letter.original_topic, x.letter.original_key, x.letter.original_value)
        if record not in seen:
            seen.add(record)
            kept.append(x)
    return kept


async def replay(settings: Settings, letters: Sequence[Letter]) -> int:
    """Produce each distinct record's original key and value to its original topic, in order,
    and wait for the broker's acknowledgement of all; returns how many were produced. A letter
    without a value (an empty record) has nothing to replay and is skipped."""
    letters = distinct(letters)
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers,
                                enable_idempotence=True, acks="all", linger_ms=5)  # fmt: skip
    await producer.start()
    try:
        sent = [
            await producer.send(
                x.letter.original_topic, x.letter.original_value, key=x.letter.original_key
            )
            for x in letters
            if x.letter.original_value is not None
        ]
        await producer.flush()
        for future in sent:
            await future
    finally:
        await producer.stop()
    return len(sent)
