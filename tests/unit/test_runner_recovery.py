"""The runner's assignment and stop, with a consumer that stands in for aiokafka's: the table
is caught up by the loop, not in the rebalance callback (aiokafka sends no heartbeat while it
runs), a failed recovery is tried again until it passes and no record of the assignment runs
before; a stop ends the run even while recoveries fail; a consumer that fails still gets its
cleanup (found in review)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from processors.runtime import runner as runner_module
from processors.runtime.batch import StateCache
from processors.runtime.runner import Runner

TP = TopicPartition("t", 0)


class Record(SimpleNamespace):
    pass


class Consumer:
    """Group membership without a broker: assigns `TP` once started, then hands out the
    records it is given, or fails with `error`."""

    instances: ClassVar[list[Consumer]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.listener: Any = None
        self.records: list[Record] = []
        self.error: Exception | None = None
        self.calls: list[str] = []
        Consumer.instances.append(self)

    def subscribe(self, topics: list[str], listener: Any) -> None:
        self.listener = listener

    async def start(self) -> None:
        if self.listener is not None:
            self.assigning = asyncio.create_task(self._assign())

    async def _assign(self) -> int:
        """The assignment callback; how many recoveries were tried by its end."""
        await self.listener.on_partitions_assigned([TP])
        return int(self.listener.table.attempts)

    async def stop(self) -> None:
        self.calls.append("stop")

    async def getmany(self, timeout_ms: int = 0, max_records: int | None = None) -> Any:
        await asyncio.sleep(0.01)
        if self.error is not None:
            raise self.error
        got, self.records = self.records, []
        return {TP: got} if got else {}

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    def highwater(self, tp: TopicPartition) -> int:
        return 0

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(tps, 0)

    async def committed(self, tp: TopicPartition) -> int:
        return 0

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        pass


class FlakyTable:
    name = "flaky"
    seconds = 0.0  # how long a recovery takes

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts = 0
        self.caught_up = False
        self.closed = False

    def release(self, keep: set[int]) -> None:
        self.caught_up = False

    async def recover(self, partitions: set[int], reader: Any) -> int:
        self.attempts += 1
        await asyncio.sleep(self.seconds)
        if self.failures:
            self.failures -= 1
            raise ConnectionError("broker out of reach")
        self.caught_up = True
        return 0

    def estimated_len(self) -> int:
        return 0

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def consumers(monkeypatch: pytest.MonkeyPatch) -> list[Consumer]:
    Consumer.instances = []
    monkeypatch.setattr(runner_module, "AIOKafkaConsumer", Consumer)
    return Consumer.instances


def runner(table: FlakyTable, ran: list[tuple[int, bool]]) -> Runner:
    async def run_batch(records: list[Any]) -> None:
        ran.extend((r.offset, table.caught_up) for r in records)

    batches = SimpleNamespace(agent=SimpleNamespace(name="flaky"), table=table,
                              cache=StateCache(), run_batch=run_batch)  # fmt: skip
    return Runner(batches, bootstrap="unused", group_id="g", topics=["t"],  # type: ignore[arg-type]
                  retry_delay_max=0.02)  # fmt: skip


async def test_a_failed_recovery_is_tried_again_by_the_loop_and_records_wait_for_it(
    consumers: list[Consumer],
) -> None:
    table, ran = FlakyTable(failures=3), []  # type: ignore[var-annotated]
    stopping = asyncio.Event()
    running = asyncio.create_task(runner(table, ran).run(stopping))
    await asyncio.sleep(0.05)
    group = next(c for c in consumers if c.listener is not None)
    assert await asyncio.wait_for(group.assigning, 1) == 0  # the callback recovers nothing
    group.records = [Record(topic="t", partition=0, offset=n, key=None, value=b"x",
                            timestamp=0) for n in range(3)]  # fmt: skip
    async with asyncio.timeout(5):
        while len(ran) < 3:
            await asyncio.sleep(0.01)
    stopping.set()
    await asyncio.wait_for(running, 5)
    assert table.failures == 0  # tried until it passed
    assert ran == [(0, True), (1, True), (2, True)]  # each once, all after the recovery


async def test_a_stop_ends_the_run_while_recoveries_keep_failing(consumers: list[Consumer]) -> None:
    table = FlakyTable(failures=10**9)
    stopping = asyncio.Event()
    running = asyncio.create_task(runner(table, []).run(stopping))
    await asyncio.sleep(0.2)
    stopping.set()
    await asyncio.wait_for(running, 3)
    assert table.closed
    assert all(c.calls == ["stop"] for c in consumers)


async def test_a_consumer_that_fails_is_still_stopped_and_its_table_closed(
    consumers: list[Consumer],
) -> None:
    table = FlakyTable(failures=0)
    running = asyncio.create_task(runner(table, []).run(asyncio.Event()))
    await asyncio.sleep(0.05)
    group = next(c for c in consumers if c.listener is not None)
    group.error = KafkaError("GroupAuthorizationFailed")
    with pytest.raises(KafkaError):
        await asyncio.wait_for(running, 3)
    assert group.calls == ["stop"]  # left the group: its partitions move at once
    assert table.closed


async def test_a_revocation_during_a_recovery_stops_it_at_once_and_no_record_runs(
    consumers: list[Consumer],
) -> None:
    # Found in review: the revocation waited for the whole recovery (past the group's
    # rebalance timeout: the partitions given to another process), then records ran.
    table, ran = FlakyTable(failures=0), []  # type: ignore[var-annotated]
    table.seconds = 30.0
    the_runner = runner(table, ran)
    stopping = asyncio.Event()
    running = asyncio.create_task(the_runner.run(stopping))
    await asyncio.sleep(0.05)
    group = next(c for c in consumers if c.listener is not None)
    group.records = [Record(topic="t", partition=0, offset=0, key=None, value=b"x", timestamp=0)]
    await asyncio.sleep(0.1)  # recovering, the record taken and waiting
    assert table.attempts == 1
    await asyncio.wait_for(the_runner.on_partitions_revoked([TP]), 0.5)
    await asyncio.sleep(0.1)
    stopping.set()
    await asyncio.wait_for(running, 3)
    assert ran == []
    assert not table.caught_up
