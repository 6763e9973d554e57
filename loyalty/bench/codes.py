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
   configuration knows the promotion. The shared code is reserved from each API process's
   lease of its uses (docs/adr/0040-reservations-from-a-lease.md); a single-use code waits
   for the promotion's agent.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from loyalty import stack
from loyalty.bench import load
from loyalty.bench.openloop import (
    Planned,
    cpu_ms_each,
    cpu_seconds,
    fill_round_trips,
    open_loop,
    wait_until_ready,
)
from loyalty.bench.report import BenchReport
from loyalty.chaos import delete_topics
from loyalty.producing import publish_events
from loyalty.services import Services, free_port
from processors.base.settings import Settings
from processors.contract.base import Event
from processors.contract.config import PromotionCodesIssued
from processors.rules.codes.generation import GeneratedCodes
from projections.api.auth import Role, issue_token

P99_MAX_MS = 20.0
TITLE = f"code reservation round trip (target: p99 <= {P99_MAX_MS:g} ms)"
PATTERN, SHARED = "BENCH-#####-??", "HOLIBENCH"
COUNTED = ("reserved", "200")
HEALTHZ_SHARE = 0.25
"""`/healthz` asked at this share of the reservations' rate: the baseline is a probe of what
the host answers meanwhile, not a second load (as in `bench-feed`); at 1.0 it added a request
for every reservation, a fifth of the API's CPU."""


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


def _outcome(kind: str, status: int, body: bytes) -> str:
    """A validation's outcome is its code's status (`reserved` counts); healthz's its status."""
    if status == 200 and kind != "healthz":
        return str(json.loads(body)["promo_codes"][0]["status"])
    return str(status)


def schedule(
    token: str, codes: GeneratedCodes, *, first: int, rate: float, seconds: float, run: str,
    healthz_share: float = HEALTHZ_SHARE,
) -> list[Planned]:  # fmt: skip
    """Reservations at `rate` a second, alternating a fresh generated code (from index
    `first` on) and the shared one, and healthz at `healthz_share` × `rate` between them."""
    headers = {"Authorization": f"Bearer {token}"}
    planned = []
    for i in range(int(rate * seconds)):
        kind = "unique" if i % 2 == 0 else "shared"
        code = codes.code(first + i // 2) if kind == "unique" else SHARED
        planned.append(Planned(i / rate, kind, "POST", "/v1/carts/evaluate",
                               _basket(code, f"{run}-{i}"), headers))  # fmt: skip
    healthz_rate = rate * healthz_share
    planned += [Planned((i + 0.5) / healthz_rate, "healthz", "GET", "/healthz")
                for i in range(int(seconds * healthz_rate))]  # fmt: skip
    return planned


async def run_codes_bench(
    settings: Settings, dsn: str, *, rate: float, seconds: float, warmup_seconds: float,
    log_dir: Path, echo: Any = print, api_workers: int = 1, healthz_share: float = HEALTHZ_SHARE,
) -> BenchReport:  # fmt: skip
    """The measurement against `loyalty api --workers api_workers`; `dsn` must be a fresh,
    migrated database."""
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
                 "codes_generated": count, "cpus": os.cpu_count(), "api_workers": api_workers,
                 "healthz_per_reservation": healthz_share,
                 "decision_wait_s": isolated.api_decision_wait_ms / 1000,
                 "target": {"p99_ms_max": P99_MAX_MS}},
    )  # fmt: skip
    services = Services(isolated, log_dir)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    try:
        worker = services.start("worker", "worker")
        services.start("projector", "project")
        api = services.start("api", "api", "--port", str(port), "--workers", str(api_workers))
        await publish_events(isolated, world)
        await wait_until_ready(base_url, api)
        secret = isolated.api_secret.get_secret_value()
        token = issue_token(secret, "bench-till", Role.STAFF, now=now, ttl=timedelta(hours=2))
        await _until_configured(base_url, token, api)
        echo(f"{count:,} codes generated, one shared code; load at {rate:g}/s next")
        warming = schedule(token, codes, first=0, rate=rate, seconds=warmup_seconds, run="warm",
                           healthz_share=healthz_share)  # fmt: skip
        await open_loop(base_url, warming, measured=False)
        assert api.process is not None
        cpu_before = cpu_seconds(api.process.pid)
        ages_before = await _record_ages(worker.url("/metrics"))
        trips = await open_loop(
            base_url,
            schedule(
                token,
                codes,
                first=warm,
                rate=rate,
                seconds=seconds,
                run="run",
                healthz_share=healthz_share,
            ),
            counted=COUNTED,
            classify=_outcome,
        )
        cpu_after = cpu_seconds(api.process.pid)
        ages = _since(await _record_ages(worker.url("/metrics")), ages_before)
        report.context["agent_wait_ms"] = _quantiles(ages)
    finally:
        services.stop()
        await delete_topics(isolated.bootstrap_servers, isolated.topic_prefix)
    fill_round_trips(
        report,
        trips,
        cpu_ms_each(cpu_before, cpu_after, trips.scheduled),
        kinds=("unique", "shared"),
        notes=_NOTES,
        target=f"#13 code reservation p99 at {rate:g}/s",
        p99_max_ms=P99_MAX_MS,
        each={
            "shared": f"#13 shared code reservation p99 at {rate:g}/s (from a lease, ADR 40)",
            "unique": f"#13 single-use code reservation p99 at {rate:g}/s (the agent's path)",
        },
    )
    return report


async def _record_ages(url: str) -> dict[float, float]:
    """The promotion agent's `loyalty_record_age_seconds` buckets (upper bound → count so
    far): how long each batch's oldest record had waited when its batch started."""
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        text = await response.text()
    return {
        float(sample.labels["le"]): sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "loyalty_record_age_seconds"
        for sample in family.samples
        if sample.name.endswith("_bucket") and sample.labels.get("agent") == "promotion-uses"
    }


def _since(after: dict[float, float], before: dict[float, float]) -> dict[float, float]:
    return {bound: count - before.get(bound, 0.0) for bound, count in after.items()}


def _quantiles(buckets: dict[float, float]) -> str | None:
    """p50 and p99 of a cumulative histogram, as the bounds of the buckets they fall in."""
    total = buckets.get(float("inf"), 0.0)
    if total <= 0:
        return None
    bounds = sorted(buckets)

    def at(q: float) -> str:
        bound = next(b for b in bounds if buckets[b] >= q * total)
        return "> 60 s" if bound == float("inf") else f"≤ {bound * 1000:g} ms"

    return f"p50 {at(0.5)}, p99 {at(0.99)} ({total:.0f} batches)"


_NOTES = {
    "unique": "POST /v1/carts/evaluate reserve, a fresh generated single-use code",
    "shared": "POST /v1/carts/evaluate reserve, one shared influencer code",
    "healthz": "baseline: GET /healthz, HTTP + SELECT 1, interleaved on the same schedule "
    "(healthz_per_reservation of the rate)",
}
