"""`loyalty bench-feed`: the offer feeds under load, beside `GET /healthz` measured the same way
in the same run, and how soon a purchase shows in the member's feed (issue #14; DESIGN.md §8).

1. The world (`feed_world`: 500 offers, 100,000 members by default) is written into a fresh
   database by the projection's own writers; the API runs as a subprocess (`loyalty api`,
   uvicorn) over it, its clock the wall clock: the world's times are placed around now.
2. Load, once per rate of `rates` (feed requests a second): one open-loop schedule
   (requests start at fixed instants, whatever the answers do), half anonymous
   (`GET /v1/offers`, a market and a language drawn as the members are), half personalised
   (`GET /v1/members/{id}/offers` with the member's token), and `healthz_share` x rate
   `GET /healthz` interleaved: HTTP and one Postgres round trip, the baseline. A request's
   latency runs from its scheduled start, so time spent waiting in the generator counts (no
   coordinated omission); sent by `openloop.LeanClient`, whose CPU a request (reported, with
   the API's) is about half aiohttp's. Warm-up not counted. The API's CPU time per request (all its
   processes: `--api-workers`) is reported beside: where a rate saturates it, it says why.
3. Freshness: a worker and a projector on the run's own topics and database; probe members
   enrolled through Kafka; a mass offer to accumulate spend towards. Each probe: a purchase
   is produced (acknowledged), then the member's feed is read every `poll_ms` until its
   progress includes the purchase; the time from just before the send to that answer.

Reports p50/p95/p99 (JSON + table). Targets (the issue's): each feed's p99 <= 2 x the healthz
p99, and event -> visible p99 <= 1 s. Nothing here asserts a time.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaProducer
from rich.console import Console

from loyalty import stack
from loyalty.bench import feed_world
from loyalty.bench.openloop import (
    LoadResult,
    Planned,
    cpu_ms_each,
    cpu_seconds,
    open_loop,
    wait_until_ready,
)
from loyalty.bench.report import (
    BenchReport,
    Latencies,
    print_latencies,
    print_verdicts,
    verdict,
)
from loyalty.chaos import delete_topics
from loyalty.producing import publish_events
from loyalty.services import Services, free_port
from processors.base.settings import Settings
from processors.codec.avro import AvroCodec
from processors.codec.json_form import from_json_object
from processors.contract.base import Event
from processors.contract.common import Source, Store
from processors.contract.enrolments import MemberEnrolled, MemberProfile
from processors.contract.transactions import TransactionCompleted, TransactionLine
from projections.api.auth import Role, issue_token

FEED_TO_HEALTHZ_P99_MAX = 2.0
VISIBLE_P99_MAX_MS = 1000.0
TOKENS = 20_000
"""Members whose tokens are minted before the run (the personalised requests draw from them)."""
PROBE_OFFER = "FRESHNESS_PROBE"
_Cpu = tuple[float | None, float | None]
"""CPU milliseconds a request of the API's processes (per answered request) and of the load
generator, this process (per planned request): what the rate cost on the shared cores."""


def _requests(
    tokens: dict[str, str], members: Sequence[str], n: int, rng: random.Random
) -> list[tuple[str, str, dict[str, str]]]:
    """`n` feed requests, alternately anonymous and personalised (a member of `members`
    each): (kind, path, headers)."""
    markets = list(feed_world.MARKETS)
    weights = list(feed_world.MARKETS.values())
    out: list[tuple[str, str, dict[str, str]]] = []
    for i in range(n):
        if i % 2 == 0:
            market = rng.choices(markets, weights=weights)[0]
            locale = rng.choice(["en", "fr", "fr-CA", "en-CA"])
            out.append(("anonymous", f"/v1/offers?market={market}&locale={locale}", {}))
        else:
            member = rng.choice(members)
            out.append((
                "member", f"/v1/members/{member}/offers",
                {"Authorization": f"Bearer {tokens[member]}"},
            ))  # fmt: skip
    return out


def schedule(
    feed_requests: list[tuple[str, str, dict[str, str]]], *, rate: float, healthz_rate: float
) -> list[Planned]:
    """The feed requests at `rate` a second and healthz at `healthz_rate`, on one schedule."""
    seconds = len(feed_requests) / rate
    planned = [Planned(i / rate, kind, "GET", path, None, headers)
               for i, (kind, path, headers) in enumerate(feed_requests)]  # fmt: skip
    planned += [Planned(i / healthz_rate, "healthz", "GET", "/healthz")
                for i in range(int(seconds * healthz_rate))]  # fmt: skip
    return planned


class _OffersSeen:
    """Counts the offers in each answered feed (an outcome is the HTTP status)."""

    def __init__(self) -> None:
        self.offers: dict[str, int] = {}

    def __call__(self, kind: str, status: int, body: bytes) -> str:
        if status == 200 and kind != "healthz":
            self.offers[kind] = self.offers.get(kind, 0) + body.count(b'"offer_id"')
        return str(status)


# --- freshness ----------------------------------------------------------------------------


def _probe_offer(now: datetime) -> Event:
    copy = {"headline": "Freshness probe", "short_description": "Spend, watch it count."}
    return from_json_object({
        "type": "OfferPublished", "event_id": f"feed-probe-{uuid.uuid4().hex[:8]}",
        "occurred_at": (now - timedelta(days=2)).isoformat(), "offer_id": PROBE_OFFER,
        "program_id": feed_world.program_id("CA"), "market": "CA",
        "localized_copy": [{"locale": "en", **copy}, {"locale": "fr", **copy}], "rank": 1,
        "schedule": {"starts_at": (now - timedelta(days=1)).isoformat(), "ends_at": None},
        "targeting": {"kind": "MASS", "timing": "STATIC"}, "activation": {"kind": "AUTOMATIC"},
        "behaviours": [{"kind": "SPEND", "spend_min_cents": 900_000_000,
                        "accumulation": "ACCUMULATED"}],
        "reward": {"kind": "FLAT_POINTS", "points": 1}, "usage": {},
    })  # fmt: skip


def _purchase(member: str, n: int, cents: int, at: datetime) -> TransactionCompleted:
    line = TransactionLine(line_id="1", sku="SKU-1", quantity=Decimal(1), unit_price_cents=cents,
                           amount_cents=cents)  # fmt: skip
    return TransactionCompleted(
        event_id=f"fresh-tx-{member}-{n}", occurred_at=at, transaction_id=f"FT-{member}-{n}",
        member_id=member, market="CA", currency="CAD", source=Source.INSTORE,
        store=Store(store_id="S1", province="ON"), lines=[line],
    )  # fmt: skip


async def _progress(session: aiohttp.ClientSession, member: str, token: str) -> int | None:
    async with session.get(f"/v1/members/{member}/offers",
                           headers={"Authorization": f"Bearer {token}"}) as response:  # fmt: skip
        if response.status != 200:
            return None
        body = await response.json()
    for offer in body["offers"]:
        if offer["offer_id"] == PROBE_OFFER:
            return int(offer["behaviours"][0]["progress"])
    return None


async def freshness(
    settings: Settings, base_url: str, *, probes: int, members: int, poll_ms: float,
    secret: str, echo: Any,
) -> Latencies:  # fmt: skip
    """Event -> visible in the member's feed, `probes` times over `members` probe members."""
    now = datetime.now(UTC)
    probe_members = [f"FRESH{run}" for run in range(members)]
    # The worker decides enrolments and purchases by the programmes on the config topic.
    await publish_events(settings, [*feed_world.programs(now), _probe_offer(now)])
    await publish_events(settings, [
        MemberEnrolled(event_id=f"fresh-enrol-{m}", occurred_at=now - timedelta(hours=1),
                       member_id=m, market="CA", program_ids=[feed_world.program_id("CA")],
                       source=Source.APP, profile=MemberProfile(first_name=m))
        for m in probe_members
    ])  # fmt: skip
    tokens = {m: issue_token(secret, m, Role.MEMBER, now=now, ttl=timedelta(hours=2))
              for m in probe_members}  # fmt: skip
    spent = dict.fromkeys(probe_members, 0)
    times = Latencies("event_to_visible")
    codec = AvroCodec()
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all",
                                enable_idempotence=True, linger_ms=0)  # fmt: skip
    await producer.start()
    try:
        async with aiohttp.ClientSession(base_url) as session:
            deadline = time.monotonic() + 180
            for member in probe_members:  # enrolled, projected, the offer in their feed
                while await _progress(session, member, tokens[member]) is None:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{member} never saw {PROBE_OFFER}")
                    await asyncio.sleep(0.2)
            echo(f"freshness: {members} probe members see {PROBE_OFFER}")
            for n in range(probes):
                member = probe_members[n % members]
                cents = 100 + n % 900
                event = _purchase(member, n, cents, datetime.now(UTC))
                value = codec.encode(event)
                started = time.perf_counter()
                await (await producer.send(settings.topic(event.topic), value,
                                           key=member.encode()))  # fmt: skip
                spent[member] += cents
                while True:
                    seen = await _progress(session, member, tokens[member])
                    if seen is not None and seen >= spent[member]:
                        break
                    if time.perf_counter() - started > 60:
                        raise RuntimeError(f"purchase {n} of {member} not visible after 60 s")
                    await asyncio.sleep(poll_ms / 1000)
                times.add(time.perf_counter() - started, time.time())
    finally:
        await producer.stop()
    return times


