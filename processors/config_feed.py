"""A process's copy of the engine's configuration: the compacted config topic, followed from
the beginning into a `processors.rules.member.Config` (programmes and the offer catalogue).

Each process that evaluates rules (the worker, the API's cart preview) reads
`loyalty.config.v1` with its own consumer and no group, so every copy sees every record.
`ready` is set once the copy has caught up with the end offsets seen when the feed started:
before that, answers computed from it would miss offers or programmes.

Records go through the front door (`processors.frontdoor.admit`: decode, validate, right
topic, right key); a record it refuses is logged and skipped here, and dead-lettered once by
the worker's config fan-out agent, which reads the same topic in a consumer group. A
tombstone is skipped (`Config` has no deletion); an event that changes nothing (a kind no rule
reads yet) is counted and logged. What an event means for the configuration is `Config.apply`'s
business, never this module's.

Every event is applied on the event loop's thread, between awaits: a reader on the same loop
never sees a half-applied event. It never writes to Kafka and never reads a clock.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import Counter

from processors.base.logs import get_logger
from processors.base.topics import CONFIG
from processors.codec.avro import AvroCodec
from processors.contract.base import Event
from processors.contract.deadletter import DeadLettered
from processors.frontdoor import Delivered, admit
from processors.rules.member import Config

log = get_logger(__name__)
NOTED = Counter(
    "loyalty_config_events_noted_total",
    "Config events admitted that changed nothing (no rule reads them, or refused).",
    ["type"],
)


class ConfigFeed:
    """Follows the config topic `topic` (carrying `loyalty.config.v1`) into `config`."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        codec: AvroCodec,
        *,
        config: Config | None = None,
        retry_delay_max: float = 30.0,
    ):
        self.bootstrap = bootstrap
        self.topic = topic
        self.codec = codec
        self.config = config if config is not None else Config()
        self.ready = asyncio.Event()
        """Set once every partition is read up to the end offset it had when `run` started."""
        self.applied = 0
        self.skipped = 0
        self.last_error: str | None = None
        self._positions: dict[TopicPartition, int] = {}
        self._ends: dict[TopicPartition, int] | None = None
        self._retry_delay_max = retry_delay_max
        self._consumer: AIOKafkaConsumer | None = None
        self._offsets: AIOKafkaConsumer | None = None
        """A client of its own for `catch_up`'s end offsets: a broker answers one connection's
        requests in order, so asked on the follower's connection they waited behind its
        long-poll fetch (up to 500 ms for every enrolment: found by a user trial)."""

    @property
    def status(self) -> str:
        """Where the feed stands, in words (what a 503 says while it is not ready)."""
        if self.ready.is_set():
            return f"caught up: {self.applied} config event(s) applied"
        if self.last_error is not None:
            return f"cannot read {self.topic}: {self.last_error}"
        if self._ends is None:
            return f"connecting to read {self.topic}"
        done = sum(self._positions.get(tp, 0) for tp in self._ends)
        return f"reading {self.topic}: {done} of {sum(self._ends.values())} record(s)"

    async def run(self) -> None:
        """Follow the topic until cancelled. A broker failure is logged and retried with
        backoff, resuming after the last record applied (nothing is applied twice)."""
        delay = 0.5
        while True:
            try:
                await self._follow()
            except KafkaError as error:
                self.last_error = repr(error)[:300]
                log.error("config_feed.failed", topic=self.topic, error=self.last_error,
                          retry_in_seconds=delay)  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_delay_max)

    async def _follow(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        offsets = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            await offsets.start()
        except BaseException:
            await consumer.stop()
            raise
        self._consumer, self._offsets = consumer, offsets
        try:
            await consumer.topics()  # loads the cluster's metadata, this topic's included
            partitions = [
                TopicPartition(self.topic, p)
                for p in sorted(consumer.partitions_for_topic(self.topic) or {0})
            ]
            consumer.assign(partitions)
            for tp in partitions:
                consumer.seek(tp, self._positions.get(tp, 0))
            if self._ends is None:
                self._ends = await consumer.end_offsets(partitions)
            self.last_error = None
            await self._check_caught_up(consumer)
            while True:
                fetched = await consumer.getmany(timeout_ms=1000)
                for tp, records in fetched.items():
                    for record in records:
                        self._apply(Delivered.of(record))
                        self._positions[tp] = record.offset + 1
                await self._check_caught_up(consumer)
        finally:
            self._consumer = self._offsets = None
            await consumer.stop()
            await offsets.stop()

    async def catch_up(self, timeout: float = 30.0) -> bool:
        """Wait until this copy has applied everything the topic holds now: what an input
        that refers to configuration published just before it needs (a targeting tick races
        the feed to the worker). False when `timeout` passed first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        await asyncio.wait_for(self.ready.wait(), timeout)
        while loop.time() < deadline:
            consumer, offsets = self._consumer, self._offsets
            if consumer is not None and offsets is not None and self._ends is not None:
                ends = await offsets.end_offsets(list(self._ends))
                behind = [tp for tp, end in ends.items() if self._positions.get(tp, 0) < end]
                if not behind:
                    return True
                # Offsets no record carries (compaction, markers): the fetch position counts,
                # once the follower has had a turn to apply what it fetched.
                positions = [await consumer.position(tp) for tp in behind]
                await asyncio.sleep(0.02)
                if all(p >= ends[tp] for tp, p in zip(behind, positions, strict=True)):
                    return True
            else:
                await asyncio.sleep(0.05)
        return False

    async def _check_caught_up(self, consumer: AIOKafkaConsumer) -> None:
        if self.ready.is_set() or self._ends is None:
            return
        for tp, end in self._ends.items():
            # The position, not the last record: compaction and transaction markers leave
            # offsets no record carries.
            if await consumer.position(tp) < end:
                return
        self.ready.set()
        log.info("config_feed.caught_up", topic=self.topic, applied=self.applied,
                 programmes=len(self.config.programs),
                 offers=len(self.config.catalogue))  # fmt: skip

    def _apply(self, delivered: Delivered) -> None:
        admitted = admit(self.codec, delivered, CONFIG.name)
        if isinstance(admitted, DeadLettered):  # (itself an Event: test it first)
            self.skipped += 1
            log.warning("config_feed.record_skipped", topic=delivered.topic,
                        partition=delivered.partition, offset=delivered.offset,
                        reason=admitted.reason.value, error=admitted.error[:300])  # fmt: skip
            return
        if not isinstance(admitted, Event):
            self.skipped += 1
            log.info("config_feed.tombstone_skipped", offset=delivered.offset, key=admitted.key)
            return
        note = self.config.apply(admitted)
        self.applied += 1
        if note:
            # Read but changing nothing: a kind another agent owns (a reward's codes), or an
            # event the configuration refuses (a late extension, a challenge's unsupported goal).
            NOTED.labels(type(admitted).__name__).inc()
            log.info("config_feed.event_noted", offset=delivered.offset,
                     type=type(admitted).__name__, note=note)  # fmt: skip
