"""`loyalty bench-redeem`: the redemption round trip (POST -> decided answer) at a fixed rate,
beside `GET /healthz` measured the same way in the same run (issue #12: p99 <= 100 ms at
50 requests/s).

1. A worker, a projector and the API (`loyalty api`) run as subprocesses on the run's own
   topics and a fresh database, as in production: the API writes each request to Kafka and
   waits for the worker's decision, which the projector writes to Postgres.
2. One programme, `members` members each funded by one purchase, and two rewards: one booked
   at once on the member's partition (no stock, no total limit), one taking a unique code
   from a stock (the three steps of ADR 20: reserve, allocate on the reward's partition,
   book). The run waits until the balances and the stock are projected and the worker has
   run its backlog; a warm-up at the measured rate (not counted) lets the processes reach
   their steady state (their first seconds also run the world's other projections).
3. Load: an open-loop schedule (requests start at fixed instants, whatever the answers do)
   of `POST /v1/members/{id}/redemptions`, each with a key of its own, alternating the two
   rewards over the members, and `GET /healthz` at the same rate interleaved: HTTP plus one
   Postgres round trip, the baseline. A latency runs from the request's scheduled start
   (no coordinated omission) to its answer; a redemption counts only if it was decided
   (201): a 202 (the wait ran out) or anything else is counted as an error beside.

Nothing here asserts a time; the report says whether the target was met.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
from rich.console import Console
from rich.table import Table

from loyalty import stack
from loyalty.audit import uncommitted
from loyalty.bench import load
from loyalty.bench.cart import Latencies
from loyalty.bench.feed import cpu_seconds, wait_until_ready
from loyalty.bench.report import BenchReport, Measurement
from loyalty.chaos import delete_topics
from loyalty.producing import publish_events
from loyalty.services import Services, free_port
from processors.base.settings import Settings
from processors.codec.json_form import from_json_object
from processors.contract.base import Event
from processors.contract.common import Source, Store
from processors.contract.config import RewardCodesAdded
from processors.contract.enrolments import MemberEnrolled, MemberProfile
from processors.contract.transactions import TransactionCompleted, TransactionLine
from projections.api.auth import Role, issue_token

P99_MAX_MS = 100.0
DIRECT, STOCKED = "BENCH-DIRECT", "BENCH-STOCKED"
COST = 10
CODES_PER_BATCH = 1000


@dataclass
class RoundTrips:
    """What one open-loop run measured."""

    latencies: dict[str, Latencies]
    statuses: dict[str, dict[int, int]] = field(default_factory=dict)
    scheduled: int = 0
    seconds: float = 0.0
    lag_max_ms: float = 0.0


def _reward(reward_id: str, *, stocked: bool, now: datetime) -> Event:
    copy = {"headline": f"Bench {reward_id}", "short_description": "A reward to measure."}
    return from_json_object({
        "type": "RewardPublished", "event_id": f"bench-{reward_id}", "occurred_at":
        (now - timedelta(days=1)).isoformat(), "reward_id": reward_id,
        "program_id": load.PROGRAM_ID, "market": "CA",
        "localized_copy": [{"locale": "en", **copy}, {"locale": "fr", **copy}],
        "points_cost": COST,
        "discount": {"kind": "AMOUNT_OFF_CART", "amount_off_cents": 500},
        "uses_code_stock": stocked, "available_from": (now - timedelta(days=1)).isoformat(),
        "granted_valid_days": 30,
    })  # fmt: skip


def _world(members: int, codes: int, now: datetime) -> list[Event]:
    """The programme, both rewards and the code stock; then each member enrolled and funded."""
    program = load.program().model_copy(update={"occurred_at": now - timedelta(days=2)})
    stock = [
        RewardCodesAdded(
            event_id=f"bench-codes-{start}", occurred_at=now - timedelta(days=1),
            reward_id=STOCKED,
            codes=[f"BR-{n:07d}" for n in range(start, min(codes, start + CODES_PER_BATCH))],
        )
        for start in range(0, codes, CODES_PER_BATCH)
    ]  # fmt: skip
    people: list[Event] = []
    for m in range(members):
        member = load.member(m)
        people.append(MemberEnrolled(
            event_id=f"bench-enrol-{m}", occurred_at=now - timedelta(hours=2), member_id=member,
            market="CA", program_ids=[load.PROGRAM_ID], source=Source.APP,
            profile=MemberProfile(first_name="Bench"),
        ))  # fmt: skip
        line = TransactionLine(line_id="1", sku="SKU-1", quantity=Decimal(1),
                               unit_price_cents=1_000_000, amount_cents=1_000_000)  # fmt: skip
        people.append(TransactionCompleted(
            event_id=f"bench-fund-{m}", occurred_at=now - timedelta(hours=1),
            transaction_id=f"BF{m}", member_id=member, market="CA", currency="CAD",
            source=Source.INSTORE, store=Store(store_id="S1", province="ON"), lines=[line],
        ))  # fmt: skip
    return [program, _reward(DIRECT, stocked=False, now=now),
            _reward(STOCKED, stocked=True, now=now), *stock, *people]  # fmt: skip


def _count(dsn: str, query: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(query).fetchone()
    return int(row[0]) if row is not None and row[0] is not None else 0


async def _until_projected(dsn: str, members: int, codes: int, services: Services) -> None:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        funded = await asyncio.to_thread(
            _count, dsn, "SELECT count(*) FROM member_balances WHERE balance > 0"
        )
        stocked = await asyncio.to_thread(
            _count, dsn, "SELECT sum(codes_stocked) FROM reward_stock"
        )
        if funded >= members and stocked >= codes:
            return
        for service in services.running:
            if not service.alive():
                raise RuntimeError(f"{service.name} exited:\n{service.log_tail()}")
        await asyncio.sleep(0.5)
    raise RuntimeError("the members' balances and the stock were never projected")


async def _one(
    session: aiohttp.ClientSession, kind: str, method: str, path: str, body: Any,
    headers: dict[str, str], scheduled: float, result: RoundTrips | None,
) -> None:  # fmt: skip
    loop = asyncio.get_running_loop()
    try:
        async with session.request(method, path, json=body, headers=headers) as response:
            await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError):
        status = 0
    done = loop.time()
    if result is None:
        return
    counts = result.statuses.setdefault(kind, {})
    counts[status] = counts.get(status, 0) + 1
    if status in (200, 201):
        result.latencies[kind].seconds.append(done - scheduled)


async def open_loop(
    base_url: str, tokens: dict[str, str], *, rate: float, seconds: float, run: str,
    measured: bool = True,
) -> RoundTrips:  # fmt: skip
    """Redemptions at `rate` a second and healthz at the same rate, on one schedule."""
    members = list(tokens)
    n = int(rate * seconds)
    schedule: list[tuple[float, str, str, str, Any, dict[str, str]]] = []
    for i in range(n):
        member = members[i % len(members)]
        reward = DIRECT if i % 2 == 0 else STOCKED
        kind = "direct" if reward == DIRECT else "stocked"
        body = {"reward_id": reward, "program_id": load.PROGRAM_ID, "quantity": 1}
        headers = {"Authorization": f"Bearer {tokens[member]}",
                   "Idempotency-Key": f"{run}-{i}"}  # fmt: skip
        schedule.append((i / rate, kind, "POST", f"/v1/members/{member}/redemptions", body,
                         headers))  # fmt: skip
        schedule.append(((i + 0.5) / rate, "healthz", "GET", "/healthz", None, {}))
    schedule.sort(key=lambda planned: planned[0])
    result = (RoundTrips({k: Latencies(k) for k in ("direct", "stocked", "healthz")})
              if measured else None)  # fmt: skip
    loop = asyncio.get_running_loop()
    connector = aiohttp.TCPConnector(limit=256, keepalive_timeout=60)
    timeout = aiohttp.ClientTimeout(total=30)
    lag = 0.0
    async with aiohttp.ClientSession(base_url, connector=connector, timeout=timeout) as session:
        tasks: set[asyncio.Task[None]] = set()
        start = loop.time() + 0.2
        for offset, kind, method, path, body, headers in schedule:
            due = start + offset
            wait = due - loop.time()
            if wait > 0.0005:
                await asyncio.sleep(wait)
            lag = max(lag, loop.time() - due)
            task = asyncio.create_task(
                _one(session, kind, method, path, body, headers, due, result)
            )
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
        elapsed = loop.time() - start
    if result is None:
        return RoundTrips({})
    result.scheduled, result.seconds, result.lag_max_ms = len(schedule), elapsed, lag * 1000
    return result


async def run_redeem_bench(
    settings: Settings, dsn: str, *, members: int, rate: float, seconds: float,
    warmup_seconds: float, log_dir: Path, echo: Any = print,
) -> BenchReport:  # fmt: skip
    """The measurement; `dsn` must be a fresh, migrated database."""
    logging.getLogger("aiohttp").setLevel(logging.WARNING)
    isolated = settings.model_copy(
        update={"topic_prefix": f"benchredeem{uuid.uuid4().hex[:6]}.", "database_url": dsn}
    )
    await asyncio.to_thread(stack.up, isolated)
    now = datetime.now(UTC)
    codes = int(rate * (seconds + warmup_seconds)) + 100  # every stocked request gets a code
    report = BenchReport(
        "redemption-round-trip",
        context={"members": members, "rate_per_s": rate, "seconds": seconds,
                 "warmup_seconds": warmup_seconds, "codes_stocked": codes,
                 "cpus": os.cpu_count(), "target": {"p99_ms_max": P99_MAX_MS}},
    )  # fmt: skip
    services = Services(isolated, log_dir)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    try:
        services.start("worker", "worker")
        services.start("projector", "project")
        api = services.start("api", "api", "--port", str(port))
        await publish_events(isolated, _world(members, codes, now))
        await _until_projected(dsn, members, codes, services)
        while await uncommitted(isolated) > 0:  # the world's backlog run, not measured
            await asyncio.sleep(0.5)
        await wait_until_ready(base_url, api)
        echo(f"{members} members funded, {codes} codes stocked; load at {rate:g}/s next")
        secret = isolated.api_secret.get_secret_value()
        tokens = {load.member(m): issue_token(secret, load.member(m), Role.MEMBER, now=now,
                                              ttl=timedelta(hours=2))
                  for m in range(members)}  # fmt: skip
        await open_loop(base_url, tokens, rate=rate, seconds=warmup_seconds, run="warm",
                        measured=False)  # fmt: skip
        assert api.process is not None
        cpu_before = cpu_seconds(api.process.pid)
        trips = await open_loop(base_url, tokens, rate=rate, seconds=seconds, run="run")
        cpu_after = cpu_seconds(api.process.pid)
    finally:
        services.stop()
        await delete_topics(isolated.bootstrap_servers, isolated.topic_prefix)
    cpu_ms = (None if cpu_before is None or cpu_after is None
              else (cpu_after - cpu_before) / max(1, trips.scheduled) * 1000)  # fmt: skip
    _fill(report, trips, cpu_ms)
    return report


_NOTES = {
    "direct": "POST /v1/members/{id}/redemptions, a reward booked on the member's partition",
    "stocked": "POST …/redemptions, a reward with a code stock (reserve, allocate, book)",
    "healthz": "baseline: GET /healthz, HTTP + SELECT 1, interleaved on the same schedule",
}


def _fill(report: BenchReport, trips: RoundTrips, cpu_ms: float | None) -> None:
    latency = {k: t.summary() for k, t in trips.latencies.items() if t.seconds}
    worst = max((latency[k]["p99_ms"] for k in ("direct", "stocked") if k in latency),
                default=None)  # fmt: skip
    report.context |= {
        "latency_ms": latency,
        "statuses": {k: {str(s): n for s, n in v.items()} for k, v in trips.statuses.items()},
        "achieved_requests_per_s": round(trips.scheduled / trips.seconds, 1),
        "generator_lag_max_ms": round(trips.lag_max_ms, 1),
        "api_cpu_ms_per_request": None if cpu_ms is None else round(cpu_ms, 2),
        "redemption_p99_ms": worst,
        "within_target": worst is not None and worst <= P99_MAX_MS,
    }
    for name, times in trips.latencies.items():
        if not times.seconds:
            continue
        s = latency[name]
        report.add(Measurement(
            name, "requests", len(times.seconds), sum(times.seconds),
            f"p50 {s['p50_ms']:.2f} · p95 {s['p95_ms']:.2f} · p99 {s['p99_ms']:.2f} ms; "
            + _NOTES[name],
        ))  # fmt: skip


def print_latency_table(report: BenchReport, console: Console) -> None:
    """The percentiles side by side, in milliseconds, and the answers by status."""
    table = Table(title=f"redemption round trip (target: p99 <= {P99_MAX_MS:g} ms)")
    for column in ("measurement", "count", "p50", "p95", "p99", "max", "statuses"):
        table.add_column(column, justify="left" if column == "measurement" else "right")
    latency: dict[str, dict[str, float]] = report.context["latency_ms"]  # type: ignore[assignment]
    statuses: dict[str, dict[str, int]] = report.context["statuses"]  # type: ignore[assignment]
    for name, s in latency.items():
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(statuses.get(name, {}).items()))
        table.add_row(name, f"{s['count']:,.0f}",
                      *(f"{s[k]:.2f}" for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")),
                      answers)  # fmt: skip
    console.print(table)
    console.print(f"achieved {report.context['achieved_requests_per_s']}/s · API CPU "
                  f"{report.context['api_cpu_ms_per_request']} ms a request · within target: "
                  f"{report.context['within_target']}")  # fmt: skip
