"""One agent's consumer: a member of the agent's consumer group that fetches per-partition
batches, runs each through the batch protocol (`processors.runtime.batch`) and commits exactly
the offsets it applied. Owns group membership, the table's recovery on assignment, retries and
the figures a stall shows in; decides nothing.

Why not Faust's streams (docs/adr/0017-worker-runtime.md): a record reaches the rules only
through this loop, in offset order, and an offset is committed only after every record before
it in its partition was applied; no read-offset bookkeeping beside the consumer's own position
can count a record as done that was never processed.

Rebalances: the revocation waits for the batch in hand to finish and commit; the assignment
catches the table up from its changelog before any record of the new partitions is fetched.
Records fetched before a rebalance and not yet run are dropped unrun, uncommitted: the
partition's next owner (maybe this process) fetches them again from the committed offset.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from prometheus_client import Counter, Gauge, Histogram

from processors.base.health import Progress
from processors.base.logs import get_logger
from processors.frontdoor import Delivered
from processors.runtime.batch import Batches
from processors.runtime.table import Table

log = get_logger(__name__)
RECORDS = Counter("loyalty_records_total", "Input records run and committed.", ["agent"])
BATCH_SECONDS = Histogram(
    "loyalty_batch_seconds", "Time to run and commit one batch.", ["agent"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)  # fmt: skip
BATCH_FAILURES = Counter(
    "loyalty_batch_failures_total", "Batches that failed and were retried.", ["agent"]
)
RECOVERED = Counter(
    "loyalty_table_records_recovered_total", "Changelog records read back.", ["table"]
)
CACHE = Gauge("loyalty_state_cache_hit_ratio", "Share of state loads the cache served.", ["agent"])


def in_time_order(fetched: Mapping[TopicPartition, Sequence[Any]]) -> list[Delivered]:
    """A fetch's records, each partition's in its own order, the partitions merged by when each
    record was written (its timestamp). Inputs that follow one another across topics are then
    decided in that order when one fetch brings both: a till's reservation holds an offer's use
    on the steps topic, and the purchase it was for, paid a moment later, comes on the
    transactions topic (docs/adr/0037-codes-that-unlock-an-offer.md); taken partition by
    partition, the purchase could be decided first and the till told yes overruled."""
    merged = heapq.merge(*fetched.values(), key=lambda record: record.timestamp)
    return [Delivered.of(record) for record in merged]


class Runner(ConsumerRebalanceListener):  # type: ignore[misc]
    """Runs one agent's batches for the partitions its group gives this process."""

    def __init__(
        self,
        batches: Batches[Any],
        *,
        bootstrap: str,
        group_id: str,
        topics: Sequence[str],
        batch_max: int = 2000,
        retry_delay_max: float = 10.0,
        session_timeout_ms: int = 10_000,
    ):
        self.batches = batches
        self.name = batches.agent.name
        self.bootstrap = bootstrap
        self.group_id = group_id
        self.topics = list(topics)
        self.table: Table | None = batches.table
        self.batch_max = batch_max
        self.retry_delay_max = retry_delay_max
        self.session_timeout_ms = session_timeout_ms
        self.consumer: AIOKafkaConsumer | None = None
        self._reader: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()
        self._generation = 0  # +1 at each revocation: fetched records of an older one are void
        self.progress = Progress(self.name)
        self._failures = 0
        self._committing: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()
        """Set once the first assignment is recovered (or none came)."""

    async def run(self, stopping: asyncio.Event) -> None:
        """Consume until `stopping` is set; the batch in hand finishes and commits first."""
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=max(self.session_timeout_ms // 5, 100),
            max_poll_records=self.batch_max,
        )
        self.consumer.subscribe(self.topics, listener=self)
        if self.table is not None:
            self._reader = AIOKafkaConsumer(bootstrap_servers=self.bootstrap,
                                            enable_auto_commit=False)  # fmt: skip
            await self._reader.start()
        await self.consumer.start()
        log.info("runner.started", agent=self.name, group=self.group_id, topics=self.topics)
        try:
            while not stopping.is_set():
                fetched = await self.consumer.getmany(timeout_ms=200, max_records=self.batch_max)
                generation = self._generation
                async with self._lock:
                    # Observed first: a partition's start is known before any batch of it
                    # runs, so a batch that blocks (a send to a topic gone) shows as a stall.
                    await self._observe()
                    if fetched and generation == self._generation:
                        await self._run(fetched)
        finally:
            await self._committed()
            await self.consumer.stop()  # leaves the group: the partitions move at once
            if self._reader is not None:
                await self._reader.stop()
            if self.table is not None:
                self.table.close()  # this process's copy; the changelog keeps the states
            log.info("runner.stopped", agent=self.name)

    async def _run(self, fetched: dict[TopicPartition, list[Any]]) -> None:
        assert self.consumer is not None
        started = time.perf_counter()
        records = in_time_order(fetched)
        try:
            await self.batches.run_batch(records)
        except Exception as error:  # noqa: BLE001 - a broker or send failure: run it again
            self._failures += 1
            BATCH_FAILURES.labels(self.name).inc()
            delay = min(0.2 * 2 ** min(self._failures, 10), self.retry_delay_max)
            log.error("runner.batch_failed", agent=self.name, error=repr(error)[:500],
                      records=len(records), retry_in_seconds=delay)  # fmt: skip
            for tp, batch in fetched.items():
                self.consumer.seek(tp, batch[0].offset)  # nothing of it committed: again
            await asyncio.sleep(delay)
            return
        self._failures = 0
        offsets = {tp: batch[-1].offset + 1 for tp, batch in fetched.items() if batch}
        # Committed while the next batch is fetched and decided: its outputs and states are
        # acknowledged already, so only a redelivery (the same outputs, same ids) hangs on
        # it. One commit in flight at a time, in order; a revocation or a stop waits for it.
        await self._committed()
        self._committing = asyncio.create_task(self._commit(offsets, len(records), started))

    async def _commit(
        self, offsets: dict[TopicPartition, int], records: int, started: float
    ) -> None:
        assert self.consumer is not None
        try:
            await self.consumer.commit(offsets)
        except CommitFailedError as error:
            # The group moved these partitions on: their next owner runs them again against
            # the states saved above, which already hold them (same outputs, same ids).
            log.warning("runner.commit_superseded", agent=self.name, error=str(error)[:300])
            return
        except KafkaError as error:
            log.warning("runner.commit_failed", agent=self.name, error=repr(error)[:300])
            return  # the next batch's commit covers these offsets too
        self.progress.applied(offsets)
        RECORDS.labels(self.name).inc(records)
        BATCH_SECONDS.labels(self.name).observe(time.perf_counter() - started)

    async def _committed(self) -> None:
        """Wait for the commit in flight, if any."""
        committing, self._committing = self._committing, None
        if committing is not None:
            await committing

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self._lock:  # the batch in hand has finished and committed
            await self._committed()
            self._generation += 1
            self.progress.revoked(revoked)
        log.info("runner.revoked", agent=self.name, partitions=len(revoked))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        async with self._lock:
            self._generation += 1
            self.progress.assigned(assigned)
            if self.table is not None and self._reader is not None:
                partitions = {tp.partition for tp in assigned}
                self.table.release(keep=partitions)
                started = time.perf_counter()
                applied = await self.table.recover(partitions, self._reader)
                RECOVERED.labels(self.table.name).inc(applied)
                log.info("runner.table_recovered", agent=self.name, table=self.table.name,
                         partitions=sorted(partitions), records=applied,
                         keys=self.table.estimated_len(),
                         seconds=round(time.perf_counter() - started, 3))  # fmt: skip
                self.batches.cache.clear()
        self.ready.set()
        log.info("runner.assigned", agent=self.name, partitions=len(assigned))

    async def _observe(self) -> None:
        """Lag per partition, for the metrics and the stall check."""
        assert self.consumer is not None
        assignment = self.consumer.assignment()
        unknown = [tp for tp in assignment if not self.progress.knows(tp)]
        if unknown:  # newly assigned: where the group stands (the earliest offset if nowhere)
            beginnings = await self.consumer.beginning_offsets(unknown)
            committed = {tp: await self.consumer.committed(tp) for tp in unknown}
            self.progress.applied({tp: c if c is not None else beginnings[tp]
                                   for tp, c in committed.items()})  # fmt: skip
        self.progress.observe(self._ends())
        cache = self.batches.cache
        if cache.hits + cache.misses:
            CACHE.labels(self.name).set(cache.hits / (cache.hits + cache.misses))

    def _ends(self) -> dict[TopicPartition, int | None]:
        if self.consumer is None:
            return {}
        return {tp: self.consumer.highwater(tp) for tp in self.consumer.assignment()}

    def stalled(self, after_seconds: float) -> list[str]:
        """Partitions with records waiting that have not committed for `after_seconds`: what
        the health check reports."""
        return self.progress.stalled(self._ends(), after_seconds)
