"""The runner's assignment: the table is caught up before any record of it runs, and a
recovery that fails is retried until it passes, never given up (aiokafka only logs what a
rebalance callback raises: the partitions would stall for good)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition

from processors.runtime.batch import StateCache
from processors.runtime.runner import Runner


class FlakyTable:
    name = "flaky"

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.recovered: set[int] = set()

    def release(self, keep: set[int]) -> None:
        pass

    async def recover(self, partitions: set[int], reader: Any) -> int:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("broker out of reach")
        self.recovered = set(partitions)
        return 3

    def estimated_len(self) -> int:
        return 0


async def test_a_failed_recovery_is_retried_and_records_wait_for_it() -> None:
    table = FlakyTable(failures=2)
    batches = SimpleNamespace(agent=SimpleNamespace(name="flaky"), table=table, cache=StateCache())
    runner = Runner(batches, bootstrap="unused", group_id="g", topics=["t"],  # type: ignore[arg-type]
                    retry_delay_max=0.01)  # fmt: skip
    runner._reader = object()  # type: ignore[assignment]
    tp = TopicPartition("t", 1)
    runner._waiting = {tp: [object()]}  # taken after the revocation: the new assignment's
    assigning = asyncio.create_task(runner.on_partitions_assigned([tp]))
    await asyncio.sleep(0.005)  # the first attempt failed, the retry waits
    assert table.failures < 2
    assert runner._take() == {}  # not yet recovered: the records stay
    await asyncio.wait_for(assigning, 5)
    assert table.recovered == {1}
    assert list(runner._take()) == [tp]  # recovered: they run
