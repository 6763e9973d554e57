"""`loyalty chaos`: the kill-and-restart fault run, repeated, on the real stack.

One run, on topics of its own (a fresh prefix):
1. a programme and an offer capped at `cap` uses (100 points on a $10 purchase); `members`
   members enrolled, a worker running;
2. every member buys $20 at once (all qualify, from every partition), fed in chunks; at a
   random moment the worker is SIGKILLed, and a new one is started at once or after a pause;
3. the run *finished* when the audit (`loyalty.audit`) accounts for every input record, and
   *stalled* if it does not within `deadline` seconds; *lost* when records are unaccounted
   although the worker's groups have committed every offset (the silent loss of ADR 17);
4. then: grants never above the cap (exactly `min(cap, members)`), one award per grant, no id
   carrying two different events, and every member's balance equal to what the pure rules
   give (`processors.simulation`, without the offer) plus the award it was granted;
5. a clean run's topics are deleted (a failed run's are kept, to look into).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from loyalty import stack
from loyalty.audit import AuditReport, audit, partitions_of, read_topic, uncommitted
from loyalty.bench.load import START, program
from loyalty.producing import publish_events
from loyalty.services import Service, Services
from processors.base.settings import Settings
from processors.base.topics import LEDGER, LEDGER_STEPS, TopicSpec
from processors.codec.avro import AvroCodec
from processors.codec.json_form import from_json_object
from processors.contract.base import Event
from processors.contract.common import PointsCategory, Source, Store
from processors.contract.enrolments import MemberEnrolled, MemberProfile
from processors.contract.internal import OfferUseGranted
from processors.contract.ledger import LedgerEventRecorded, LedgerEventType
from processors.contract.transactions import TransactionCompleted, TransactionLine
from processors.simulation import Simulation

AWARD_POINTS = 100


@dataclass
class RunResult:
    """One run's outcome and checks."""

    number: int
    outcome: str = "finished"  # finished | stalled | lost
    seconds: float = 0.0
    kill_after: float = 0.0
    ledger_at_kill: int = 0  # ledger events written when the worker was killed
    ledger_total: int = 0
    pause: float = 0.0
    unaccounted: int = 0
    grants: int = 0
    awards: int = 0
    cap: int = 0
    want_grants: int = 0
    conflicts: int = 0
    balances_equal: int = 0
    members: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.outcome == "finished" and not self.problems

    @property
    def mid_stream(self) -> bool:
        """Whether the kill landed while the run's work was under way."""
        return 0 < self.ledger_at_kill < self.ledger_total

    def line(self) -> str:
        restart = f"after a {self.pause:.1f}s pause" if self.pause else "at once"
        return (
            f"run {self.number}: {self.outcome.upper()} in {self.seconds:.1f}s "
            f"(killed {self.kill_after:.2f}s into the purchases with {self.ledger_at_kill} of "
            f"{self.ledger_total} ledger events written, restarted {restart}) | "
            f"unaccounted {self.unaccounted} | grants {self.grants} (cap {self.cap}, "
            f"want {self.want_grants}) | awards {self.awards} | id conflicts {self.conflicts} | "
            f"balances equal {self.balances_equal}/{self.members}"
            + (" | " + "; ".join(self.problems) if self.problems else "")
        )


def capped_offer(offer_id: str, cap: int) -> Event:
    return from_json_object({
        "type": "OfferPublished", "event_id": f"{offer_id}-v1",
        "occurred_at": (START - timedelta(days=2)).isoformat(), "offer_id": offer_id,
        "program_id": "BENCH", "market": "CA", "rank": 1,
        "localized_copy": [{"locale": "en", "headline": "100 points for the first",
                            "short_description": "Spend $10 before the offer runs out"},
                           {"locale": "fr", "headline": "100 points aux premiers",
                            "short_description": "Dépensez 10 $ avant la fin de l'offre"}],
        "schedule": {"starts_at": (START - timedelta(days=1)).isoformat(), "ends_at": None},
        "targeting": {"kind": "MASS", "timing": "DYNAMIC"},
        "activation": {"kind": "AUTOMATIC"},
        "behaviours": [{"kind": "SPEND", "spend_min_cents": 1000,
                        "accumulation": "SINGLE_TRANSACTION"}],
        "reward": {"kind": "FLAT_POINTS", "points": AWARD_POINTS},
        "usage": {"uses_total_max": cap},
    })  # fmt: skip


