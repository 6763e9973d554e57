"""The worker's own code without Kafka: the same purchase records as `bench-ledger`, through
the batch protocol (front door decode/validate → ledger rules → Avro encode → state save) with an
in-memory table and a producer that acknowledges at once. What this measures is the ceiling the
worker's Python code puts on the engine, whatever the consumer loop and the broker do around it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka.partitioner import murmur2

from loyalty.bench.load import enrolment, program, purchase
from loyalty.bench.report import Measurement
from processors.agents.members import Members
from processors.base.topics import LEDGER
from processors.base.tuning import tune_gc
from processors.codec.avro import AvroCodec
from processors.contract.base import Event
from processors.frontdoor import Delivered, FrontDoor
from processors.rules.member import Config
from processors.runtime.batch import Batches
from processors.runtime.table import Table


class AckedAtOnce:
    """A producer whose every send is acknowledged at once; keeps what was sent when `keep`."""

    @dataclass(frozen=True)
    class Ack:
        offset: int

    def __init__(self, keep: bool = False) -> None:
        self.count = 0
        self.by_topic: Counter[str] = Counter()
        self.bytes_by_topic: Counter[str] = Counter()
        self.keep = keep
        self.sent: list[tuple[str, bytes, bytes | None, int | None]] = []

    async def send(
        self, topic: str, value: bytes, key: bytes | None = None, partition: int | None = None
    ) -> Any:
        self.count += 1
        self.by_topic[topic] += 1
        self.bytes_by_topic[topic] += len(value or b"")
        if self.keep:
            self.sent.append((topic, value, key, partition))
        done: asyncio.Future[AckedAtOnce.Ack] = asyncio.get_running_loop().create_future()
        done.set_result(AckedAtOnce.Ack(self.count))
        return done


def as_delivered(codec: AvroCodec, events: Iterable[Event], partitions: int) -> list[Delivered]:
    """The events as Kafka would deliver them: keyed, framed, with an offset per partition."""
    offsets = [0] * partitions
    out = []
    for event in events:
        key = event.partition_key().encode()
        partition = (murmur2(key) & 0x7FFFFFFF) % partitions
        out.append(Delivered(event.topic, partition, offsets[partition], key,
                             codec.encode(event), 0))  # fmt: skip
        offsets[partition] += 1
    return out


def _batches(records: list[Delivered], size: int) -> Iterable[list[Delivered]]:
    for start in range(0, len(records), size):
        yield records[start : start + size]


async def measure_pure(
    *, members: int, purchases: int, batch: int = 2000, partitions: int = 8
) -> Measurement:
    """Enrol `members`, then time `purchases` purchases through the batch protocol."""
    tune_gc()  # as the worker does
    codec = AvroCodec()
    producer = AckedAtOnce()
    door = FrontDoor(codec, producer)
    bench = program()
    table = Table("ledgers_by_member", "bench.changelog", partitions)
    batches = Batches(
        Members(Config({bench.program_id: bench})), codec=codec, door=door,
        producer=producer, topic_name=str, table=table,
    )  # fmt: skip

    async def run(records: list[Delivered]) -> None:
        for chunk in _batches(records, batch):
            await batches.run_batch(chunk)

    enrolments = [enrolment(m) for m in range(members)]
    await run(as_delivered(codec, enrolments, partitions))
    load = as_delivered(codec, (purchase(n, members) for n in range(purchases)), partitions)
    booked_before = producer.by_topic[LEDGER.name]
    started, cpu = time.perf_counter(), time.process_time()
    await run(load)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    booked = producer.by_topic[LEDGER.name] - booked_before
    assert booked == purchases, "every purchase emits one ledger event"
    return Measurement(
        "pure path: decode → rules → encode → state",
        "purchases",
        purchases,
        seconds,
        f"the batch protocol, no Kafka, batches of {batch}, {cpu:.2f} s CPU",
    )


def main() -> None:  # pragma: no cover - a developer's tool
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--purchases", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=2000)
    args = parser.parse_args()
    m = asyncio.run(measure_pure(members=args.members, purchases=args.purchases, batch=args.batch))
    print(f"{m.name}: {m.count} {m.unit} in {m.seconds:.2f} s = {m.rate:,.0f}/s ({m.note})")


if __name__ == "__main__":  # pragma: no cover
    main()
