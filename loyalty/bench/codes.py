"""`loyalty bench-codes`: promo code validation with reservation (a till's
`POST /v1/carts/evaluate` with `reserve`, answered once the promotion's agent reserved the
code) at a fixed rate, beside `GET /healthz` measured the same way in the same run (issue #13:
p99 <= 20 ms at 200 requests/s).

1. A worker, a projector and the API (`loyalty api`) run as subprocesses on the run's own
   topics and a fresh database, as in production: the API checks the code with the worker's
   rule, writes the reservation request to Kafka and waits for the promotion's agent's answer,
   which the projector writes to Postgres (the wait woken by the commit, ADR 26 / wakeups).
2. One promotion of generated single-use codes (never stored: checked by their generator)
   and one shared influencer code limited far beyond the run. The run waits until the API's
   configuration knows the promotion.
3. Load: an open-loop schedule (requests start at fixed instants, whatever the answers do) of
   anonymous baskets, each with a transaction id of its own, alternating a fresh generated
   code and the shared one, and `GET /healthz` at the same rate interleaved: HTTP plus one
   Postgres round trip, the baseline. A latency runs from the request's scheduled start (no
   coordinated omission) to its answer; a validation counts only if its code came back
   `reserved`: `pending` (the wait ran out), a refusal or another status is counted beside.

Nothing here asserts a time; the report says whether the target was met.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from rich.console import Console
from rich.table import Table

from loyalty import stack
from loyalty.bench import load
from loyalty.bench.cart import Latencies
from loyalty.bench.feed import cpu_seconds, wait_until_ready
from loyalty.bench.report import BenchReport, Measurement
from loyalty.chaos import delete_topics
from loyalty.producing import publish_events
from loyalty.services import Services, free_port
from processors.base.settings import Settings
from processors.contract.base import Event
from processors.contract.config import PromotionCodesIssued
from processors.rules.codes.generation import GeneratedCodes
from projections.api.auth import Role, issue_token

P99_MAX_MS = 20.0
PATTERN, SHARED = "BENCH-#####-??", "HOLIBENCH"
KINDS = ("unique", "shared", "healthz")


@dataclass
class RoundTrips:
    """What one open-loop run measured."""

    latencies: dict[str, Latencies]
    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)
    scheduled: int = 0
    seconds: float = 0.0
    lag_max_ms: float = 0.0


def _promotions(codes: int, now: datetime) -> list[Event]:
    """The generated single-use codes, and the shared code (both $5 off a $20 basket)."""
    common = {
        "occurred_at": now - timedelta(days=1), "market": "CA", "starts_at":
        now - timedelta(days=1), "ends_at": now + timedelta(days=30),
        "discount": {"kind": "AMOUNT_OFF_CART", "amount_off_cents": 500,
                     "spend_min_cents": 2000},
    }  # fmt: skip
    unique = PromotionCodesIssued.model_validate({
        **common, "event_id": "bench-codes-unique", "promotion_id": "BENCH-UNIQUE",
        "code_pattern": PATTERN, "code_count": codes, "redemptions_per_code_max": 1,
    })  # fmt: skip
    shared = PromotionCodesIssued.model_validate({
        **common, "event_id": "bench-codes-shared", "promotion_id": "BENCH-SHARED",
        "codes": [SHARED], "redemptions_per_code_max": 10_000_000,
        "issuer": {"kind": "INFLUENCER", "issuer_id": "holibench"},
    })  # fmt: skip
    return [load.program().model_copy(update={"occurred_at": now - timedelta(days=2)}),
            unique, shared]  # fmt: skip


def _basket(code: str, transaction_id: str) -> dict[str, Any]:
    return {
        "transaction_id": transaction_id, "market": "CA", "currency": "CAD",
        "store": {"store_id": "S1", "country": "CA", "province": "ON"},
        "lines": [{"line_id": "1", "sku": "SKU-1", "quantity": "1",
                   "unit_price_cents": 2500, "amount_cents": 2500}],
        "promo_codes": [code], "reserve": True,
    }  # fmt: skip


async def _until_configured(base_url: str, token: str, api: Any) -> None:
    """Until the API's configuration knows the promotions (a preview, which counts nothing)."""
    preview = {**_basket(SHARED, "bench-preview"), "reserve": False}
    deadline = time.monotonic() + 120
    async with aiohttp.ClientSession(base_url) as session:
        while time.monotonic() < deadline:
            if not api.alive():
                raise RuntimeError(f"the API process exited:\n{api.log_tail()}")
            headers = {"Authorization": f"Bearer {token}"}
            async with session.post("/v1/carts/evaluate", json=preview, headers=headers) as r:
                body = await r.read()
                if r.status == 200 and json.loads(body)["promo_codes"][0]["status"] == "applies":
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError("the API's configuration never knew the promotions")


