"""Issue #6 acceptance, on the real stack: an offer's total uses and points budget are decided in
order by the agent keyed by the offer (ADR 14), so "the first N" is exact however many members
qualify at once, from every partition: never one award more, never a point past the budget."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest

from loyalty.producing import publish_events
from loyalty.services import Services
from processors.base.settings import Settings
from processors.contract.base import Event
from processors.contract.config import OfferPublished
from processors.contract.internal import OfferUseDenied, OfferUseGranted
from processors.contract.ledger import LedgerEventRecorded, LedgerEventType
from processors.contract.offers import BudgetExhaustion, OfferBudgetExhausted, OfferCompleted
from tests.integration.test_worker_ledger import Collector
from tests.rules.given import T0, bought, enrolled, program
from tests.rules.offers.given_offers import flat, offer, spend, usage

pytestmark = pytest.mark.integration


class Outputs:
    """The ledger, offers and answers topics from now on, for one run's members and offer."""

    def __init__(self, settings: Settings, prefix: str, offer_id: str) -> None:
        def mine(event: Event) -> bool:
            if isinstance(event, OfferBudgetExhausted):
                return event.offer_id == offer_id
            return getattr(event, "member_id", "").startswith(prefix)

        def on(topic: str) -> Collector:
            return Collector(
                settings.bootstrap_servers, settings.topic(topic), settings.partitions, mine
            )

        self.ledger = on("loyalty.ledger.v1")
        self.offers = on("loyalty.offers.v1")
        self.answers = on("loyalty.internal.ledger-steps.v1")
        self.all = (self.ledger, self.offers, self.answers)

    async def start(self) -> None:
        for collector in self.all:
            await collector.start()

    async def stop(self) -> None:
        for collector in self.all:
            await collector.stop()

    async def until(self, done: Callable[[], bool], seconds: float) -> bool:
        deadline = seconds / 0.3
        while not done() and deadline > 0:
            for collector in self.all:
                await collector.poll(0.1)
            deadline -= 1
        return done()

    def distinct(self, collector: Collector, kind: type) -> dict[str, Event]:
        """Events of `kind` by id: a redelivered output is the same event again."""
        return {e.event_id: e for e in collector.events if isinstance(e, kind)}

    def awards(self) -> dict[str, LedgerEventRecorded]:
        ledger = self.distinct(self.ledger, LedgerEventRecorded)
        return {
            k: e  # type: ignore[misc]
            for k, e in ledger.items()
            if e.event_type is LedgerEventType.OFFER_AWARD  # type: ignore[attr-defined]
        }

    def count(self, collector: Collector, kind: type) -> int:
        return len(self.distinct(collector, kind))


async def _run(
    settings: Settings, tmp_path, run: str, limited: OfferPublished, members: int
) -> Outputs:  # type: ignore[no-untyped-def]
    """Enrol `members`, then have every one of them qualify at once; returns what came out
    once every request was answered."""
    config = program(limited.program_id, event_id=f"cfg-{run}")
    ids = [f"{run}-m{n}" for n in range(members)]
    out = Outputs(settings, run, limited.offer_id)
    await out.start()
    await publish_events(settings, [config, limited])
    services = Services(settings, tmp_path)
    worker = services.start("worker", "worker")
    try:
        await publish_events(settings, [enrolled(m, programs=[config.program_id]) for m in ids])
        registered = lambda: out.count(out.ledger, LedgerEventRecorded) >= members  # noqa: E731
        assert await out.until(registered, 180), worker.log_tail()
        at = T0 + timedelta(hours=1)
        await publish_events(
            settings, [bought(m, f"{m}-T1", cents=2000, at=at) for m in ids]
        )  # every member qualifies, from every partition, at once
        answered = lambda: (  # noqa: E731
            out.count(out.answers, OfferUseGranted) + out.count(out.answers, OfferUseDenied)
            >= members
        )
        assert await out.until(answered, 240), worker.log_tail()
        granted = out.count(out.answers, OfferUseGranted)
        booked = lambda: (  # noqa: E731
            len(out.awards()) >= granted and out.count(out.offers, OfferCompleted) >= granted
        )
        assert await out.until(booked, 60), worker.log_tail()
        await out.until(lambda: False, 3)  # anything more (a 1,001st) would show up by now
    finally:
        services.stop()
        await out.stop()
    return out


async def test_the_first_1000_of_5000_members_qualifying_at_once_are_awarded(isolated, tmp_path):  # type: ignore[no-untyped-def]
    run = uuid.uuid4().hex[:6]
    first_1000 = offer(
        f"FIRST1000_{run}",
        spend(1000),
        reward=flat(100),
        usage=usage(uses_total_max=1000),
        program_id=f"P_{run}",
    )

    out = await _run(isolated, tmp_path, run, first_1000, members=5000)

    completed = out.distinct(out.offers, OfferCompleted)
    paid = [e for e in completed.values() if e.points_awarded > 0]  # type: ignore[attr-defined]
    awards = out.awards()
    assert len(paid) == 1000
    assert len(completed) == 1000  # a denied use completes nothing
    assert len(awards) == 1000
    assert sum(e.points_on_event for e in awards.values()) == 100_000
    assert len({e.member_id for e in awards.values()}) == 1000
    assert (out.count(out.answers, OfferUseGranted), out.count(out.answers, OfferUseDenied)) == (
        1000,
        4000,
    )
    (spent,) = out.distinct(out.offers, OfferBudgetExhausted).values()
    assert isinstance(spent, OfferBudgetExhausted)
    assert (spent.reason, spent.uses_granted) == (BudgetExhaustion.USES_SPENT, 1000)


async def test_a_points_budget_clips_the_last_award_and_pays_not_a_point_more(isolated, tmp_path):  # type: ignore[no-untyped-def]
    run = uuid.uuid4().hex[:6]
    budgeted = offer(
        f"BUDGET_{run}",
        spend(1000),
        reward=flat(300),
        usage=usage(budget_points_max=100_000),
        program_id=f"P_{run}",
    )

    out = await _run(isolated, tmp_path, run, budgeted, members=1000)

    completed = list(out.distinct(out.offers, OfferCompleted).values())
    awards = out.awards()
    assert sum(e.points_on_event for e in awards.values()) == 100_000
    assert len(awards) == len(completed) == 334  # 333 × 300, then 100 of the 300 due
    clipped = [e for e in completed if e.points_awarded < e.points_due]  # type: ignore[attr-defined]
    assert [(e.points_due, e.points_awarded) for e in clipped] == [(300, 100)]  # type: ignore[attr-defined]
    (spent,) = out.distinct(out.offers, OfferBudgetExhausted).values()
    assert isinstance(spent, OfferBudgetExhausted)
    assert (spent.reason, spent.points_granted) == (BudgetExhaustion.BUDGET_SPENT, 100_000)
