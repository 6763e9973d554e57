"""The main job behind the README's run command: the whole engine on the real stack.

1. configure a demo programme (10 points per dollar, yearly expiry, points for discounts);
2. start the engine's processes: the worker (ledger rules), the projector (Postgres), the API;
3. feed a small deterministic stream: enrolments, purchases, a redemption, a return;
4. show the ledger events the worker emitted, and a member's ledger and balance read through
   the API exactly as the README's example call reads them (the default window: 7 days);
5. keep serving until Ctrl-C (or stop at once with `--exit`); Ctrl-C stops the worker, the
   projector and the API, never Kafka and Postgres (`loyalty stack down` does).

Event ids carry a run stamp, so running the demo again adds new purchases rather than being
deduplicated away. The purchases, the redemption and the return are dated in the hours before
the run, so the ledger's default window shows them; the programme, the offer and the
enrolments keep fixed dates and ids, so a second run repeats them rather than conflicting.
"""

from __future__ import annotations

import asyncio
import json
import random
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from rich.console import Console
from rich.table import Table

from loyalty.producing import publish_events
from loyalty.services import Services, free_port
from processors.base.settings import Settings
from processors.base.topics import LEDGER
from processors.codec.avro import AvroCodec
from processors.codec.json_form import from_json_object
from processors.contract.base import Event
from processors.contract.common import PointsCategory, Source, Store
from processors.contract.config import (
    ExpiryPolicy,
    ExpiryPolicyKind,
    PointsRedemptionRule,
    ProgramConfigured,
)
from processors.contract.enrolments import MemberEnrolled, MemberProfile
from processors.contract.ledger import LedgerEventRecorded
from processors.contract.redemptions import PointsRedemptionRequested, ProgramAllocation
from processors.contract.transactions import (
    ReturnedLine,
    TransactionCompleted,
    TransactionLine,
    TransactionReturned,
)

PROGRAM_ID = "DEMO_REWARDS"
CATALOGUE = [
    ("SKU-COFFEE-1KG", "GROCERY", "COFFEE", "Brûlerie", 1899),
    ("SKU-MILK-2L", "GROCERY", "DAIRY", "Laiterie", 549),
    ("SKU-SHAMPOO", "HEALTH_BEAUTY", "HAIR", "Belle", 1249),
    ("SKU-FUEL-REG", "FUEL", "REGULAR", "Gas", 165),
    ("SKU-BREAD", "GROCERY", "BAKERY", "Boulange", 399),
]
START = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)
"""When the demo programme's members enrol (fixed: an enrolment's id never changes)."""
PURCHASE_MINUTES = 7
"""Minutes between two demo purchases."""


def demo_program() -> ProgramConfigured:
    """The demo programme: 10 points per dollar, points good until the end of next year."""
    return ProgramConfigured(
        event_id="demo-program-v1",
        occurred_at=START - timedelta(days=30),
        program_id=PROGRAM_ID,
        name="Demo Rewards",
        market="CA",
        currency="CAD",
        time_zone="America/Toronto",
        categories=[PointsCategory.REGULAR],
        points_per_currency_unit=Decimal("10"),
        expiry=ExpiryPolicy(kind=ExpiryPolicyKind.END_OF_YEAR_AFTER_MONTHS, months=12),
        points_redemption=PointsRedemptionRule(points_per_block=1000, cents_per_block=100),
    )


def demo_offer() -> Event:
    """The demo offer: 250 bonus points on any purchase of $10 or more, at most 3 times."""
    copy = {"headline": "250 bonus points", "short_description": "Spend $10, get 250 points"}
    return from_json_object({
        "type": "OfferPublished", "event_id": "demo-offer-v1",
        "occurred_at": (START - timedelta(days=30)).isoformat(), "offer_id": "DEMO_SPEND10",
        "program_id": PROGRAM_ID, "market": "CA", "rank": 1,
        "localized_copy": [{"locale": "en", **copy},
                           {"locale": "fr", "headline": "250 points boni",
                            "short_description": "Dépensez 10 $, obtenez 250 points"}],
        "schedule": {"starts_at": (START - timedelta(days=1)).isoformat(), "ends_at": None},
        "targeting": {"kind": "MASS", "timing": "DYNAMIC"},
        "activation": {"kind": "AUTOMATIC"},
        "behaviours": [{"kind": "SPEND", "spend_min_cents": 1000,
                        "accumulation": "SINGLE_TRANSACTION"}],
        "reward": {"kind": "FLAT_POINTS", "points": 250},
        "usage": {"uses_per_member_max": 3},
    })  # fmt: skip


def member_id(n: int) -> str:
    return f"M{n:05d}"