async def _one(
    session: aiohttp.ClientSession, kind: str, method: str, path: str, body: Any,
    headers: dict[str, str], scheduled: float, result: RoundTrips | None,
) -> None:  # fmt: skip
    loop = asyncio.get_running_loop()
    try:
        async with session.request(method, path, json=body, headers=headers) as response:
            raw = await response.read()
            outcome = str(response.status)
            if response.status == 200 and kind != "healthz":
                outcome = json.loads(raw)["promo_codes"][0]["status"]
    except (aiohttp.ClientError, TimeoutError):
        outcome = "no answer"
    done = loop.time()
    if result is None:
        return
    counts = result.outcomes.setdefault(kind, {})
    counts[outcome] = counts.get(outcome, 0) + 1
    if outcome in ("reserved", "200"):
        result.latencies[kind].seconds.append(done - scheduled)


async def open_loop(
    base_url: str, token: str, codes: GeneratedCodes, *, first: int, rate: float,
    seconds: float, run: str, measured: bool = True,
) -> RoundTrips:  # fmt: skip
    """Reservations at `rate` a second and healthz at the same rate, on one schedule; the
    generated codes used are those from index `first` on."""
    n = int(rate * seconds)
    headers = {"Authorization": f"Bearer {token}"}
    schedule: list[tuple[float, str, str, str, Any]] = []
    for i in range(n):
        kind = "unique" if i % 2 == 0 else "shared"
        code = codes.code(first + i // 2) if kind == "unique" else SHARED
        body = _basket(code, f"{run}-{i}")
        schedule.append((i / rate, kind, "POST", "/v1/carts/evaluate", body))
        schedule.append(((i + 0.5) / rate, "healthz", "GET", "/healthz", None))
    schedule.sort(key=lambda planned: planned[0])
    result = RoundTrips({k: Latencies(k) for k in KINDS}) if measured else None
    loop = asyncio.get_running_loop()
    connector = aiohttp.TCPConnector(limit=256, keepalive_timeout=60)
    timeout = aiohttp.ClientTimeout(total=30)
    lag = 0.0
    async with aiohttp.ClientSession(base_url, connector=connector, timeout=timeout) as session:
        tasks: set[asyncio.Task[None]] = set()
        start = loop.time() + 0.2
        for offset, kind, method, path, body in schedule:
            due = start + offset
            wait = due - loop.time()
            if wait > 0.0005:
                await asyncio.sleep(wait)
            lag = max(lag, loop.time() - due)
            extra = headers if kind != "healthz" else {}
            task = asyncio.create_task(_one(session, kind, method, path, body, extra, due, result))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
        elapsed = loop.time() - start
    if result is None:
        return RoundTrips({})
    result.scheduled, result.seconds, result.lag_max_ms = len(schedule), elapsed, lag * 1000
    return result


async def run_codes_bench(
    settings: Settings, dsn: str, *, rate: float, seconds: float, warmup_seconds: float,
    log_dir: Path, echo: Any = print,
) -> BenchReport:  # fmt: skip
    """The measurement; `dsn` must be a fresh, migrated database."""
    logging.getLogger("aiohttp").setLevel(logging.WARNING)
    isolated = settings.model_copy(
        update={"topic_prefix": f"benchcodes{uuid.uuid4().hex[:6]}.", "database_url": dsn}
    )
    await asyncio.to_thread(stack.up, isolated)
    now = datetime.now(UTC)
    warm = int(rate * warmup_seconds) // 2 + 1
    count = warm + int(rate * seconds) // 2 + 100  # a fresh code for every unique request
    world = _promotions(count, now)
    unique = world[1]
    assert isinstance(unique, PromotionCodesIssued)
    codes = GeneratedCodes(unique.promotion_id, unique.event_id, PATTERN, count)
    report = BenchReport(
        "code-reservation-round-trip",
        context={"rate_per_s": rate, "seconds": seconds, "warmup_seconds": warmup_seconds,
                 "codes_generated": count, "cpus": os.cpu_count(),
                 "decision_wait_s": isolated.api_decision_wait_ms / 1000,
                 "target": {"p99_ms_max": P99_MAX_MS}},
    )  # fmt: skip
    services = Services(isolated, log_dir)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    try:
        services.start("worker", "worker")
        services.start("projector", "project")
        api = services.start("api", "api", "--port", str(port))
        await publish_events(isolated, world)
        await wait_until_ready(base_url, api)
        secret = isolated.api_secret.get_secret_value()
        token = issue_token(secret, "bench-till", Role.STAFF, now=now, ttl=timedelta(hours=2))
        await _until_configured(base_url, token, api)
        echo(f"{count:,} codes generated, one shared code; load at {rate:g}/s next")
        await open_loop(base_url, token, codes, first=0, rate=rate, seconds=warmup_seconds,
                        run="warm", measured=False)  # fmt: skip
        assert api.process is not None
        cpu_before = cpu_seconds(api.process.pid)
        trips = await open_loop(base_url, token, codes, first=warm, rate=rate, seconds=seconds,
                                run="run")  # fmt: skip
        cpu_after = cpu_seconds(api.process.pid)
    finally:
        services.stop()
        await delete_topics(isolated.bootstrap_servers, isolated.topic_prefix)
    cpu_ms = (None if cpu_before is None or cpu_after is None
              else (cpu_after - cpu_before) / max(1, trips.scheduled) * 1000)  # fmt: skip
    _fill(report, trips, cpu_ms)
    return report


_NOTES = {
    "unique": "POST /v1/carts/evaluate reserve, a fresh generated single-use code",
    "shared": "POST /v1/carts/evaluate reserve, one shared influencer code",
    "healthz": "baseline: GET /healthz, HTTP + SELECT 1, interleaved on the same schedule",
}


def _fill(report: BenchReport, trips: RoundTrips, cpu_ms: float | None) -> None:
    latency = {k: t.summary() for k, t in trips.latencies.items() if t.seconds}
    worst = max((latency[k]["p99_ms"] for k in ("unique", "shared") if k in latency),
                default=None)  # fmt: skip
    report.context |= {
        "latency_ms": latency,
        "outcomes": trips.outcomes,
        "achieved_requests_per_s": round(trips.scheduled / trips.seconds, 1),
        "generator_lag_max_ms": round(trips.lag_max_ms, 1),
        "api_cpu_ms_per_request": None if cpu_ms is None else round(cpu_ms, 2),
        "reservation_p99_ms": worst,
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
    """The percentiles side by side, in milliseconds, and the answers by outcome."""
    table = Table(title=f"code reservation round trip (target: p99 <= {P99_MAX_MS:g} ms)")
    for column in ("measurement", "count", "p50", "p95", "p99", "max", "outcomes"):
        table.add_column(column, justify="left" if column == "measurement" else "right")
    latency: dict[str, dict[str, float]] = report.context["latency_ms"]  # type: ignore[assignment]
    outcomes: dict[str, dict[str, int]] = report.context["outcomes"]  # type: ignore[assignment]
    for name, s in latency.items():
        seen = ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.get(name, {}).items()))
        times = [f"{s[k]:.2f}" for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")]
        table.add_row(name, f"{s['count']:,.0f}", *times, seen)
    console.print(table)
    console.print(f"achieved {report.context['achieved_requests_per_s']}/s · API CPU "
                  f"{report.context['api_cpu_ms_per_request']} ms a request · within target: "
                  f"{report.context['within_target']}")  # fmt: skip
