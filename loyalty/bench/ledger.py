"""End-to-end ledger benchmark: purchases on the input topic → worker (rules) → ledger topic →
projector → Postgres rows, against a bare aiokafka consume→produce loop over the same records,
measured in the same run (DESIGN.md §8; issue #4 targets ≥ 50 % of the loop).

1. Isolated topics (a fresh prefix) and a fresh database; a programme and N members enrolled,
   with the worker and the projector running and warm.
2. The measured run: M purchases (Avro-encoded before the clock starts) produced; the clock
   stops when every purchase's ledger event is a row in Postgres. The stages run as a
   pipeline (the projector follows the worker), so the figure is bounded by the slowest stage;
   a sampler records when the ledger topic holds every purchase's event (the worker's stage)
   and how far Postgres lags behind it (the projector's tail).
3. Baseline: the same M purchase records consumed and produced again by a bare aiokafka loop
   (commit after each acknowledged batch), on the same broker.
4. The pure path: the worker's batch protocol with no Kafka at all (`loyalty.bench.pure`),
   measured first, on the same records.

`--mix` runs the realistic mix of `loyalty.bench.mix` instead of one-line purchases: 200 live
offers, baskets of 1-30 lines, returns, redemptions and activities. The clock then stops when
every purchase's TRANSACTION_ADD is a row (each partition is processed in order, so the
returns, redemptions and activities before it are done too), the worker's stage when the
ledger topic holds as many events as the pure path emitted for the same records, and the
bare loop copies the records of the transactions topic. The pure path's own baseline is the
codec alone on the same records (decode, validate, encode).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from loyalty import stack
from loyalty.bench import mix
from loyalty.bench.load import enrolment, program, purchase
from loyalty.bench.pure import measure_pure
from loyalty.bench.raw import measure_consume_produce
from loyalty.bench.report import BenchReport, Measurement, verdict
from loyalty.producing import publish_events
from loyalty.services import Services
from loyalty.stack import processes
from loyalty.stack.kafka import KafkaPaths
from processors.base.settings import Settings
from processors.base.topics import LEDGER, TRANSACTIONS
from processors.codec.avro import AvroCodec
from processors.contract.base import Event
from processors.contract.transactions import TransactionCompleted

LOOP_SHARE_MIN = 0.20
"""Issue #16, target 1: the worker end to end at >= 20 % of the bare loop."""
PURE_RATE_MIN = 10_000.0
"""Issue #16, target 1: the pure path at >= 10,000 purchases a second."""