def demo_phases(members: int, *, run: str, now: datetime, seed: int = 7) -> list[list[Event]]:
    """The demo stream in phases (topics are not ordered with each other): enrolments; then
    purchases; then a redemption and a return. The purchases end a few minutes before `now`
    and the redemption and return follow them, so all are in the ledger's last 7 days."""
    rng = random.Random(seed)
    purchases_count = members * 3
    last = now.replace(second=0, microsecond=0) - timedelta(minutes=5)
    first_purchase_at = last - timedelta(minutes=PURCHASE_MINUTES * purchases_count)
    enrolments: list[Event] = [
        MemberEnrolled(
            event_id=f"enrol-{member_id(n)}",
            occurred_at=START + timedelta(minutes=n),
            member_id=member_id(n),
            market="CA",
            program_ids=[PROGRAM_ID],
            source=Source.APP,
            profile=MemberProfile(first_name=f"Demo {n}", province="QC", country="CA"),
        )
        for n in range(members)
    ]
    purchases: list[Event] = []
    for t in range(purchases_count):
        picks = rng.sample(CATALOGUE, k=rng.randint(1, 3))
        lines = []
        for number, (sku, category, subcategory, brand, price) in enumerate(picks, start=1):
            quantity = rng.randint(1, 3)
            lines.append(
                TransactionLine(line_id=str(number), sku=sku, category=category,
                                subcategory=subcategory, brand=brand, quantity=Decimal(quantity),
                                unit_price_cents=price, amount_cents=price * quantity)
            )  # fmt: skip
        member = member_id(t % members)
        purchases.append(
            TransactionCompleted(
                event_id=f"tx-{run}-{t:05d}",
                occurred_at=first_purchase_at + timedelta(minutes=PURCHASE_MINUTES * t),
                transaction_id=f"T-{run}-{t:05d}",
                member_id=member,
                market="CA",
                currency="CAD",
                source=Source.INSTORE,
                store=Store(store_id=f"S{rng.randint(1, 9):03d}", country="CA", province="QC"),
                till_id="T1",
                lines=lines,
            )
        )
    first = purchases[0]
    assert isinstance(first, TransactionCompleted)
    assert first.member_id is not None
    later = last
    spend_and_return: list[Event] = [
        PointsRedemptionRequested(
            event_id=f"redeem-{run}", occurred_at=later, command_id=f"demo-{run}-redeem",
            member_id=member_id(1), source=Source.APP,
            allocations=[ProgramAllocation(program_id=PROGRAM_ID, points=1000)],
        ),
        TransactionReturned(
            event_id=f"return-{run}", occurred_at=later, return_id=f"R-{run}",
            transaction_id=first.transaction_id, member_id=first.member_id, market="CA",
            currency="CAD", source=Source.INSTORE, store=first.store,
            lines=[ReturnedLine(line_id=first.lines[0].line_id, quantity=first.lines[0].quantity,
                                amount_cents=first.lines[0].amount_cents)],
        ),
    ]  # fmt: skip
    return [enrolments, purchases, spend_and_return]


@dataclass
class DemoReport:
    """What the demo saw."""

    published: int = 0
    ledger_events: list[LedgerEventRecorded] = field(default_factory=list)
    balance: dict[str, object] | None = None
    ledger_page: dict[str, object] | None = None
    """The first page of `GET /v1/members/M00001/ledger`, no filter: the README's call."""


STOPPING = (
    "Ctrl-C stops the worker, the projector and the API; Kafka and Postgres keep running "
    "(stop them with `.venv/bin/loyalty stack down`, or `make stack-down`)."
)


async def _ledger_reader(settings: Settings) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    parts = [TopicPartition(settings.topic(LEDGER.name), p) for p in range(settings.partitions)]
    consumer.assign(parts)
    for partition, offset in (await consumer.end_offsets(parts)).items():
        consumer.seek(partition, offset)
    return consumer