# --- the run ------------------------------------------------------------------------------


async def run_feed_bench(
    settings: Settings, dsn: str, *, offers: int, members: int, rates: Sequence[float],
    healthz_share: float, seconds: float, warmup_seconds: float, probes: int,
    probe_members: int, poll_ms: float, log_dir: Path, api_workers: int = 1,
    active_members: int = 0, member_feeds_mib: int | None = None, echo: Any = print,
) -> BenchReport:  # fmt: skip
    """Both measurements, the load once per rate of `rates`, against `loyalty api --workers
    api_workers`; `dsn` must be a fresh, migrated database. `active_members`: the
    personalised requests go to that many members (an app's sessions: each member asks again
    within the run); 0: any member with a token (`TOKENS`). `member_feeds_mib`: the API's
    `LOYALTY_API_MEMBER_FEEDS_MIB` (None: its default)."""
    logging.getLogger("aiohttp").setLevel(logging.WARNING)
    isolated = settings.model_copy(
        update={"topic_prefix": f"benchfeed{uuid.uuid4().hex[:6]}.", "database_url": dsn}
    )
    await asyncio.to_thread(stack.up, isolated)
    started = time.perf_counter()
    # Around the wall clock, which the API reads: displayable offers are, during the run.
    world = feed_world.build_world(offers_count=offers, members_count=members,
                                   now=datetime.now(UTC))  # fmt: skip
    await asyncio.to_thread(feed_world.write_world, dsn, world)
    echo(f"world written in {time.perf_counter() - started:.0f} s: {offers} offers, "
         f"{members} members, {len(world.offer_events)} offer events")  # fmt: skip
    secret = isolated.api_secret.get_secret_value()
    now = datetime.now(UTC)
    rng = random.Random(5)
    sample = rng.sample([e.member_id for e in world.enrolments], min(TOKENS, members))
    tokens = {m: issue_token(secret, m, Role.MEMBER, now=now, ttl=timedelta(hours=3))
              for m in sample}  # fmt: skip
    asking = sample[:active_members] if active_members else sample
    report = BenchReport(
        "offer-feeds",
        context={"offers": offers, "members": members, "rates_per_s": list(rates),
                 "healthz_per_feed_request": healthz_share, "seconds_per_rate": seconds,
                 "warmup_seconds": warmup_seconds, "probes": probes, "poll_ms": poll_ms,
                 "api_workers": api_workers, "generator": "openloop.LeanClient",
                 "members_asking": len(asking), "member_feeds_mib": member_feeds_mib,
                 "targets": {"feed_p99_over_healthz_p99_max": FEED_TO_HEALTHZ_P99_MAX,
                             "event_to_visible_p99_ms_max": VISIBLE_P99_MAX_MS}},
    )  # fmt: skip
    port = free_port()
    kept = (
        {} if member_feeds_mib is None else {"LOYALTY_API_MEMBER_FEEDS_MIB": str(member_feeds_mib)}
    )
    services = Services(isolated, log_dir, extra_env=kept)
    loads: dict[float, tuple[LoadResult, dict[str, int], _Cpu]] = {}
    try:
        api = services.start("api", "api", "--port", str(port), "--workers", str(api_workers))
        base_url = f"http://127.0.0.1:{port}"
        await wait_until_ready(base_url, api)
        assert api.process is not None
        first = rates[0]
        warm = _requests(tokens, asking, int(warmup_seconds * first), rng)
        planned = schedule(warm, rate=first, healthz_rate=first * healthz_share)
        await open_loop(base_url, planned, timeout_s=10, measured=False, lean=True)
        for rate in rates:
            feeds = _requests(tokens, asking, int(seconds * rate), rng)
            planned = schedule(feeds, rate=rate, healthz_rate=rate * healthz_share)
            cpu_before, generator_before = cpu_seconds(api.process.pid), time.process_time()
            seen = _OffersSeen()
            load = await open_loop(base_url, planned, timeout_s=10, classify=seen, lean=True)
            cpu_after, generator_after = cpu_seconds(api.process.pid), time.process_time()
            answered = sum(len(t.seconds) for t in load.latencies.values())
            cpu = (cpu_ms_each(cpu_before, cpu_after, answered),
                   cpu_ms_each(generator_before, generator_after, len(planned)))  # fmt: skip
            loads[rate] = (load, seen.offers, cpu)
            echo(f"{rate:g} feed requests/s measured")
            await asyncio.sleep(2)  # what a saturated rate left queued drains
        echo("freshness next (worker and projector on the run's topics)")
        # Again: a test module running beside the bench may have deleted topics it did not
        # create (tests/integration/conftest.py deletes every topic new since it started).
        await asyncio.to_thread(stack.up, isolated)
        services.start("worker", "worker")
        services.start("projector", "project")
        visible = await freshness(isolated, base_url, probes=probes, members=probe_members,
                                  poll_ms=poll_ms, secret=secret, echo=echo)  # fmt: skip
    finally:
        services.stop()
        await delete_topics(isolated.bootstrap_servers, isolated.topic_prefix)
    _fill(report, loads, visible)
    return report


