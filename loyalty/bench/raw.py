"""Raw-stack baselines: what the broker and Postgres do with no engine code in the way.

1. aiokafka produce throughput (idempotent producer, acks=all, small records).
2. A bare aiokafka consume → produce loop with commits: the Python baseline every later
   pipeline (the worker's agents, projections) is compared with.
3. A Postgres COPY of ledger-shaped rows: the baseline for projection writers.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from loyalty.bench.report import BenchReport, Measurement
from loyalty.stack import kafka
from processors.base.settings import Settings

RECORD_BYTES = 200


async def run_raw_bench(settings: Settings, *, messages: int, rows: int) -> BenchReport:
    """Run the three raw measurements against the stack named by `settings`."""
    report = BenchReport(
        "raw", context={"kafka_version": settings.kafka_version, "partitions": settings.partitions}
    )
    run = uuid.uuid4().hex[:8]
    source, sink = f"bench.raw.{run}.in", f"bench.raw.{run}.out"
    await kafka.ensure_topics(
        settings.bootstrap_servers,
        {source: (settings.partitions, {}), sink: (settings.partitions, {})},
    )
    report.add(await measure_produce(settings.bootstrap_servers, source, messages))
    report.add(await measure_consume_produce(settings.bootstrap_servers, source, sink, messages))
    report.add(await asyncio.to_thread(measure_copy, settings.dsn, rows))
    return report


def _producer(bootstrap: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        max_batch_size=256 * 1024,
    )


async def measure_produce(bootstrap: str, topic: str, messages: int) -> Measurement:
    """Produce `messages` keyed records and wait until every one is acknowledged."""
    payload = b"x" * RECORD_BYTES
    producer = _producer(bootstrap)
    await producer.start()
    try:
        started = time.perf_counter()
        pending = []
        for i in range(messages):
            pending.append(await producer.send(topic, payload, key=f"member-{i % 50_000}".encode()))
            if len(pending) >= 10_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        seconds = time.perf_counter() - started
    finally:
        await producer.stop()
    return Measurement(
        "aiokafka produce", "records", messages, seconds, f"{RECORD_BYTES} B, acks=all, idempotent"
    )


async def measure_consume_produce(
    bootstrap: str, source: str, sink: str, messages: int
) -> Measurement:
    """Consume `messages` from `source`, produce each to `sink`, commit after each acked batch."""
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=f"bench-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=1000,
    )
    producer = _producer(bootstrap)
    await asyncio.gather(consumer.start(), producer.start())
    try:
        seen = 0
        started: float | None = None
        while seen < messages:
            batches = await consumer.getmany(timeout_ms=1000, max_records=1000)
            if started is None and batches:
                started = time.perf_counter()
            pending = []
            for records in batches.values():
                for record in records:
                    pending.append(await producer.send(sink, record.value, key=record.key))
            await asyncio.gather(*pending)
            # At-least-once: offsets are committed only after the outputs are acknowledged.
            await consumer.commit()
            seen += len(pending)
        seconds = time.perf_counter() - (started or time.perf_counter())
    finally:
        await asyncio.gather(consumer.stop(), producer.stop())
    return Measurement(
        "aiokafka consume→produce loop",
        "records",
        messages,
        seconds,
        "commit after acked batch (baseline)",
    )


def measure_copy(dsn: str, rows: int) -> Measurement:
    """COPY `rows` ledger-shaped rows into a fresh table, in one transaction."""
    table = f"bench_copy_{uuid.uuid4().hex[:8]}"
    base = datetime(2026, 1, 1, tzinfo=UTC)
    data = [
        (
            f"evt-{i}",
            f"member-{i % 50_000}",
            "TRANSACTION_ADD",
            i % 1000,
            base + timedelta(seconds=i),
        )
        for i in range(rows)
    ]
    with psycopg.connect(dsn) as conn:
        conn.execute(
            f"CREATE TABLE {table} (event_id text PRIMARY KEY, member_id text NOT NULL,"
            " event_type text NOT NULL, points bigint NOT NULL, occurred_at timestamptz NOT NULL)"
        )
        conn.commit()
        try:
            started = time.perf_counter()
            with (
                conn.cursor() as cursor,
                cursor.copy(
                    f"COPY {table} (event_id, member_id, event_type, points, occurred_at)"
                    " FROM STDIN"
                ) as copy,
            ):
                for row in data:
                    copy.write_row(row)
            conn.commit()
            seconds = time.perf_counter() - started
        finally:
            conn.execute(f"DROP TABLE IF EXISTS {table}")
            conn.commit()
    return Measurement(
        "postgres COPY", "rows", rows, seconds, "5 columns, primary key, one transaction"
    )