def _count(dsn: str, sql: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(sql).fetchone()
        return int(row[0]) if row else 0


async def _wait_for_rows(dsn: str, sql: str, want: int, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    have = 0
    while time.monotonic() < deadline:
        have = await asyncio.to_thread(_count, dsn, sql)
        if have >= want:
            return have
        await asyncio.sleep(0.2)
    return have


def _cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds a process has used so far (Linux /proc); None if unknown."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _CpuMeter:
    """CPU seconds that named processes use between `start` and `stop` (None: not
    measurable, e.g. a remote broker). Another client of the same broker inflates its figure."""

    def __init__(self, pids: Mapping[str, int | None]):
        self.pids = dict(pids)
        self.before: dict[str, float | None] = {}
        self.used: dict[str, float | None] = {}

    def start(self) -> None:
        self.before = {name: _cpu_seconds(pid) for name, pid in self.pids.items()}
        self.before["this process"] = time.process_time()

    def stop(self) -> dict[str, float | None]:
        after = {name: _cpu_seconds(pid) for name, pid in self.pids.items()}
        after["this process"] = time.process_time()
        for name, value in after.items():
            was = self.before.get(name)
            self.used[name] = (
                round(value - was, 2) if value is not None and was is not None else None
            )
        return dict(self.used)


def _broker_pid(settings: Settings) -> int | None:
    """The local stack's broker process, if this machine runs it."""
    return processes.read_pid(KafkaPaths.of(settings).pid_file)


async def _produce_encoded(bootstrap: str, records: list[tuple[str, bytes, bytes]]) -> None:
    """Produce already encoded (topic, key, value) records; wait for every acknowledgement."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=5,
        max_batch_size=256 * 1024,
    )  # fmt: skip
    await producer.start()
    try:
        futures = [await producer.send(t, v, key=k) for t, k, v in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


class _Stages:
    """Samples, while the measured run goes, how many ledger events the worker has produced
    and how many purchases the projector has written, to time each stage of the pipeline."""

    def __init__(self, bootstrap: str, ledger_topic: str, partitions: int, dsn: str):
        self.bootstrap = bootstrap
        self.partitions = [TopicPartition(ledger_topic, p) for p in range(partitions)]
        self.dsn = dsn
        self.worker_done_at: float | None = None
        self.samples: list[tuple[float, int, int]] = []  # (seconds, ledger events, rows)

    async def ledger_end(self, consumer: AIOKafkaConsumer) -> int:
        ends = await consumer.end_offsets(self.partitions)
        return sum(ends.values())

    async def follow(self, started: float, base: int, want: int, stop: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap)
        await consumer.start()
        try:
            while not stop.is_set():
                events = await self.ledger_end(consumer) - base
                rows = await asyncio.to_thread(
                    _count, self.dsn,
                    "SELECT count(*) FROM ledger_events WHERE event_type = 'TRANSACTION_ADD'",
                )  # fmt: skip
                now = time.perf_counter() - started
                self.samples.append((now, events, rows))
                if self.worker_done_at is None and events >= want:
                    self.worker_done_at = now
                await asyncio.sleep(0.25)
        finally:
            await consumer.stop()


@dataclass(frozen=True)
class LedgerLoad:
    """What one run publishes, what it waits for, and its pure path measured on the same
    records before the run."""

    name: str
    config: list[Event]
    enrolments: list[Event]
    events: list[Event]  # timed, in this order
    purchases: int  # TRANSACTION_ADD rows the clock waits for
    ledger_events: int  # what the worker writes to the ledger topic for `events`
    pure: list[Measurement]

    @property
    def input_records(self) -> int:
        """The records on the transactions topic, which the bare loop copies."""
        return sum(1 for e in self.events if e.topic == TRANSACTIONS.name)


async def purchases_load(members: int, purchases: int) -> LedgerLoad:
    """One programme, `members` enrolled, `purchases` one-line purchases (issue #4's load)."""
    pure = await measure_pure(members=members, purchases=purchases)
    events: list[Event] = [purchase(n, members) for n in range(purchases)]
    enrolments: list[Event] = [enrolment(m) for m in range(members)]
    return LedgerLoad("purchases", [program()], enrolments, events, purchases, purchases, [pure])


async def mix_load(members: int, events: int, offer_count: int = 200) -> LedgerLoad:
    """The realistic mix (`loyalty.bench.mix`), its pure path and that path's baseline."""
    sent: Counter[str] = Counter()
    pure = await mix.measure_mix(members=members, events=events, offer_count=offer_count, sent=sent)
    floor = mix.measure_codec_floor(members=members, events=events, offer_count=offer_count)
    _, enrolments, stream = mix.load(members, events, offer_count)
    config: list[Event] = [mix.program(), *mix.offers(offer_count)]
    purchases = sum(1 for e in stream if isinstance(e, TransactionCompleted))
    return LedgerLoad(
        "mix", config, enrolments, stream, purchases, sent[LEDGER.name], [pure, floor]
    )


async def run_ledger_bench(
    settings: Settings, dsn: str, *, load: LedgerLoad, log_dir: Path
) -> BenchReport:
    """Run the measurements; `dsn` must be a fresh, migrated database."""
    isolated = settings.model_copy(
        update={"topic_prefix": f"bench{uuid.uuid4().hex[:6]}.", "database_url": dsn}
    )
    await asyncio.to_thread(stack.up, isolated)
    codec = AvroCodec()
    members, purchases, count = len(load.enrolments), load.purchases, len(load.events)
    report = BenchReport(
        f"ledger-e2e-{load.name}",
        context={
            "load": load.name,
            "members": members,
            "events": count,
            "purchases": purchases,
            "ledger_events": load.ledger_events,
            "partitions": settings.partitions,
        },
    )
    services = Services(isolated, log_dir)
    cpu: dict[str, dict[str, float | None]] = {}
    report.context["cpu_seconds"] = cpu
    try:
        await publish_events(isolated, load.config, codec)
        worker = services.start("worker", "worker")
        projector = services.start("projector", "project")
        await publish_events(isolated, load.enrolments, codec)
        warm = await _wait_for_rows(dsn, "SELECT count(*) FROM ledger_events", members, 300)
        if warm < members:
            raise RuntimeError(f"the engine did not warm up: {warm}/{members} enrolments")
        # The inputs are encoded before the clock starts: a client's work, not the engine's.
        records = [
            (isolated.topic(e.topic), e.partition_key().encode(), codec.encode(e))
            for e in load.events
        ]
        stages = _Stages(
            isolated.bootstrap_servers, isolated.topic(LEDGER.name), settings.partitions, dsn
        )
        probe = AIOKafkaConsumer(bootstrap_servers=isolated.bootstrap_servers)
        await probe.start()
        try:
            base = await stages.ledger_end(probe)
        finally:
            await probe.stop()
        stop = asyncio.Event()
        engine_cpu = _CpuMeter(
            {
                "worker": worker.process.pid if worker.process else None,
                "projector": projector.process.pid if projector.process else None,
                "broker": _broker_pid(settings),
            }
        )
        engine_cpu.start()
        started, wall = time.perf_counter(), time.time()
        sampler = asyncio.create_task(stages.follow(started, base, load.ledger_events, stop))
        await _produce_encoded(isolated.bootstrap_servers, records)
        produced = time.perf_counter() - started
        done = await _wait_for_rows(
            dsn,
            "SELECT count(*) FROM ledger_events WHERE event_type = 'TRANSACTION_ADD'",
            purchases,
            900,
        )
        seconds = time.perf_counter() - started
        cpu["engine"] = engine_cpu.stop()
        worker_cpu = cpu["engine"].get("worker")
        if worker_cpu is not None:
            report.context["worker_cpu_ms_per_event"] = round(1000 * worker_cpu / count, 3)
        stop.set()
        await sampler
        if done < purchases:
            raise RuntimeError(f"only {done}/{purchases} purchases reached Postgres")
        report.add(
            Measurement(
                "engine: input → rules → ledger → Postgres",
                "events",
                count,
                seconds,
                "worker + projector, 1 process each, pipelined",
            )
        )
        worker_seconds = stages.worker_done_at or seconds
        report.add(
            Measurement(
                "  stage: worker (input → ledger topic)",
                "events",
                count,
                worker_seconds,
                f"{load.ledger_events:,} ledger events, sampled every 0.25 s",
            )
        )
        report.context["inputs_produced_seconds"] = round(produced, 3)
        report.context["projector_tail_seconds"] = round(seconds - worker_seconds, 3)
        report.context["stage_samples"] = [
            [round(t, 2), events, rows] for t, events, rows in stages.samples
        ]
        report.done_over_run["ledger events on the topic"] = [
            (wall + t, events) for t, events, _ in stages.samples
        ]
        report.done_over_run["rows in Postgres"] = [
            (wall + t, rows) for t, _, rows in stages.samples
        ]
    finally:
        services.stop()
    sink = isolated.topic("bench.loop-sink")
    await stack.kafka.ensure_topics(
        isolated.bootstrap_servers,
        {sink: (settings.partitions, {}), f"{sink}.changelog": (settings.partitions, {})},
    )
    meter = _CpuMeter({"broker": _broker_pid(settings)})
    meter.start()
    baseline = await measure_consume_produce(
        isolated.bootstrap_servers, isolated.topic(TRANSACTIONS.name), sink, load.input_records
    )
    cpu["loop"] = meter.stop()
    report.add(baseline)
    for measurement in load.pure:
        report.add(measurement)
    engine = report.measurements[0]
    engine_to_loop = round(engine.rate / baseline.rate, 3) if baseline.rate else None
    report.context["ratio_engine_to_loop"] = engine_to_loop
    if len(load.pure) > 1 and load.pure[1].rate:
        report.context["ratio_pure_to_codec"] = round(load.pure[0].rate / load.pure[1].rate, 3)
    report.context["records_on_input_topic"] = load.input_records
    pure = load.pure[0]
    report.judge(
        verdict(
            f"#16.1 worker end to end / bare loop ({load.name})",
            engine_to_loop, at_least=LOOP_SHARE_MIN, unit="×",
            baseline=f"bare loop {baseline.rate:,.0f}/s, engine {engine.rate:,.0f}/s",
        ),
        verdict(
            f"#16.1 pure path ({load.name}), events a second", pure.rate,
            at_least=PURE_RATE_MIN, unit="/s",
            baseline=(f"codec alone {load.pure[1].rate:,.0f}/s" if len(load.pure) > 1
                      else "no baseline: an absolute rate"),
        ),
    )  # fmt: skip
    return report
