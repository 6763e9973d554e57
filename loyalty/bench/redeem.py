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
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from loyalty import stack
from loyalty.audit import uncommitted
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
from processors.codec.json_form import from_json_object
from processors.contract.base import Event
from processors.contract.common import Source, Store
from processors.contract.config import RewardCodesAdded
from processors.contract.enrolments import MemberEnrolled, MemberProfile
from processors.contract.transactions import TransactionCompleted, TransactionLine
from projections.api.auth import Role, issue_token

P99_MAX_MS = 100.0
TITLE = f"redemption round trip (target: p99 <= {P99_MAX_MS:g} ms)"
COUNTED = ("200", "201")
DIRECT, STOCKED = "BENCH-DIRECT", "BENCH-STOCKED"
COST = 10
CODES_PER_BATCH = 1000


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


def schedule(tokens: dict[str, str], *, rate: float, seconds: float, run: str) -> list[Planned]:
    """Redemptions at `rate` a second, alternating the two rewards over the members, each
    with a key of its own, and healthz at the same rate between them."""
    members = list(tokens)
    planned = []
    for i in range(int(rate * seconds)):
        member = members[i % len(members)]
        reward = DIRECT if i % 2 == 0 else STOCKED
        kind = "direct" if reward == DIRECT else "stocked"
        body = {"reward_id": reward, "program_id": load.PROGRAM_ID, "quantity": 1}
        headers = {"Authorization": f"Bearer {tokens[member]}", "Idempotency-Key": f"{run}-{i}"}
        path = f"/v1/members/{member}/redemptions"
        planned.append(Planned(i / rate, kind, "POST", path, body, headers))
        planned.append(Planned((i + 0.5) / rate, "healthz", "GET", "/healthz"))
    return planned


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
        warming = schedule(tokens, rate=rate, seconds=warmup_seconds, run="warm")
        await open_loop(base_url, warming, measured=False)
        assert api.process is not None
        cpu_before = cpu_seconds(api.process.pid)
        planned = schedule(tokens, rate=rate, seconds=seconds, run="run")
        trips = await open_loop(base_url, planned, counted=COUNTED)
        cpu_after = cpu_seconds(api.process.pid)
    finally:
        services.stop()
        await delete_topics(isolated.bootstrap_servers, isolated.topic_prefix)
    fill_round_trips(
        report,
        trips,
        cpu_ms_each(cpu_before, cpu_after, trips.scheduled),
        kinds=("direct", "stocked"),
        notes=_NOTES,
        target=f"#12 redemption p99 at {rate:g}/s",
        p99_max_ms=P99_MAX_MS,
    )
    return report


_NOTES = {
    "direct": "POST /v1/members/{id}/redemptions, a reward booked on the member's partition",
    "stocked": "POST …/redemptions, a reward with a code stock (reserve, allocate, book)",
    "healthz": "baseline: GET /healthz, HTTP + SELECT 1, interleaved on the same schedule",
}