SERVED_MIN = 0.98
"""Share of a rate's schedule answered within its measured time for the rate to count as
served (below it requests queued: the latencies are the queue's)."""

_NOTES = {
    "anonymous": "GET /v1/offers?market=&locale= (open loop, from the scheduled start)",
    "member": "GET /v1/members/{id}/offers with the member's token (same schedule)",
    "healthz": "baseline: GET /healthz, HTTP + SELECT 1, interleaved on the same schedule",
    "event_to_visible": "purchase produced -> its progress in the member's feed",
}


def _rate_context(load: LoadResult, offers: dict[str, int], cpu: _Cpu) -> dict[str, Any]:
    context = load.context()
    latency = context["latency_ms"]
    healthz_p99 = latency.get("healthz", {}).get("p99_ms")
    ratios = {kind: round(latency[kind]["p99_ms"] / healthz_p99, 2)
              for kind in ("anonymous", "member") if kind in latency and healthz_p99}  # fmt: skip
    answered = {k: len(t.seconds) for k, t in load.latencies.items()}
    return context | {
        "feed_p99_over_healthz_p99": ratios,
        "feeds_within_target": bool(ratios)
        and all(r <= FEED_TO_HEALTHZ_P99_MAX for r in ratios.values()),
        "errors": {k: n for k in load.outcomes if (n := load.uncounted(k, ("200",)))},
        "api_cpu_ms_per_request": cpu[0],
        "generator_cpu_ms_per_request": cpu[1],
        "mean_response_bytes": {k: load.bytes[k] // answered[k] for k in load.bytes},
        "mean_offers_per_feed": {k: round(n / answered[k], 1)
                                 for k, n in offers.items() if answered.get(k)},
    }  # fmt: skip


def _fill(
    report: BenchReport,
    loads: dict[float, tuple[LoadResult, dict[str, int], _Cpu]],
    visible: Latencies,
) -> None:
    by_rate = {f"{rate:g}": _rate_context(*measured) for rate, measured in loads.items()}
    visible_summary = visible.summary()
    report.context |= {
        "by_rate": by_rate,
        "event_to_visible_ms": visible_summary,
        "event_to_visible_within_target": visible_summary["p99_ms"] <= VISIBLE_P99_MAX_MS,
    }
    for rate, (load, _, _) in loads.items():
        for name, times in load.latencies.items():
            if not times.seconds:
                continue
            report.add_latencies(times, "requests", _NOTES[name], f"{name} @ {rate:g}/s")
        context = by_rate[f"{rate:g}"]
        healthz = context["latency_ms"].get("healthz", {}).get("p99_ms")
        # A ratio says nothing of a rate the API could not keep up with (everything queued,
        # healthz too): the rate is served when the whole schedule was answered on time.
        share = float(report.context.get("healthz_per_feed_request", 0.25))  # type: ignore[arg-type]
        planned = rate * (1 + share)
        report.judge(verdict(
            f"#14 requests served at {rate:g} feed requests/s",
            context["achieved_requests_per_s"] / planned, at_least=SERVED_MIN,
            unit="of the schedule", baseline=f"{planned:g} requests/s planned with healthz",
        ))  # fmt: skip
        for kind in ("anonymous", "member"):
            report.judge(verdict(
                f"#14 {kind} feed p99 / healthz p99 at {rate:g}/s",
                context["feed_p99_over_healthz_p99"].get(kind), at_most=FEED_TO_HEALTHZ_P99_MAX,
                unit="×", baseline=f"healthz p99 {healthz} ms, same schedule",
            ))  # fmt: skip
    report.add_latencies(visible, "purchases", _NOTES[visible.name])
    report.judge(verdict(
        "#14 event → visible in the feed, p99", visible_summary["p99_ms"],
        at_most=VISIBLE_P99_MAX_MS, unit="ms",
    ))  # fmt: skip


def print_latency_table(report: BenchReport, console: Console) -> None:
    """The percentiles side by side per rate, in milliseconds, and the ratios to healthz."""
    by_rate: dict[str, dict[str, Any]] = report.context["by_rate"]  # type: ignore[assignment]
    for rate, context in by_rate.items():
        ratios = {k: f"{r:.2f}" for k, r in context["feed_p99_over_healthz_p99"].items()}
        print_latencies(f"offer feeds at {rate}/s (target: feed p99 <= 2 x healthz p99)",
                        context["latency_ms"], console, ratios, "p99/healthz")  # fmt: skip
        console.print(f"achieved {context['achieved_requests_per_s']:g}/s · API CPU "
                      f"{context['api_cpu_ms_per_request']} ms a request · generator CPU "
                      f"{context['generator_cpu_ms_per_request']} ms a request · errors: "
                      f"{context['errors'] or 'none'}")  # fmt: skip
    seen: dict[str, float] = report.context["event_to_visible_ms"]  # type: ignore[assignment]
    print_latencies("event -> visible (target: p99 <= 1 s)", {"event_to_visible": seen}, console)
    print_verdicts(report.verdicts, console)