async def _read_ledger(consumer: AIOKafkaConsumer, codec: AvroCodec, causes: set[str],
                       seen: dict[str, LedgerEventRecorded], seconds: float) -> None:  # fmt: skip
    """Read ledger events until one per cause arrived (or `seconds` pass)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not causes <= {e.cause_event_id for e in seen.values()} and loop.time() < deadline:
        for records in (await consumer.getmany(timeout_ms=500)).values():
            for record in records:
                event = codec.decode(record.value)
                if isinstance(event, LedgerEventRecorded):
                    seen[event.event_log_id] = event


def _get_json(url: str, token: str) -> dict[str, object]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - our own API
        loaded: dict[str, object] = json.loads(response.read())
        return loaded


async def _balance_via_api(
    settings: Settings, base_url: str, member: str, expected: int | None, seconds: float
) -> dict[str, object] | None:
    """The member's balance from the API, once the projection shows `expected` points in the
    demo programme (the projector works asynchronously)."""
    token = _token(settings, member)
    url = f"{base_url}/v1/members/{member}/balance"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    body: dict[str, object] | None = None
    while loop.time() < deadline:
        try:
            body = await asyncio.to_thread(_get_json, url, token)
        except OSError:
            body = None
        if body is not None and _demo_points(body) == expected:
            return body
        await asyncio.sleep(0.5)
    return body


def _token(settings: Settings, member: str) -> str:
    from projections.api.auth import Role, issue_token

    return issue_token(settings.api_secret.get_secret_value(), member, Role.MEMBER,
                       now=datetime.now(UTC), ttl=timedelta(minutes=60))  # fmt: skip


def _demo_points(balance: dict[str, object]) -> int | None:
    programs = balance.get("programs")
    for program in programs if isinstance(programs, list) else []:
        if isinstance(program, dict) and program.get("program_id") == PROGRAM_ID:
            total = program.get("total_points")
            return total if isinstance(total, int) else None
    return None


async def run_demo(
    settings: Settings,
    *,
    members: int,
    console: Console,
    log_dir: Path,
    api_port: int = 8080,
    serve: bool = False,
    api_url: str | None = None,
) -> DemoReport:  # fmt: skip
    """Run the demo end to end; with `serve`, keep the processes up until cancelled. With
    `api_url`, use an engine that already runs (docker-compose) instead of starting one."""
    codec = AvroCodec()
    now = datetime.now(UTC)  # the demo's one clock read: its run stamp and its dates
    run = now.strftime("%Y%m%d%H%M%S")
    report = DemoReport()
    # The internal ports the README documents, each unless something else holds it.
    ports = {"LOYALTY_WORKER_HTTP_PORT": settings.worker_http_port,
             "LOYALTY_PROJECTOR_HTTP_PORT": settings.projector_http_port,
             "LOYALTY_API_METRICS_PORT": settings.api_metrics_port}  # fmt: skip
    services = Services(
        settings, log_dir, extra_env={k: str(free_port(p)) for k, p in ports.items() if p}
    )
    await publish_events(settings, [demo_program(), demo_offer()], codec)
    reader = await _ledger_reader(settings)
    try:
        if api_url is None:
            worker = services.start("worker", "worker")
            projector = services.start("projector", "project")
            api = services.start("api", "api", "--port", str(api_port))
            console.print(f"started worker, projector and API (logs in {log_dir}); /metrics "
                          f"and /healthz: worker :{worker.http_port}, projector "
                          f":{projector.http_port}; API metrics :{api.http_port}")  # fmt: skip
        base_url = api_url or f"http://127.0.0.1:{api_port}"
        seen: dict[str, LedgerEventRecorded] = {}
        caused: set[str] = set()
        demo_members = {member_id(n) for n in range(members)}
        for phase in demo_phases(members, run=run, now=now):
            caused |= {e.event_id for e in phase}
            await publish_events(settings, phase, codec)
            report.published += len(phase)
            causes = {e.event_id for e in phase if not isinstance(e, MemberEnrolled)} or set()
            await _read_ledger(reader, codec, causes, seen, seconds=120)
        # A stack used before may replay older history: show only what this run caused.
        report.ledger_events = sorted(
            (e for e in seen.values() if e.cause_event_id in caused or (e.member_id in demo_members
             and any(entry.program_id == PROGRAM_ID for entry in e.entries))),
            key=lambda e: (e.member_id, e.sequence),
        )  # fmt: skip
        _show_ledger(console, report.ledger_events)
        mine = [e for e in report.ledger_events if e.member_id == member_id(1)]
        expected = sum(
            b.balance for b in mine[-1].balances_after if b.program_id == PROGRAM_ID
        ) if mine else None  # fmt: skip
        report.balance = await _balance_via_api(settings, base_url, member_id(1), expected, 90)
        console.print(f"GET /v1/members/{member_id(1)}/balance →")
        console.print_json(data=report.balance)
        # The README's example call: no filter, so the default window (the last 7 days).
        report.ledger_page = await asyncio.to_thread(
            _get_json,
            f"{base_url}/v1/members/{member_id(1)}/ledger",
            _token(settings, member_id(1)),
        )
        shown = report.ledger_page.get("events")
        console.print(
            f"GET /v1/members/{member_id(1)}/ledger → "
            f"{len(shown) if isinstance(shown, list) else 0} event(s) on its first page"
        )
        if serve:
            console.print(
                f"\nThe engine is running. API: http://127.0.0.1:{api_port}  "
                f"(token: `.venv/bin/loyalty token member {member_id(1)}`)\n"
                "Publish more with `.venv/bin/loyalty publish`. "
                f"{STOPPING}"
            )
            await asyncio.Event().wait()
    finally:
        await reader.stop()
        services.stop()
    return report


def _show_ledger(console: Console, events: list[LedgerEventRecorded]) -> None:
    table = Table(title=f"ledger events emitted by the worker ({len(events)})")
    for column in ("member", "seq", "event", "points", "balance after"):
        table.add_column(
            column, justify="right" if column in ("seq", "points", "balance after") else "left"
        )
    for event in events[:25]:
        after = sum(b.balance for b in event.balances_after)
        table.add_row(event.member_id, str(event.sequence), event.event_type.value,
                      f"{event.points_on_event:+,}", f"{after:,}")  # fmt: skip
    if len(events) > 25:
        table.add_row("…", "", f"{len(events) - 25} more", "", "")
    console.print(table)
