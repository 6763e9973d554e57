"""The projector process: loyalty.ledger.v1, loyalty.enrolments.v1 and loyalty.offers.v1 (and,
when named, loyalty.transactions.v1, loyalty.config.v1, loyalty.rewards.v1 and
loyalty.outcomes.v1) → the ledger projection (with its member, offer, offer performance,
reward and request outcome tables).

Owns the Kafka side of projecting: the consumer, where it reads from, and what happens to a
batch that cannot be written. It never decides what a row looks like (`projections.writers`)
nor how a batch and its checkpoints form one transaction (`projections.projection`).

Positions: Postgres is the source of truth. Each partition the consumer gets is seeked to the
checkpoint stored with the rows (never to Kafka's committed offset, which is only a hint
committed after Postgres, for lag monitoring). If a checkpoint is found behind where the
consumer stands (a rebuild swapped the tables in, checkpoints were deleted), the partition is
re-read from the checkpoint.

Failures:
- a record the front door refuses on one of the engine's own output topics (ledger, offers,
  rewards, outcomes) is logged at ERROR and counted
  (`loyalty_projection_refused_total`); one refused on the enrolments topic (an input topic,
  which the enrolment processor dead-letters) is logged and counted at WARNING; both are
  passed over so one bad record does not stop every member of its partition;
- a Postgres error rolls the whole batch back and is retried, with backoff, until it succeeds
  or the process is stopped: a batch is never acknowledged without its rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from prometheus_client import Counter

from processors.base.health import Progress, body
from processors.base.logs import get_logger
from processors.base.topics import (
    CONFIG,
    ENROLMENTS,
    LEDGER,
    NOTIFICATIONS,
    OFFERS,
    OUTCOMES,
    REWARDS,
    TRANSACTIONS,
)
from processors.codec.avro import AvroCodec
from processors.contract.deadletter import DeadLettered
from processors.frontdoor import Delivered, Tombstone, admit
from projections import checkpoints, db, projection
from projections.projection import Admitted, Outcome, PartitionBatch

log = get_logger(__name__)

GROUP_ID = "loyalty-projector"
GATHER_BYTES = 64 * 1024
"""What a fetch waits for, at most `ProjectorConfig.gather_ms`: ~250 ledger events, enough to
share a transaction's fixed cost; above ~5,000 events a second it is there before the wait ends."""
DEFAULT_FETCH_MAX_WAIT_MS = 500  # aiokafka's own: a fetch with nothing to read returns after it
CONTRACT_TOPICS = (
    LEDGER.name, ENROLMENTS.name, OFFERS.name, TRANSACTIONS.name, CONFIG.name, REWARDS.name,
    OUTCOMES.name, NOTIFICATIONS.name,
)  # fmt: skip
_ENGINE_OUTPUTS = (LEDGER.name, OFFERS.name, REWARDS.name, OUTCOMES.name, NOTIFICATIONS.name)

REFUSED = Counter(
    "loyalty_projection_refused_total",
    "Records a projector passed over because the front door refused them.",
    ["projection", "topic", "reason"],
)
APPLIED = Counter(
    "loyalty_projection_events_total", "Events written by a projector.", ["projection"]
)
RETRIES = Counter(
    "loyalty_projection_write_retries_total",
    "Postgres failures a projector retried (the batch was rolled back, nothing acknowledged).",
    ["projection"],
)


def contract_topic_map(
    ledger: str = LEDGER.name,
    enrolments: str = ENROLMENTS.name,
    offers: str | None = OFFERS.name,
    *,
    transactions: str | None = None,
    config: str | None = None,
    rewards: str | None = None,
    outcomes: str | None = None,
    notifications: str | None = None,
) -> dict[str, str]:
    """Consumed topic → the contract topic it carries (test and prefixed deployments read
    topics named otherwise). `offers` None: the offer tables are not fed (a projection of
    the ledger alone, e.g. a benchmark's). `transactions` and `config` (the offer performance
    tables' purchases and offer windows, ADR 15; the reward catalogue and code stock),
    `rewards` (the wallet), `outcomes` (request outcomes) and `notifications` (preferences,
    their audit trail, the inbox) are read only when named."""
    topics = {ledger: LEDGER.name, enrolments: ENROLMENTS.name}
    if offers is not None:
        topics[offers] = OFFERS.name
    if transactions is not None:
        topics[transactions] = TRANSACTIONS.name
    if config is not None:
        topics[config] = CONFIG.name
    if rewards is not None:
        topics[rewards] = REWARDS.name
    if outcomes is not None:
        topics[outcomes] = OUTCOMES.name
    if notifications is not None:
        topics[notifications] = NOTIFICATIONS.name
    return topics