def _enrolment(member: str) -> MemberEnrolled:
    return MemberEnrolled(
        event_id=f"enrol-{member}", occurred_at=START, member_id=member, market="CA",
        program_ids=["BENCH"], source=Source.APP, profile=MemberProfile(first_name="Chaos"),
    )  # fmt: skip


def _purchase(member: str) -> TransactionCompleted:
    line = TransactionLine(line_id="1", sku="SKU-1", quantity=Decimal(1),
                           unit_price_cents=2000, amount_cents=2000)  # fmt: skip
    return TransactionCompleted(
        event_id=f"tx-{member}", occurred_at=START + timedelta(hours=1),
        transaction_id=f"T-{member}", member_id=member, market="CA", currency="CAD",
        source=Source.INSTORE, store=Store(store_id="S1", province="ON"), lines=[line],
    )  # fmt: skip


class _Ends:
    """End offsets of a topic, through one consumer kept open (polled every few ms)."""

    def __init__(self, settings: Settings, spec: TopicSpec):
        self.partitions = partitions_of(settings, spec)
        self.consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers)

    async def __aenter__(self) -> _Ends:
        await self.consumer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.consumer.stop()

    async def total(self) -> int:
        return sum((await self.consumer.end_offsets(self.partitions)).values())


async def one_run(
    settings: Settings, log_dir: Path, number: int, rng: random.Random, *,
    members: int, cap: int, deadline: float, pause_share: float, keep_topics: bool = False,
) -> RunResult:  # fmt: skip
    """One kill-and-restart run (see the module)."""
    run = uuid.uuid4().hex[:6]
    isolated = settings.model_copy(update={"topic_prefix": f"chaos{run}."})
    await asyncio.to_thread(stack.up, isolated)
    codec = AvroCodec()
    ids = [f"{run}-m{n:05d}" for n in range(members)]
    offer_id = f"CAP_{run}"
    result = RunResult(number, cap=cap, want_grants=min(cap, members), members=members)
    services = Services(isolated, log_dir / f"run-{number:03d}")
    async with _Ends(isolated, LEDGER) as ledger_end:
        try:
            await publish_events(isolated, [program(), capped_offer(offer_id, cap)], codec)
            first: Service = services.start("worker", "worker")
            await publish_events(isolated, [_enrolment(m) for m in ids], codec)
            started = time.monotonic()
            while await ledger_end.total() < members:
                if time.monotonic() - started > deadline:
                    raise RuntimeError(f"enrolments not booked in {deadline}s:\n{first.log_tail()}")
                await asyncio.sleep(0.3)
            purchases = [_purchase(m) for m in ids]

            async def feed() -> None:
                for at in range(0, len(purchases), 250):
                    await publish_events(isolated, purchases[at : at + 250], codec)
                    await asyncio.sleep(0.05)

            began = time.monotonic()
            feeding = asyncio.create_task(feed())
            # Killed once a random share (2-50 %) of the run's ledger events is written: mid-stream.
            total = 2 * members + min(cap, members)  # registrations, purchases, awards
            kill_at = members + int(rng.uniform(0.02, 0.5) * (total - members))
            while await ledger_end.total() < kill_at:
                if time.monotonic() - began > deadline:
                    break
                await asyncio.sleep(0.01)
            result.kill_after = time.monotonic() - began
            first.kill()
            result.ledger_at_kill = await ledger_end.total()
            if rng.random() < pause_share:
                result.pause = rng.uniform(1.0, 12.0)
                await asyncio.sleep(result.pause)
            second = services.start("worker-restarted", "worker")
            await feeding
            report: AuditReport | None = None
            while report is None or (not report.ok and time.monotonic() - began < deadline):
                await asyncio.sleep(2.0)
                report = await audit(isolated, codec)
            result.seconds = time.monotonic() - began
            result.unaccounted = len(report.unaccounted)
            if not report.ok:
                lag = await uncommitted(isolated)
                result.outcome = "stalled" if lag else "lost"
                result.problems.append(f"uncommitted input records: {lag}")
                result.problems.append(f"log: {second.log_path}")
            await _check(isolated, codec, ids, offer_id, result)
        finally:
            await asyncio.to_thread(services.stop)
    if result.ok and not keep_topics:
        await delete_topics(isolated.bootstrap_servers, isolated.topic_prefix)
    return result


