"""One agent's consumer: a member of the agent's consumer group that fetches per-partition
batches, runs each through the batch protocol (`processors.runtime.batch`) and commits exactly
the offsets it applied. Owns group membership, the table's recovery on assignment, retries and
the figures a stall shows in; decides nothing.

Why not Faust's streams (docs/adr/0017-worker-runtime.md): a record reaches the rules only
through this loop, in offset order, and an offset is committed only after every record before
it in its partition was applied; no read-offset bookkeeping beside the consumer's own position
can count a record as done that was never processed.

Rebalances: the revocation waits for the batch in hand to finish and commit; the table is
caught up from its changelog after the assignment (by the loop, not in aiokafka's callback,
which holds the group's heartbeats) and before any record of the new partitions runs.
Records taken before a revocation and not yet run are dropped unrun, uncommitted: the
partition's next owner (maybe this process) fetches them again from the committed offset
(aiokafka gives every partition of a new assignment a fresh position, its committed offset).
Records taken after it are the new assignment's, and are kept until it is recovered: aiokafka
returns none while a rebalance is in progress, and starts fetching the new assignment before it
calls `on_partitions_assigned`, so such records can be taken before the table is caught up;
dropped there, they would be lost (their partition's position is past them and no rebalance
comes to reset it); run there, they would be decided against a state not yet recovered.
A revocation, as soon as it starts (before it waits for the batch in hand), lets no further
record run and cancels a recovery in progress: the group waits for it only until its
rebalance timeout, after which the partitions belong to another process.

Fetching runs beside the batches (`_fetch`): records are taken from the consumer as soon as
they arrive and wait for the next batch (at most `batch_max` of them). aiokafka sends no new
fetch to a broker while records it fetched there wait to be taken, so a loop that took records
only between batches left each record arriving during a batch waiting for that batch, the
next take, then a fresh fetch (measured: a reservation's request reached its agent 9 ms after
it was written, where a bare consumer takes 1.4 ms; docs/performance.md). When a batch fails,
its partitions are sought back to its first record and what was taken of them after it is
dropped, so all of it comes again, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
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
RECORD_AGE = Histogram(
    "loyalty_record_age_seconds",
    "How long the oldest record of a batch had been written when its batch started (its "
    "producer's clock): the time a record waits between the broker and the rules.",
    ["agent"],
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
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
        self._generation = 0  # +1 as each revocation starts: records taken before it are void
        self._recovered = asyncio.Event()  # the current assignment's table is caught up
        self._unrecovered: set[int] | None = None  # its partitions, until they are
        self._recovering: asyncio.Task[int] | None = None  # the recovery running, if one is
        self._recovery_failures = 0
        self._reassigned = asyncio.Event()  # an assignment came: recover it now, not later
        self.progress = Progress(self.name)
        self._failures = 0
        self._committing: asyncio.Task[None] | None = None
        # Records taken from the consumer, not run yet (`_fetch`), and in what generation.
        self._waiting: dict[TopicPartition, list[Any]] = {}
        self._waiting_generation = 0
        self._arrived = asyncio.Event()
        self._room = asyncio.Event()
        self._fetching: asyncio.Task[None] | None = None
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
        self._fetching = asyncio.create_task(self._fetch(), name=f"fetch-{self.name}")
        try:
            while not stopping.is_set():
                await self._arrival(timeout=0.2)
                retry_in = None
                async with self._lock:
                    if self._unrecovered is not None:
                        retry_in = await self._recover(self._unrecovered, stopping)
                    # Observed first: a partition's start is known before any batch of it
                    # runs, so a batch that blocks (a send to a topic gone) shows as a stall.
                    await self._observe()
                    fetched = self._take()
                    if fetched:
                        await self._run(fetched)
                if self._fetching is not None and self._fetching.done():
                    self._fetching.result()  # the consumer failed: raise it here
                if retry_in is not None:
                    await _first(retry_in, stopping, self._reassigned)
        finally:
            await self._stop_fetching()
            await self._committed()
            await self.consumer.stop()  # leaves the group: the partitions move at once
            if self._reader is not None:
                await self._reader.stop()
            if self.table is not None:
                self.table.close()  # this process's copy; the changelog keeps the states
            log.info("runner.stopped", agent=self.name)

    async def _fetch(self) -> None:
        """Take records from the consumer as they arrive, into `_waiting`, until it holds
        `batch_max` (see the module)."""
        assert self.consumer is not None
        while True:
            room = self.batch_max - sum(len(records) for records in self._waiting.values())
            if room <= 0:
                self._room.clear()
                await self._room.wait()
                continue
            got = await self.consumer.getmany(timeout_ms=200, max_records=room)
            generation = self._generation
            if generation != self._waiting_generation:
                self._waiting, self._waiting_generation = {}, generation  # revoked meanwhile
            for tp, records in got.items():
                self._waiting.setdefault(tp, []).extend(records)
            if got:
                self._arrived.set()

    async def _stop_fetching(self) -> None:
        """Stop taking records: cancelled while it waits, `getmany` has taken none. A fetch
        that failed was raised by the loop already: the cleanup after it still runs."""
        fetching, self._fetching = self._fetching, None
        if fetching is not None:
            fetching.cancel()
            await asyncio.gather(fetching, return_exceptions=True)

    async def _arrival(self, timeout: float) -> None:
        """Wait until there is something to do (records waiting for a recovered assignment,
        or an assignment to recover), or `timeout` seconds."""
        if self._unrecovered is not None or (self._recovered.is_set() and self._waiting):
            return
        self._arrived.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._arrived.wait(), timeout)

    def _take(self) -> dict[TopicPartition, list[Any]]:
        """The records waiting, to run now (under the lock): none before the assignment is
        recovered (they stay), none taken before the last revocation (dropped)."""
        if self._waiting_generation != self._generation:
            self._waiting = {}
            self._room.set()
        if not self._recovered.is_set():
            return {}
        fetched, self._waiting = self._waiting, {}
        self._room.set()
        return fetched

    async def _run(self, fetched: dict[TopicPartition, list[Any]]) -> None:
        assert self.consumer is not None
        started = time.perf_counter()
        records = in_time_order(fetched)
        if records:  # merged by time: the first is the oldest
            RECORD_AGE.labels(self.name).observe(
                max(time.time() - records[0].timestamp_ms / 1000, 0)
            )
        try:
            await self.batches.run_batch(records)
        except Exception as error:  # noqa: BLE001 - a broker or send failure: run it again
            self._failures += 1
            BATCH_FAILURES.labels(self.name).inc()
            delay = self._backoff(self._failures)
            log.error("runner.batch_failed", agent=self.name, error=repr(error)[:500],
                      records=len(records), retry_in_seconds=delay)  # fmt: skip
            # Nothing of it committed: again, with what was taken of its partitions since
            # (a fetch in flight is discarded by the consumer once its position moved).
            for tp, batch in fetched.items():
                self.consumer.seek(tp, batch[0].offset)
                self._waiting.pop(tp, None)
            self._room.set()
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
        # At once, before the lock: no record runs from here on, and a recovery in progress
        # stops (found in review: the group waits for this callback only until its rebalance
        # timeout; a recovery that outlasted it and then ran records ran partitions the group
        # had given to another process).
        self._generation += 1
        self._recovered.clear()
        if self._recovering is not None:
            self._recovering.cancel()
        async with self._lock:  # the batch in hand has finished and committed
            await self._committed()
            self._unrecovered = None
            self._waiting = {}
            self._room.set()
            self.progress.revoked(revoked)
        log.info("runner.revoked", agent=self.name, partitions=len(revoked))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        """The table is caught up by the loop (`_recover`), not here: aiokafka sends no
        heartbeat while this callback runs, so a slow or failing recovery here had the process
        evicted from the group while it went on to run partitions another process owned
        (found in review). Records of the assignment wait for it (see the module)."""
        async with self._lock:
            self.progress.assigned(assigned)
            if self.table is not None and self._reader is not None:
                partitions = {tp.partition for tp in assigned}
                self._recovered.clear()  # also if the revocation before failed half-way
                self.table.release(keep=partitions)
                self._unrecovered = partitions
                self._recovery_failures = 0
                self._reassigned.set()
                self._arrived.set()
            else:
                self._recovered.set()
                self.ready.set()
        log.info("runner.assigned", agent=self.name, partitions=len(assigned))

    async def _recover(self, partitions: set[int], stopping: asyncio.Event) -> float | None:
        """Catch the table up with `partitions`' changelog (under the lock), unless a stop or
        a revocation comes first (then it is left, consistent, for the next assignment); on a
        failure (the broker out of reach), the seconds to wait before the loop tries again."""
        assert self.table is not None
        started, generation = time.perf_counter(), self._generation
        recovering = self._recovering = asyncio.create_task(
            self.table.recover(partitions, self._reader)
        )
        try:
            await _first(None, stopping, recovering)
        finally:
            self._recovering = None
            recovering.cancel()
            await asyncio.gather(recovering, return_exceptions=True)
        if recovering.cancelled() or stopping.is_set() or generation != self._generation:
            return None
        error = recovering.exception()
        if error is not None:
            self._recovery_failures += 1
            delay = self._backoff(self._recovery_failures)
            log.error("runner.recovery_failed", agent=self.name, error=repr(error)[:300],
                      partitions=sorted(partitions), retry_in_seconds=delay)  # fmt: skip
            self._reassigned.clear()  # under the lock: an assignment from here on wakes it
            return delay
        applied = recovering.result()
        self._recovery_failures = 0
        RECOVERED.labels(self.table.name).inc(applied)
        log.info("runner.table_recovered", agent=self.name, table=self.table.name,
                 partitions=sorted(partitions), records=applied, keys=self.table.estimated_len(),
                 seconds=round(time.perf_counter() - started, 3))  # fmt: skip
        self.batches.cache.clear()
        self._unrecovered = None
        self._recovered.set()
        self.ready.set()
        return None

    def _backoff(self, failures: int) -> float:
        """Seconds to wait after `failures` failures in a row: doubling, up to the most."""
        return min(0.2 * 2.0 ** min(failures, 10), self.retry_delay_max)

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


async def _first(seconds: float | None, *waits: asyncio.Event | asyncio.Task[Any]) -> None:
    """Wait until one of the events is set or one of the tasks is done, or `seconds` pass."""
    waiting = [w if isinstance(w, asyncio.Task) else asyncio.ensure_future(w.wait())
               for w in waits]  # fmt: skip
    try:
        await asyncio.wait(waiting, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter, wait in zip(waiting, waits, strict=True):
            if waiter is not wait:
                waiter.cancel()