@dataclass(frozen=True)
class ProjectorConfig:
    """Where the projector reads and writes."""

    dsn: str
    bootstrap_servers: str
    topics: Mapping[str, str] = field(default_factory=contract_topic_map)
    """Consumed topic → contract topic (one of CONTRACT_TOPICS)."""
    group_id: str | None = GROUP_ID
    """Consumer group; None reads every partition with no group (what `rebuild` does)."""
    schema: str | None = None
    """Schema of the tables written; None: the live ones."""
    projection: str = projection.PROJECTION
    max_records: int = 5000
    """Records per poll, hence per transaction, at most."""
    poll_timeout_ms: int = 500
    gather_ms: int = 50
    """How long the broker may hold a fetch to gather `GATHER_BYTES` (Kafka's fetch.max.wait.ms,
    with fetch.min.bytes): at the engine's live rates a transaction carries what arrived in
    that time instead of one or two records, each paying the transaction's fixed cost (the
    checkpoints, the commit, the offsets); a backlog has the bytes at once. An event reaches
    Postgres up to this much later (per fetch: a partition resumed while a fetch is in flight
    waits for that one and its own), and so do the answers that wait for their row (ADR 34,
    decision 6, and all of them when the API does not read answers from Kafka). An idle
    projector fetches every `gather_ms`. 0 fetches whatever is there at once (ADR 9,
    addendum)."""
    retry_delay_max: float = 30.0


@dataclass
class RunReport:
    """What one `run` did."""

    records: int = 0
    events_applied: int = 0
    refused: int = 0
    transactions: int = 0
    rewinds: int = 0
    retries: int = 0
    next_offsets: dict[tuple[str, int], int] = field(default_factory=dict)


async def _settled(in_flight: asyncio.Task[None] | None) -> None:
    """Wait for the batch in flight, if any (its errors are raised here): none is left."""
    if in_flight is not None:
        await in_flight


class _StoppedError(Exception):
    """The stop event was set while a batch was waiting for Postgres."""