async def delete_topics(bootstrap: str, prefix: str) -> int:
    """Delete every topic named `prefix`...: a run's topics (its inputs, outputs and the
    worker's changelogs), so a thousand runs do not fill the broker. Returns how many."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if mine:
            await admin.delete_topics(mine)
        return len(mine)
    finally:
        await admin.close()


async def _check(
    settings: Settings, codec: AvroCodec, ids: list[str], offer_id: str, result: RunResult
) -> None:
    """Grants, awards, id conflicts and balances (see the module)."""
    ledger: dict[str, LedgerEventRecorded] = {}
    bootstrap, partitions = settings.bootstrap_servers, settings.partitions
    for _, value in await read_topic(bootstrap, settings.topic(LEDGER.name), partitions):
        event = codec.decode(value)
        assert isinstance(event, LedgerEventRecorded)
        known = ledger.setdefault(event.event_log_id, event)
        if known != event:
            result.conflicts += 1
    granted: set[str] = set()
    steps = await read_topic(bootstrap, settings.topic(LEDGER_STEPS.name), partitions)
    for _, value in steps:
        event = codec.decode(value)
        is_grant = isinstance(event, OfferUseGranted) and event.offer_id == offer_id
        if is_grant and event.points_granted > 0:  # type: ignore[attr-defined]
            granted.add(event.member_id)  # type: ignore[attr-defined]
    result.grants = len(granted)
    awards = [e for e in ledger.values() if e.event_type is LedgerEventType.OFFER_AWARD]
    result.awards = len(awards)
    result.ledger_total = len(ledger)
    if result.grants > result.cap:
        result.problems.append(f"{result.grants} grants above the cap of {result.cap}")
    if result.outcome == "finished" and result.grants != result.want_grants:
        result.problems.append(f"{result.grants} grants, want {result.want_grants}")
    if sorted(e.member_id for e in awards) != sorted(granted):
        result.problems.append("awards do not match grants one for one")
    # The pure rules without the offer give the base; each grant adds its award.
    simulation = Simulation()
    simulation.run([program(), *(_enrolment(m) for m in ids), *(_purchase(m) for m in ids)])
    latest: dict[str, LedgerEventRecorded] = {}
    for event in ledger.values():
        if event.member_id not in latest or event.sequence > latest[event.member_id].sequence:
            latest[event.member_id] = event
    for member in ids:
        state = simulation.members[member].ledger
        assert state is not None
        base = state.balance("BENCH", PointsCategory.REGULAR)
        want = base + (AWARD_POINTS if member in granted else 0)
        have = latest.get(member)
        if have is not None and sum(b.balance for b in have.balances_after) == want:
            result.balances_equal += 1
    if result.balances_equal != len(ids):
        result.problems.append(f"{len(ids) - result.balances_equal} balances differ from the rules")
    if result.conflicts:
        result.problems.append(f"{result.conflicts} ids carry two different events")


async def run_chaos(
    settings: Settings, log_dir: Path, *, runs: int, members: int, cap: int, seed: int,
    deadline: float = 120.0, pause_share: float = 0.3, echo: Callable[[str], object] = print,
    keep_topics: bool = False,
) -> list[RunResult]:  # fmt: skip
    """`runs` runs, one after the other; each result is echoed as it comes."""
    rng = random.Random(seed)
    results = []
    for number in range(1, runs + 1):
        result = await one_run(settings, log_dir, number, rng, members=members, cap=cap,
                               deadline=deadline, pause_share=pause_share,
                               keep_topics=keep_topics)  # fmt: skip
        echo(result.line())
        results.append(result)
    failed = [r for r in results if not r.ok]
    late = sum(not r.mid_stream for r in results)
    echo(f"{len(results)} run(s): {len(results) - len(failed)} finished clean, "
         f"{sum(r.outcome == 'stalled' for r in results)} stalled, "
         f"{sum(r.outcome == 'lost' for r in results)} lost, "
         f"{sum(r.unaccounted for r in results)} unaccounted record(s) in all, "
         f"{late} kill(s) after the work was done")  # fmt: skip
    return results
