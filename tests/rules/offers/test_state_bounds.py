"""A member's offer state stays bounded (ADR 13 "Bounded"; `rules.offers.retention`): the
per-offer entries of an offer that ended more than the returns window before the member's
newest business time are dropped at the member's next daily run; nothing a live offer, a
pending use or a return inside the window needs is."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from processors.contract.config import OfferWithdrawn
from processors.contract.offer_definition import (
    ActivationKind,
    OfferActivation,
    OfferSchedule,
    TargetingKind,
    TargetingTiming,
)
from processors.rules.member import dump_state
from processors.rules.offers import retention
from processors.rules.offers.state import (
    MemberOffers,
    OfferProgress,
    PendingUse,
    PurchaseContribution,
    PurchaseRecord,
    TargetingDecision,
    TriggerFire,
    UseRecord,
)
from tests.rules.given import PROGRAM, T0, day
from tests.rules.offers.given_offers import ENDS, STARTS
from tests.rules.offers.given_targeting import Engine, audience, targeting

LOAD = OfferActivation(kind=ActivationKind.LOAD_TO_CARD)
VIP = targeting(TargetingKind.AUDIENCE_LIST, TargetingTiming.STATIC, audience_id="VIP")


def member_who_loaded_and_completed(**changes: object) -> Engine:
    """m1 was targeted by OFFER_T (a static list), loaded it and completed it once."""
    engine = Engine()
    engine.enrol("m1")
    engine.feed(audience("VIP", "m1"))
    engine.publish(activation=LOAD, targeting=VIP, **changes)
    engine.load("m1")
    engine.buy("m1", "T1")
    assert engine.points("m1") == 100
    return engine


def offers_of(engine: Engine, member: str = "m1") -> MemberOffers:
    state = engine.sim.members[member].offers
    assert state is not None
    return state


def traces(engine: Engine, offer_id: str = "OFFER_T") -> bool:
    return offer_id.encode() in dump_state(engine.sim.members["m1"])


def then_the_next_day(engine: Engine, newest: datetime) -> None:
    engine.feed(day(newest.date() + timedelta(days=1)))


def test_an_offer_that_ended_366_days_before_the_newest_event_leaves_no_trace_next_day():
    engine = member_who_loaded_and_completed()
    newest = ENDS + timedelta(days=366)
    engine.buy("m1", "T2", at=newest)
    assert not traces(engine)  # a purchase forgets by the same rule as the daily run
    then_the_next_day(engine, newest)
    assert not traces(engine)


def test_an_offer_that_ended_364_days_before_the_newest_event_keeps_its_entries():
    engine = member_who_loaded_and_completed()
    newest = ENDS + timedelta(days=364)
    engine.buy("m1", "T2", at=newest)
    then_the_next_day(engine, newest)
    state = offers_of(engine)
    assert "OFFER_T" in state.targeting
    assert "OFFER_T" in state.loaded
    assert state.offers["OFFER_T"].uses == 1


def test_an_evergreen_offer_still_live_keeps_its_decision():
    evergreen = OfferSchedule(starts_at=STARTS, ends_at=None)  # type: ignore[arg-type]
    engine = member_who_loaded_and_completed(schedule=evergreen)
    newest = T0 + timedelta(days=3 * 365)
    engine.buy("m1", "T2", at=newest)
    then_the_next_day(engine, newest)
    assert offers_of(engine).targeting["OFFER_T"].targeted


def test_a_withdrawn_evergreen_offer_ends_at_its_withdrawal():
    evergreen = OfferSchedule(starts_at=STARTS, ends_at=None)  # type: ignore[arg-type]
    engine = member_who_loaded_and_completed(schedule=evergreen)
    engine.feed(OfferWithdrawn(event_id="wd", occurred_at=T0 + timedelta(days=1),
                               offer_id="OFFER_T", requested_by="staff"))  # fmt: skip
    newest = T0 + timedelta(days=367)
    engine.buy("m1", "T2", at=newest)
    then_the_next_day(engine, newest)
    assert not traces(engine)


def test_an_inactive_member_is_bounded_by_the_daily_runs_alone():
    engine = member_who_loaded_and_completed()
    last_day = (ENDS + timedelta(days=367)).date()
    engine.feed(day(last_day))
    assert offers_of(engine).offer_ids() == set()


# --- the pure function ----------------------------------------------------------------------

NEWEST = T0 + timedelta(days=800)
LONG_AGO = NEWEST - timedelta(days=366)


def use(number: int, at: datetime) -> UseRecord:
    return UseRecord(number=number, at=at, completed_event_id=f"c{number}",
                     program_id=PROGRAM, progress=[Decimal(1)])  # fmt: skip


def member_with(offer_id: str, standing: OfferProgress | None = None) -> MemberOffers:
    """A member remembering every kind of per-offer entry for `offer_id`."""
    state = MemberOffers(member_id="m1", markets=["CA"], newest_at=NEWEST)
    state.targeting[offer_id] = TargetingDecision(targeted=True, at=STARTS)
    state.triggers[offer_id] = [TriggerFire(at=STARTS, cause="act-1")]
    state.loaded[offer_id] = STARTS
    if standing is not None:
        state.offers[offer_id] = standing
    return state


def ended_long_ago(offer_id: str) -> datetime | None:
    return LONG_AGO


def test_every_entry_of_an_offer_ended_before_the_window_is_dropped():
    state = member_with("OLD", OfferProgress(uses=1, completed=[use(1, STARTS)]))
    assert retention.forget_ended(state, ended_long_ago) == ["OLD"]
    assert state.offer_ids() == set()


def test_a_pending_use_keeps_its_offer():
    pending = PendingUse(request_event_id="req-1", record=use(1, STARTS), cause_event_id="tx-1")
    state = member_with("OLD", OfferProgress(uses=1, pending=[pending]))
    assert retention.forget_ended(state, ended_long_ago) == []
    assert state.offers["OLD"].pending == [pending]
    assert "OLD" in state.targeting


def test_a_use_completed_inside_the_window_stays():
    state = member_with(
        "OLD", OfferProgress(uses=1, completed=[use(1, NEWEST - timedelta(days=10))])
    )
    assert retention.forget_ended(state, ended_long_ago) == []
    assert state.offers["OLD"].completed


def test_an_offer_a_purchase_inside_the_window_counted_towards_stays():
    state = member_with("OLD", OfferProgress(uses=1))
    state.purchases["T1"] = PurchaseRecord(
        at=NEWEST - timedelta(days=10),
        offers={"OLD": PurchaseContribution(use=1, lines=[["1"]], values=[Decimal(1)])},
    )
    assert retention.forget_ended(state, ended_long_ago) == []
    assert "OLD" in state.offers


def test_an_offer_the_catalogue_does_not_know_is_kept():
    state = member_with("UNKNOWN")
    assert retention.forget_ended(state, lambda offer_id: None) == []
    assert state.offer_ids() == {"UNKNOWN"}


# --- bounded over years ---------------------------------------------------------------------


def test_years_of_daily_runs_and_a_new_offer_every_month_keep_the_state_bounded():
    """Property-style: two members (one loads and buys each month's offer, one only has daily
    runs) over five years, a new monthly offer each month. The offer state's serialised size
    at the end of each year from the second on never exceeds the second year's (a state that
    kept every offer would grow by a year of offers each year)."""
    engine = Engine()
    engine.enrol("m1")
    engine.enrol("idle")
    engine.feed(audience("VIP", "m1", "idle"))
    start = date(2026, 1, 1)
    sizes: dict[str, list[int]] = {"m1": [], "idle": []}
    today = start
    for month in range(5 * 12):
        first = _add_months(start, month)
        ends = _midnight(_add_months(start, month + 1))
        offer_id = f"MONTHLY_{month:03d}"
        schedule = OfferSchedule(starts_at=_midnight(first), ends_at=ends)
        engine.publish(offer_id, activation=LOAD, targeting=VIP, at=_midnight(first),
                       event_id=f"pub-{offer_id}", schedule=schedule)  # fmt: skip
        engine.load("m1", offer_id, command=f"C{month}", at=_midnight(first) + timedelta(hours=12))
        engine.buy("m1", f"T{month}", at=_midnight(first) + timedelta(days=9, hours=15))
        while today < _add_months(start, month + 1):
            engine.feed(day(today))
            today += timedelta(days=1)
        if (month + 1) % 12 == 0:
            for member in sizes:
                sizes[member].append(len(offers_of(engine, member).model_dump_json()))
    assert engine.points("m1") == 60 * 100  # every month's offer paid
    for member, by_year in sizes.items():
        assert max(by_year[1:]) <= by_year[1], (member, by_year)
        assert len(offers_of(engine, member).offer_ids()) <= 14, member  # ~13 months, of 60


def _add_months(on: date, months: int) -> date:
    total = on.year * 12 + on.month - 1 + months
    return date(total // 12, total % 12 + 1, 1)


def _midnight(on: date) -> datetime:
    return datetime(on.year, on.month, on.day, tzinfo=T0.tzinfo)
