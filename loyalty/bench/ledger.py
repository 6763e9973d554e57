"""End-to-end ledger benchmark: purchases on the input topic → worker (rules) → ledger topic →
projector → Postgres rows, against a bare aiokafka consume→produce loop over the same records,
measured in the same run (DESIGN.md §8; issue #4 targets ≥ 50 % of the loop).

1. Isolated topics (a fresh prefix) and a fresh database; a programme and N members enrolled,
   with the worker and the projector running and warm.
2. The measured run: M purchases produced; the clock stops when every purchase's ledger event
   is a row in Postgres.
3. Baseline: the same M purchase records consumed and produced again by a bare aiokafka loop
   (commit after each acknowledged batch), on the same broker.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg

from loyalty import stack
from loyalty.bench.raw import measure_consume_produce
from loyalty.bench.report import BenchReport, Measurement
from loyalty.producing import publish_events
from loyalty.services import Services
from loyalty.settings import Settings
from loyalty.topics import TRANSACTIONS
from processors.codec.avro import AvroCodec
from processors.contract.base import Event
from processors.contract.common import PointsCategory, Source, Store
from processors.contract.config import ExpiryPolicy, ExpiryPolicyKind, ProgramConfigured
from processors.contract.enrolments import MemberEnrolled, MemberProfile
from processors.contract.transactions import TransactionCompleted, TransactionLine

START = datetime(2026, 1, 5, 14, 0, tzinfo=UTC)


def _program() -> ProgramConfigured:
    return ProgramConfigured(
        event_id="bench-program",
        occurred_at=START - timedelta(days=1),
        program_id="BENCH",
        name="Bench",
        market="CA",
        currency="CAD",
        time_zone="America/Toronto",
        categories=[PointsCategory.REGULAR],
        points_per_currency_unit=Decimal("1"),
        expiry=ExpiryPolicy(kind=ExpiryPolicyKind.DAYS_AFTER_EARN, days=365),
    )


def _purchase(n: int, members: int) -> TransactionCompleted:
    line = TransactionLine(
        line_id="1",
        sku=f"SKU-{n % 50}",
        quantity=Decimal(1),
        unit_price_cents=1000 + n % 997,
        amount_cents=1000 + n % 997,
    )
    return TransactionCompleted(
        event_id=f"bench-tx-{n}",
        occurred_at=START + timedelta(seconds=n),
        transaction_id=f"BT{n}",
        member_id=f"BM{n % members:06d}",
        market="CA",
        currency="CAD",
        source=Source.INSTORE,
        store=Store(store_id="S1", province="ON"),
        lines=[line],
    )


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


async def run_ledger_bench(
    settings: Settings, dsn: str, *, members: int, purchases: int, log_dir: Path
) -> BenchReport:
    """Run both measurements; `dsn` must be a fresh, migrated database."""
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
    try:
        await publish_events(isolated, [_program()], codec)
        services.start("worker", "worker")
        services.start("projector", "project")
        enrolments: list[Event] = [
            MemberEnrolled(
                event_id=f"bench-enrol-{m}",
                occurred_at=START,
                member_id=f"BM{m:06d}",
                market="CA",
                program_ids=["BENCH"],
                source=Source.APP,
                profile=MemberProfile(first_name="Bench"),
            )
            for m in range(members)
        ]
        await publish_events(isolated, enrolments, codec)
        warm = await _wait_for_rows(dsn, "SELECT count(*) FROM ledger_events", members, 300)
        if warm < members:
            raise RuntimeError(f"the engine did not warm up: {warm}/{members} enrolments")
        load: list[Event] = [_purchase(n, members) for n in range(purchases)]
        started = time.perf_counter()
        await publish_events(isolated, load, codec)
        done = await _wait_for_rows(
            dsn,
            "SELECT count(*) FROM ledger_events WHERE event_type = 'TRANSACTION_ADD'",
            purchases,
            900,
        )
        seconds = time.perf_counter() - started
        if done < purchases:
            raise RuntimeError(f"only {done}/{purchases} purchases reached Postgres")
        report.add(
            Measurement(
                "engine: input → rules → ledger → Postgres",
                "purchases",
                purchases,
                seconds,
                "worker + projector, 1 process each",
            )
        )
    finally:
        services.stop()
    sink = isolated.topic("bench.loop-sink")
    await stack.kafka.ensure_topics(isolated.bootstrap_servers, {sink: (settings.partitions, {})})
    # The baseline reads the same topic; enrolments are in it too, so it moves them as well.
    total = members + purchases
    baseline = await measure_consume_produce(
        isolated.bootstrap_servers, isolated.topic(TRANSACTIONS.name), sink, purchases
    )
    report.add(baseline)
    engine = report.measurements[0]
    report.context["ratio_engine_to_loop"] = (
        round(engine.rate / baseline.rate, 3) if baseline.rate else None
    )
    report.context["records_on_input_topic"] = total
    return report