class _Reassigned(ConsumerRebalanceListener):  # type: ignore[misc]
    """Marks newly assigned partitions to be seeked to their checkpoints before any of their
    records is used; no Postgres call happens inside the rebalance."""

    def __init__(self, projector: Projector, consumer: AIOKafkaConsumer):
        self.projector = projector
        self.consumer = consumer

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.projector._forget(set(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.projector._must_seek(self.consumer, set(assigned))


class Projector:
    """Consumes the ledger and enrolment topics and keeps the ledger projection current."""

    def __init__(self, config: ProjectorConfig, *, codec: AvroCodec | None = None):
        unknown = set(config.topics.values()) - set(CONTRACT_TOPICS)
        if unknown:
            raise ValueError(f"the ledger projection does not read {sorted(unknown)}")
        self.config = config
        # Every recorded schema version: a replay from offset 0 meets the oldest writers.
        self.codec = codec or AvroCodec.with_history()
        self._conn: psycopg.Connection | None = None
        self._positions: dict[TopicPartition, int] = {}
        self._unseeked: set[TopicPartition] = set()
        self._assignments = 0  # bumped on every rebalance, to spot stale positions
        self.progress = Progress(f"projector:{config.projection}")
        self._consumer: AIOKafkaConsumer | None = None
        self._failing: str | None = None  # the Postgres error being retried, if any
        self._on_committed: Callable[[RunReport, int | None], None] | None = None
        self._ends_total: int | None = None

    async def run(
        self,
        *,
        stop: asyncio.Event | None = None,
        until_caught_up: bool = False,
        stop_after: int | None = None,
        on_committed: Callable[[RunReport, int | None], None] | None = None,
    ) -> RunReport:
        """Project until `stop` is set; or, with `until_caught_up`, until every partition
        reaches the end offset it had when the run started (records past it are left for the
        next run); or once at least `stop_after` records are committed.

        `on_committed(report, ends)` is called after each committed batch: `ends` is the sum
        of those end offsets with `until_caught_up` (the records a replay from offset 0
        reads), else None. A progress bar's hook: it must not block."""
        stop = stop or asyncio.Event()
        report = RunReport()
        self._on_committed, self._ends_total = on_committed, None
        self._positions, self._unseeked = {}, set()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.config.bootstrap_servers,
            group_id=self.config.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # The ledger processor may produce transactionally: aborted records are not facts.
            isolation_level="read_committed",
            fetch_min_bytes=GATHER_BYTES if self.config.gather_ms > 0 else 1,
            fetch_max_wait_ms=self.config.gather_ms or DEFAULT_FETCH_MAX_WAIT_MS,
        )
        await consumer.start()
        self._consumer = consumer
        try:
            partitions = await self._partitions()
            ends = await consumer.end_offsets(partitions) if until_caught_up else None
            self._ends_total = sum(ends.values()) if ends is not None else None
            if self.config.group_id is None:
                consumer.assign(partitions)
                self._must_seek(consumer, set(partitions))
            else:
                consumer.subscribe(list(self.config.topics), listener=_Reassigned(self, consumer))
            await self._loop(consumer, stop, report, ends, stop_after)
        except _StoppedError:
            log.warning("projection.stopped_before_write", projection=self.config.projection)
        finally:
            self._consumer = None
            await consumer.stop()
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        return report

    async def _loop(
        self,
        consumer: AIOKafkaConsumer,
        stop: asyncio.Event,
        report: RunReport,
        ends: dict[TopicPartition, int] | None,
        stop_after: int | None,
    ) -> None:
        """Fetch and admit the next batch while the previous one is being written: decoding
        (CPU, this thread) overlaps Postgres's work (a worker thread waiting on the server).
        At most one batch is in flight, so batches commit in the order they were read."""
        in_flight: asyncio.Task[None] | None = None
        try:
            while not stop.is_set():
                if self._unseeked:  # seeking uses the connection: the batch in flight first
                    await _settled(in_flight)
                    in_flight = None
                    await self._seek(consumer, stop, report)
                if ends is not None and await self._caught_up(consumer, ends):
                    await _settled(in_flight)
                    in_flight = None
                    if await self._caught_up(consumer, ends):  # (a rewind may have happened)
                        return
                if stop_after is not None and report.records >= stop_after:
                    return
                fetched = await consumer.getmany(
                    timeout_ms=self.config.poll_timeout_ms, max_records=self.config.max_records
                )
                batches = [
                    self._admit(tp, records, ends, consumer, report)
                    for tp, records in fetched.items()
                    if tp not in self._unseeked  # reassigned meanwhile: re-read after the seek
                ]
                batches = [batch for batch in batches if batch.records]
                if batches:
                    await _settled(in_flight)
                    in_flight = asyncio.create_task(self._write(consumer, stop, report, batches))
                    # Let it hand the batch to its thread now, before this one decodes the
                    # next (getmany may return at once without yielding).
                    await asyncio.sleep(0)
                elif in_flight is not None and in_flight.done():
                    await _settled(in_flight)
                    in_flight = None
        finally:
            await _settled(in_flight)

    async def _write(
        self,
        consumer: AIOKafkaConsumer,
        stop: asyncio.Event,
        report: RunReport,
        batches: list[PartitionBatch],
    ) -> None:
        assignments = self._assignments
        outcome = await self._retrying(stop, report, projection.apply, batches)
        report.transactions += 1
        report.records += sum(len(batch.records) for batch in batches)
        report.events_applied += outcome.events_applied
        APPLIED.labels(self.config.projection).inc(outcome.events_applied)
        report.next_offsets.update(outcome.next_offsets)
        self.progress.applied({TopicPartition(t, p): offset
                               for (t, p), offset in outcome.next_offsets.items()})  # fmt: skip
        if assignments == self._assignments:  # else the positions are being reloaded
            self._reposition(consumer, batches, outcome, report)
        if self._on_committed is not None:
            self._on_committed(report, self._ends_total)
        if self.config.group_id is not None:
            await self._commit_hint(consumer, outcome)

    def _admit(
        self,
        tp: TopicPartition,
        records: list[Any],
        ends: dict[TopicPartition, int] | None,
        consumer: AIOKafkaConsumer,
        report: RunReport,
    ) -> PartitionBatch:
        if ends is not None and records and records[-1].offset >= ends[tp]:
            records = [record for record in records if record.offset < ends[tp]]
            consumer.pause(tp)  # this run's work on the partition is done
        contract_topic = self.config.topics[tp.topic]
        trusted = contract_topic in projection.TRUSTED_TOPICS
        admitted = []
        for record in records:
            delivered = Delivered.of(record)
            event = admit(self.codec, delivered, contract_topic, trusted=trusted)
            if isinstance(event, DeadLettered):  # (itself an Event: test it first)
                self._refused(event, contract_topic)
                report.refused += 1
                admitted.append(Admitted(record.offset, None))
                continue
            if isinstance(event, Tombstone):  # only on the compacted config topic
                admitted.append(Admitted(record.offset, None))
                continue
            admitted.append(Admitted(record.offset, event))
        # `expected`: where the checkpoint stands once the batches before this one commit.
        batch = PartitionBatch(tp.topic, tp.partition, admitted, self._positions.get(tp))
        if admitted:
            self._positions[tp] = admitted[-1].offset + 1
        return batch

    def _refused(self, dead: DeadLettered, contract_topic: str) -> None:
        REFUSED.labels(self.config.projection, dead.original_topic, dead.reason.value).inc()
        fields = {
            "projection": self.config.projection,
            "topic": dead.original_topic,
            "partition": dead.original_partition,
            "offset": dead.original_offset,
            "reason": dead.reason.value,
            "error": dead.error[:300],
        }
        if contract_topic in _ENGINE_OUTPUTS:
            # The engine's own output: a refused record is a bug upstream and a hole in
            # someone's view. Loud, counted, and passed over.
            log.error("projection.ledger_record_refused", **fields)
        else:
            log.warning("projection.input_record_skipped", **fields)

    def _reposition(
        self,
        consumer: AIOKafkaConsumer,
        batches: list[PartitionBatch],
        outcome: Outcome,
        report: RunReport,
    ) -> None:
        paused = consumer.paused()
        for batch in batches:
            where = (batch.topic, batch.partition)
            tp = TopicPartition(batch.topic, batch.partition)
            if where in outcome.rewinds:
                log.warning(
                    "projection.rewind",
                    projection=self.config.projection,
                    topic=batch.topic,
                    partition=batch.partition,
                    checkpoint=outcome.rewinds[where],
                    position=batch.expected,
                )
                report.rewinds += 1
                consumer.resume(tp)
                self._seek_to(consumer, tp, outcome.rewinds[where])
            elif (
                outcome.next_offsets.get(where, 0) > self._positions.get(tp, 0) and tp not in paused
            ):
                # Someone (another projector, before a rebalance) applied further: skip what
                # the checkpoint already covers instead of reading it again.
                self._seek_to(consumer, tp, outcome.next_offsets[where])

    async def _commit_hint(self, consumer: AIOKafkaConsumer, outcome: Outcome) -> None:
        offsets = {
            TopicPartition(topic, partition): next_offset
            for (topic, partition), next_offset in outcome.next_offsets.items()
            if TopicPartition(topic, partition) in consumer.assignment()
        }
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except KafkaError as error:  # a hint only: the checkpoint is already in Postgres
            log.info("projection.offset_hint_not_committed", error=repr(error))

    def _must_seek(self, consumer: AIOKafkaConsumer, assigned: set[TopicPartition]) -> None:
        self._assignments += 1
        self.progress.assigned(assigned)
        self._unseeked |= assigned
        if assigned:
            consumer.pause(*assigned)  # nothing is fetched before the Postgres position is known

    def _forget(self, revoked: set[TopicPartition]) -> None:
        self._assignments += 1
        self.progress.revoked(revoked)
        self._unseeked -= revoked
        for tp in revoked:
            self._positions.pop(tp, None)

    async def _seek(
        self, consumer: AIOKafkaConsumer, stop: asyncio.Event, report: RunReport
    ) -> None:
        stored = await self._retrying(
            stop, report, checkpoints.load, self.config.projection, list(self.config.topics)
        )
        for tp in list(self._unseeked):
            if tp not in consumer.assignment():
                continue
            self._seek_to(consumer, tp, stored.get((tp.topic, tp.partition), 0))
            consumer.resume(tp)
        self._unseeked.clear()

    def _seek_to(self, consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> None:
        # Offset 0 of a topic whose first records were deleted is out of range; the consumer
        # then resets to the earliest record (auto_offset_reset).
        consumer.seek(tp, offset)
        self._positions[tp] = offset
        self.progress.applied({tp: offset})

    async def _caught_up(self, consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
        if self._unseeked:
            return False
        assigned = consumer.assignment()
        for tp, end in ends.items():
            if end == 0:
                continue
            if tp not in assigned or await consumer.position(tp) < end:
                return False
        return True

    async def _partitions(self, patience: float = 60.0) -> list[TopicPartition]:
        """Every partition of the projected topics. A topic just created (or a broker just
        restarted) may answer "leader not available" for a moment: asked again for up to
        `patience` seconds before the topic is declared unreadable."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience
        while True:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.config.bootstrap_servers)
            await admin.start()
            try:
                descriptions = await admin.describe_topics(list(self.config.topics))
            finally:
                await admin.close()
            unreadable = [
                d["topic"] for d in descriptions if d["error_code"] or not d["partitions"]
            ]
            if not unreadable:
                break
            if loop.time() >= deadline:
                raise ValueError(f"topic {unreadable[0]!r} cannot be read")
            log.warning("projector.topics_not_ready", topics=unreadable)
            await asyncio.sleep(0.5)
        found = []
        for description in descriptions:
            found += sorted(
                TopicPartition(description["topic"], p["partition"])
                for p in description["partitions"]
            )
        return found

    async def _retrying(self, stop: asyncio.Event, report: RunReport, work: Any, *args: Any) -> Any:
        """`work(conn, *args)` in a worker thread (the event loop keeps heartbeating), retried
        with backoff on any Postgres error until it succeeds or `stop` is set."""
        delay = 0.1
        while True:
            try:
                done = await asyncio.to_thread(self._call, work, *args)
                self._failing = None
                return done
            except psycopg.Error as error:
                self._failing = repr(error)[:300]
                RETRIES.labels(self.config.projection).inc()
                report.retries += 1
                log.error(
                    "projection.postgres_failed",
                    projection=self.config.projection,
                    error=repr(error)[:500],
                    retry_in_seconds=delay,
                )
                try:
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                except TimeoutError:
                    delay = min(delay * 2, self.config.retry_delay_max)
                    continue
                raise _StoppedError from error

    def health(self, stall_seconds: float) -> tuple[bool, dict[str, object]]:
        """Whether the projector is making progress, and what stands in its way if not."""
        consumer = self._consumer
        if consumer is None:
            return body(["not consuming"])
        ends = {tp: consumer.highwater(tp) for tp in consumer.assignment()}
        self.progress.observe(ends)
        problems = [f"{tp} has records waiting and has not been written for {stall_seconds:g}s"
                    for tp in self.progress.stalled(ends, stall_seconds)]  # fmt: skip
        if self._failing is not None:
            problems.append(f"Postgres writes failing, retrying: {self._failing}")
        return body(problems)

    def _call(self, work: Any, *args: Any) -> Any:
        if self._conn is None or self._conn.closed or self._conn.broken:
            if self._conn is not None:
                self._conn.close()
            self._conn = db.connect(self.config.dsn, schema=self.config.schema, autocommit=True)
        return work(self._conn, *args)
