"""One agent's batches with no broker: a producer that acknowledges at once and keeps what it
was sent, and a table whose changelog is that producer (the real broker is exercised by
tests/integration/)."""

from __future__ import annotations

from typing import Any

from loyalty.bench.pure import AckedAtOnce
from processors.codec.avro import AvroCodec
from processors.contract.base import Event
from processors.frontdoor import Delivered, FrontDoor
from processors.runtime.batch import Agent, Batches, BatchReport
from processors.runtime.table import Table

CODEC = AvroCodec()
CHANGELOG = "test.changelog"


def record(event: Event, offset: int, partition: int = 0) -> Delivered:
    return Delivered(event.topic, partition, offset, event.partition_key().encode(),
                     CODEC.encode(event), 0)  # fmt: skip


class Harness:
    """Runs batches for `agent`; `outputs()` are the events sent since the last call."""

    def __init__(self, agent: Agent[Any], partitions: int = 1) -> None:
        self.producer = AckedAtOnce(keep=True)
        self.table = Table("test", CHANGELOG, partitions)
        self.batches = Batches(
            agent, codec=CODEC, door=FrontDoor(CODEC, self.producer),  # type: ignore[arg-type]
            producer=self.producer, topic_name=str, table=self.table,  # type: ignore[arg-type]
        )  # fmt: skip
        self._seen = 0

    async def run(self, *records: Delivered) -> BatchReport:
        return await self.batches.run_batch(list(records))

    def sent(self) -> list[tuple[str, bytes, bytes | None, int | None]]:
        fresh = self.producer.sent[self._seen :]
        self._seen = len(self.producer.sent)
        return fresh

    def outputs(self) -> list[Event]:
        """Events sent since the last call (changelog writes left out)."""
        return [CODEC.decode(value) for topic, value, _, _ in self.sent() if topic != CHANGELOG]
