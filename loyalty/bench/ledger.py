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
4. The pure path: the worker's batch protocol with no Kafka at all (`loyalty.bench.pure`).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

import psycopg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from loyalty import stack
from loyalty.bench.load import enrolment, program, purchase
from loyalty.bench.pure import measure_pure
from loyalty.bench.raw import measure_consume_produce
from loyalty.bench.report import BenchReport, Measurement
from loyalty.producing import publish_events
from loyalty.services import Services
from loyalty.stack import processes
from loyalty.stack.kafka import KafkaPaths
from processors.base.settings import Settings
from processors.base.topics import LEDGER, TRANSACTIONS
from processors.codec.avro import AvroCodec
from processors.contract.base import Event


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


async def run_ledger_bench(
    settings: Settings, dsn: str, *, members: int, purchases: int, log_dir: Path
) -> BenchReport:
    """Run the measurements; `dsn` must be a fresh, migrated database."""
    isolated = settings.model_copy(
        update={"topic_prefix": f"bench{uuid.uuid4().hex[:6]}.", "database_url": dsn}
    )
    await asyncio.to_thread(stack.up, isolated)
    codec = AvroCodec()
    report = BenchReport(
        "ledger-e2e",
        context={"members": members, "purchases": purchases, "partitions": settings.partitions},
    )
    services = Services(isolated, log_dir)
    cpu: dict[str, dict[str, float | None]] = {}
    report.context["cpu_seconds"] = cpu
    try:
        await publish_events(isolated, [program()], codec)
        worker = services.start("worker", "worker")
        projector = services.start("projector", "project")
        enrolments: list[Event] = [enrolment(m) for m in range(members)]
        await publish_events(isolated, enrolments, codec)
        warm = await _wait_for_rows(dsn, "SELECT count(*) FROM ledger_events", members, 300)
        if warm < members:
            raise RuntimeError(f"the engine did not warm up: {warm}/{members} enrolments")
        # The inputs are encoded before the clock starts: a client's work, not the engine's.
        load = [
            (isolated.topic(e.topic), e.partition_key().encode(), codec.encode(e))
            for e in (purchase(n, members) for n in range(purchases))
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
        started = time.perf_counter()
        sampler = asyncio.create_task(stages.follow(started, base, purchases, stop))
        await _produce_encoded(isolated.bootstrap_servers, load)
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
            report.context["worker_cpu_ms_per_purchase"] = round(1000 * worker_cpu / purchases, 3)
        stop.set()
        await sampler
        if done < purchases:
            raise RuntimeError(f"only {done}/{purchases} purchases reached Postgres")
        report.add(
            Measurement(
                "engine: input → rules → ledger → Postgres",
                "purchases",
                purchases,
                seconds,
                "worker + projector, 1 process each, pipelined",
            )
        )
        worker_seconds = stages.worker_done_at or seconds
        report.add(
            Measurement(
                "  stage: worker (input → ledger topic)",
                "purchases",
                purchases,
                worker_seconds,
                "sampled every 0.25 s; the projector runs meanwhile",
            )
        )
        report.context["inputs_produced_seconds"] = round(produced, 3)
        report.context["projector_tail_seconds"] = round(seconds - worker_seconds, 3)
        report.context["stage_samples"] = [
            [round(t, 2), events, rows] for t, events, rows in stages.samples
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
        isolated.bootstrap_servers, isolated.topic(TRANSACTIONS.name), sink, purchases
    )
    cpu["loop"] = meter.stop()
    report.add(baseline)
    report.add(await measure_pure(members=members, purchases=purchases))
    engine = report.measurements[0]
    report.context["ratio_engine_to_loop"] = (
        round(engine.rate / baseline.rate, 3) if baseline.rate else None
    )
    report.context["records_on_input_topic"] = purchases
    return report
