"""Referral awards across two members (seed 001, DESIGN.md §2, ADR 12): the referred member's
first qualifying purchase pays the referrer once, through an internal step; a return that
leaves that purchase no longer qualifying takes the points back."""

from datetime import UTC, datetime, timedelta
from typing import Any

from processors.contract.common import PointsCategory
from processors.contract.config import ReferralPolicy
from processors.contract.enrolments import MemberEnrolled
from processors.contract.internal import ReferralQualified, ReferralReturned
from processors.contract.ledger import EntryKind, EntryType, LedgerEventRecorded, LedgerEventType
from processors.contract.outcomes import RequestAccepted
from processors.rules import member
from processors.rules.arithmetic import derived_id
from processors.rules.ledger.handle import handle
from tests.rules.given import (
    PROGRAM,
    T0,
    Ledgers,
    bought,
    enrolled,
    expiring_after,
    line,
    merged,
    only,
    program,
    programs,
    redeem,
    returned,
)

IN_A_YEAR = datetime(2027, 3, 3, 5, tzinfo=UTC)  # T0's lot under a 365-day policy
STEPS = (ReferralQualified, ReferralReturned)


def referring(points: int = 500, min_cents: int = 0, **changes: Any) -> Any:
    return program(
        expiry=expiring_after(365),
        referral=ReferralPolicy(referrer_points=points, first_purchase_min_cents=min_cents),
        **changes,
    )


def referred(member_id: str, by: str, **fields: Any) -> MemberEnrolled:
    return enrolled(member_id, **fields).model_copy(update={"referrer_member_id": by})


def friends(*configs: Any) -> Ledgers:
    """`ann` referred `bob`; both are members of CA_MAIN, which pays 500 points a referral."""
    ledgers = Ledgers(programs(*(configs or (referring(),))))
    ledgers.apply(enrolled("ann"), referred("bob", by="ann"))
    return ledgers


def steps_in(events: list[Any]) -> list[Any]:
    return [e for e in events if isinstance(e, STEPS)]


def test_the_first_purchase_of_a_referred_member_pays_the_referrer():
    ledgers = friends()
    events = ledgers.apply(bought("bob", "T1", cents=2000, at=T0 + timedelta(days=1)))
    step = only(events, ReferralQualified)
    assert step.event_id == derived_id("STEP", "bob", "T1", PROGRAM, "referral")
    assert (step.member_id, step.referred_member_id, step.points) == ("ann", "bob", 500)
    assert (step.transaction_id, step.purchase_event_id) == ("T1", "tx-T1")
    bob = only(ledgers.ledger("bob")[1:], LedgerEventRecorded)
    assert bob.event_type is LedgerEventType.TRANSACTION_ADD  # bob earns his own 20 points
    assert ledgers.balance("bob") == 20
    ann = only(ledgers.ledger("ann")[1:], LedgerEventRecorded)
    assert ann.event_type is LedgerEventType.REFERRAL
    assert (ann.cause_event_id, ann.related_member_id) == (step.event_id, "bob")
    assert ann.occurred_at == T0 + timedelta(days=1)
    assert [(e.entry_type, e.kind, e.category, e.points, e.expires_at) for e in ann.entries] == [
        (
            EntryType.CREDIT,
            EntryKind.REFERRAL,
            PointsCategory.REGULAR,
            500,
            IN_A_YEAR + timedelta(days=1),
        )
    ]
    assert ann.points_on_event == 500
    assert ledgers.balance("ann") == 500


def test_a_second_purchase_pays_nothing_more():
    ledgers = friends()
    ledgers.apply(bought("bob", "T1", cents=2000))
    events = ledgers.apply(bought("bob", "T2", cents=9000))
    assert steps_in(events) == []
    assert ledgers.balance("ann") == 500


def test_a_redelivered_purchase_or_step_pays_once():
    ledgers = friends()
    step = only(ledgers.apply(bought("bob", "T1", cents=2000)), ReferralQualified)
    assert ledgers.apply(bought("bob", "T1", cents=2000)) == []
    result = handle(ledgers.states["ann"], step, ledgers.programs)
    assert (result.emitted, result.note) == ([], "referral already credited")
    assert ledgers.balance("ann") == 500
    assert len(ledgers.ledger("ann")) == 2


def test_a_purchase_below_the_threshold_does_not_qualify_and_a_later_one_does():
    ledgers = friends(referring(min_cents=5000))
    assert steps_in(ledgers.apply(bought("bob", "T1", cents=4999))) == []
    step = only(ledgers.apply(bought("bob", "T2", cents=5000)), ReferralQualified)
    assert step.transaction_id == "T2"
    assert ledgers.balance("ann") == 500


