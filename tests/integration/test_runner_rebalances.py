"""The runner across rebalances, on the real broker, with batches slow enough that records of a
new assignment arrive while the batch before it still runs: each record is run, none before
its partition's state is recovered, and the group ends with everything committed."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition

from processors.runtime.batch import StateCache
from processors.runtime.runner import Runner
from processors.runtime.topics import ensure_topics

pytestmark = pytest.mark.integration
PARTITIONS = 8


class SlowTable:
    """Stands in for the agent's table: its recovery takes a while, and it knows which
    partitions it holds caught up."""

    name = "slow"

    def __init__(self) -> None:
        self.caught_up: set[int] = set()

    def release(self, keep: set[int]) -> None:
        self.caught_up = set()  # a new assignment: nothing is caught up until recovered

    async def recover(self, partitions: set[int], reader: Any) -> int:
        await asyncio.sleep(0.4)
        self.caught_up = set(partitions)
        return 0

    def estimated_len(self) -> int:
        return 0

    def close(self) -> None:
        pass


class SlowBatches:
    """Stands in for the batch protocol: each batch takes a while, and notes what it ran and
    whether its partitions were caught up when it ran."""

    def __init__(self, seen: list[tuple[int, int]], early: list[tuple[int, int]]):
        self.agent = SimpleNamespace(name="slow")
        self.table = SlowTable()
        self.cache = StateCache()
        self.seen, self.early = seen, early

    async def run_batch(self, records: list[Any]) -> None:
        self.early.extend((r.partition, r.offset) for r in records
                          if r.partition not in self.table.caught_up)  # fmt: skip
        await asyncio.sleep(0.3)
        self.seen.extend((r.partition, r.offset) for r in records)


async def test_records_of_a_new_assignment_taken_during_a_batch_run_once_and_after_recovery(  # type: ignore[no-untyped-def]
    isolated,
):
    bootstrap = isolated.bootstrap_servers
    topic = isolated.topic("runner.rebalances")
    await ensure_topics(bootstrap, {topic: (PARTITIONS, {})})
    seen: list[tuple[int, int]] = []
    early: list[tuple[int, int]] = []
    written: list[tuple[int, int]] = []
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()

    async def feed(count: int) -> None:
        for n in range(count):
            sent = await producer.send_and_wait(topic, b"x", key=str(n).encode())
            written.append((sent.partition, sent.offset))
            await asyncio.sleep(0.004)

    def runner() -> Runner:
        return Runner(SlowBatches(seen, early), bootstrap=bootstrap,  # type: ignore[arg-type]
                      group_id=f"{topic}.group", topics=[topic], batch_max=50,
                      session_timeout_ms=6000)  # fmt: skip

    first, second = runner(), runner()
    stopping_first, stopping_second = asyncio.Event(), asyncio.Event()
    try:
        running_first = asyncio.create_task(first.run(stopping_first))
        await asyncio.wait_for(first.ready.wait(), 60)
        feeding = asyncio.create_task(feed(1500))
        await asyncio.sleep(1.5)
        running_second = asyncio.create_task(second.run(stopping_second))  # a rebalance
        await asyncio.sleep(2.5)
        stopping_second.set()  # it leaves: another, the first takes everything back
        await asyncio.wait_for(running_second, 60)
        await asyncio.sleep(1.0)
        running_second = asyncio.create_task(second.run(asyncio.Event()))  # and again
        await feeding
        await asyncio.sleep(1.0)
        running_second.cancel()
        await asyncio.gather(running_second, return_exceptions=True)
        ends = {TopicPartition(topic, p): o + 1 for p, o in written}  # the last of each

        async def all_committed() -> bool:
            assert first.consumer is not None
            committed = {tp: await first.consumer.committed(tp) for tp in ends}
            return all(committed[tp] is not None and committed[tp] >= end
                       for tp, end in ends.items())  # fmt: skip

        deadline = asyncio.get_running_loop().time() + 90
        while not await all_committed():
            assert asyncio.get_running_loop().time() < deadline, "the group never caught up"
            await asyncio.sleep(0.5)
    finally:
        stopping_first.set()
        await producer.stop()
    await asyncio.wait_for(running_first, 60)
    assert set(written) <= set(seen), f"never run: {sorted(set(written) - set(seen))[:20]}"
    assert early == []  # no record ran before its partition was recovered