def test_excluded_products_do_not_make_a_purchase_qualify():
    ledgers = friends()
    lotto = bought("bob", "T1", line("1", 5000, sku="LOTTO"), province="QC")
    assert steps_in(ledgers.apply(lotto)) == []
    assert ledgers.balance("ann") == 0


def test_no_policy_or_no_referrer_pays_nothing():
    ledgers = friends(program())
    assert steps_in(ledgers.apply(bought("bob", "T1", cents=2000))) == []
    ledgers = friends()
    assert steps_in(ledgers.apply(bought("ann", "T1", cents=2000))) == []  # ann has no referrer


def test_a_fully_returned_qualifying_purchase_takes_the_referral_back():
    ledgers = friends()
    qualified = only(ledgers.apply(bought("bob", "T1", cents=2000)), ReferralQualified)
    later = T0 + timedelta(days=3)
    events = ledgers.apply(returned("bob", "T1", "R1", ("1", 2000), at=later))
    step = only(events, ReferralReturned)
    assert step.event_id == derived_id("STEP", qualified.event_id, "return")
    assert (step.member_id, step.referred_member_id, step.points) == ("ann", "bob", 500)
    assert (step.qualified_event_id, step.return_id) == (qualified.event_id, "R1")
    ann = ledgers.ledger("ann")[-1]
    assert ann.event_type is LedgerEventType.REFERRAL
    assert (ann.cause_event_id, ann.occurred_at, ann.related_member_id) == (
        step.event_id,
        later,
        "bob",
    )
    assert [(e.entry_type, e.kind, e.points, e.expires_at) for e in ann.entries] == [
        (EntryType.DEBIT, EntryKind.REFERRAL, 500, IN_A_YEAR)
    ]
    assert ann.points_on_event == -500
    assert (ledgers.balance("ann"), ledgers.balance("bob")) == (0, 0)


def test_the_referral_return_may_overdraw_a_referrer_who_spent_the_points():
    ledgers = friends()
    ledgers.apply(bought("bob", "T1", cents=2000))
    ledgers.apply(redeem("ann", 400, "r1"))  # ann spends 400 of her 500
    ledgers.apply(returned("bob", "T1", "R1", ("1", 2000)))
    ann = ledgers.ledger("ann")[-1]
    assert [(e.entry_type, e.points, e.expires_at) for e in ann.entries] == [
        (EntryType.DEBIT, 100, IN_A_YEAR),
        (EntryType.DEBIT, 400, None),
    ]
    assert ledgers.balance("ann") == -400
    ledgers.apply(bought("ann", "T9", cents=50000))  # her next 500 points repay it first
    assert ledgers.balance("ann") == 100


def test_a_partial_return_that_still_qualifies_keeps_the_referral():
    ledgers = friends(referring(min_cents=3000))
    ledgers.apply(bought("bob", "T1", line("1", 4000), line("2", 1000)))
    assert steps_in(ledgers.apply(returned("bob", "T1", "R1", ("2", 1000)))) == []
    assert ledgers.balance("ann") == 500
    # Another return leaves 2,000 of eligible spend, below the 3,000 it qualified under.
    step = only(ledgers.apply(returned("bob", "T1", "R2", ("1", 2000))), ReferralReturned)
    assert step.return_id == "R2"
    assert ledgers.balance("ann") == 0


def test_a_referral_is_taken_back_once_and_never_paid_again():
    ledgers = friends()
    ledgers.apply(bought("bob", "T1", line("1", 1000), line("2", 1000)))
    first = ledgers.apply(returned("bob", "T1", "R1", ("1", 1000), ("2", 1000)))
    answer = [e for e in first if isinstance(e, RequestAccepted)]
    # Again: its answer again (ADR 43), no step, no ledger event.
    assert ledgers.apply(returned("bob", "T1", "R1", ("1", 1000), ("2", 1000))) == answer
    assert steps_in(ledgers.apply(returned("bob", "T1", "R2", ("1", 1000)))) == []
    assert steps_in(ledgers.apply(bought("bob", "T2", cents=9000))) == []
    assert ledgers.balance("ann") == 0
    assert [e.points_on_event for e in ledgers.ledger("ann")] == [0, 500, -500]


def test_a_redelivered_return_step_debits_once():
    ledgers = friends()
    ledgers.apply(bought("bob", "T1", cents=2000))
    step = only(ledgers.apply(returned("bob", "T1", "R1", ("1", 2000))), ReferralReturned)
    result = handle(ledgers.states["ann"], step, ledgers.programs)
    assert (result.emitted, result.note) == ([], "referral return already debited")
    assert ledgers.balance("ann") == 0


def test_a_step_for_an_unknown_referrer_is_dropped_with_a_note():
    ledgers = Ledgers(programs(referring()))
    ledgers.apply(referred("bob", by="ghost"))
    step = only(ledgers.apply(bought("bob", "T1", cents=2000)), ReferralQualified)
    assert "ghost" not in ledgers.states  # nothing recorded for a member never enrolled
    result = handle(None, step, ledgers.programs)
    assert (result.state, result.emitted) == (None, [])
    assert result.note == "referral dropped: referrer is not a member"


def test_a_referrer_outside_the_programme_is_not_paid_and_not_debited():
    ledgers = Ledgers(programs(referring(), referring(program_id="CA_FUEL")))
    ledgers.apply(enrolled("ann"), referred("bob", by="ann", programs=[PROGRAM, "CA_FUEL"]))
    events = ledgers.apply(bought("bob", "T1", cents=2000))
    assert [s.program_id for s in steps_in(events)] == [PROGRAM, "CA_FUEL"]
    fuel = next(s for s in steps_in(events) if s.program_id == "CA_FUEL")
    dropped = handle(ledgers.states["ann"], fuel, ledgers.programs)
    assert dropped.note == "referral dropped: referrer is not in programme CA_FUEL"
    assert [e.event_type for e in ledgers.ledger("ann")] == [
        LedgerEventType.CUSTOMER_REGISTRATION,
        LedgerEventType.REFERRAL,
    ]
    events = ledgers.apply(returned("bob", "T1", "R1", ("1", 2000)))
    assert len(steps_in(events)) == 2
    fuel_back = next(s for s in steps_in(events) if s.program_id == "CA_FUEL")
    dropped = handle(ledgers.states["ann"], fuel_back, ledgers.programs)
    assert dropped.note == "referral return dropped: referrer is not in programme CA_FUEL"
    assert ledgers.balance("ann") == 0


def test_a_merged_referrer_is_not_paid_and_its_survivor_keeps_what_the_merge_moved():
    ledgers = friends()
    ledgers.apply(enrolled("cat"))
    ledgers.apply(bought("bob", "T1", cents=2000))  # ann is paid 500
    ledgers.apply(merged("ann", "cat"))  # the 500 move to cat
    step = only(ledgers.apply(returned("bob", "T1", "R1", ("1", 2000))), ReferralReturned)
    dropped = handle(ledgers.states["ann"], step, ledgers.programs)
    assert dropped.note == "referral return dropped: referrer merged into cat"
    assert (ledgers.balance("ann"), ledgers.balance("cat")) == (0, 500)


def test_a_purchase_parked_before_the_enrolment_pays_once_the_member_enrols():
    ledgers = Ledgers(programs(referring()))
    ledgers.apply(enrolled("ann"), bought("bob", "T1", cents=2000))
    events = ledgers.apply(referred("bob", by="ann"))
    assert only(events, ReferralQualified).transaction_id == "T1"
    assert ledgers.balance("ann") == 500


def test_only_the_enrolment_that_makes_the_member_names_the_referrer():
    ledgers = Ledgers(programs(referring(), referring(program_id="CA_FUEL")))
    ledgers.apply(enrolled("ann"), enrolled("cat"), referred("bob", by="ann"), enrolled("dan"))
    for member_id in ("bob", "dan"):  # both join CA_FUEL later, saying cat referred them
        later = referred(member_id, by="cat", programs=["CA_FUEL"])
        ledgers.apply(later.model_copy(update={"event_id": f"enrol-{member_id}-2"}))
    assert ledgers.states["bob"].programs == [PROGRAM, "CA_FUEL"]
    assert ledgers.states["bob"].referrer_member_id == "ann"
    assert ledgers.states["dan"].referrer_member_id is None
    ledgers.apply(bought("dan", "T1", cents=2000))
    assert ledgers.balance("cat") == 0


def test_the_member_composition_pays_and_takes_back_referrals():
    config = member.Config(programs=dict(programs(referring())))
    ann, bob = member.MemberState("ann"), member.MemberState("bob")
    member.handle(ann, enrolled("ann"), config)
    member.handle(bob, referred("bob", by="ann"), config)
    paid = member.handle(bob, bought("bob", "T1", cents=2000), config)
    credited = member.handle(ann, only(paid.emitted, ReferralQualified), config)
    assert only(credited.emitted, LedgerEventRecorded).points_on_event == 500
    back = member.handle(bob, returned("bob", "T1", "R1", ("1", 2000)), config)
    debited = member.handle(ann, only(back.emitted, ReferralReturned), config)
    assert only(debited.emitted, LedgerEventRecorded).points_on_event == -500
    assert ann.ledger is not None
    assert ann.ledger.balance(PROGRAM, PointsCategory.REGULAR) == 0


def test_the_policy_is_optional_and_old_programme_configurations_have_none():
    assert program().referral is None
    assert ReferralPolicy(referrer_points=1).first_purchase_min_cents == 0
