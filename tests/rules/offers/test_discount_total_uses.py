"""A discount offer's total uses (issue #13; docs/adr/0030-discount-offer-total-uses.md): the
same reserve → commit path as promo codes (DESIGN.md §5.25), in the agent keyed by the offer.
A till reserves a use for its basket while the uses (live reservations counted) last; the
member's purchase commits it whatever the limit says by then; without a reservation the use
is decided when the purchase lands; a lapsed reservation counts no more."""

from __future__ import annotations

from datetime import timedelta

from processors.contract.config import OfferClosed
from processors.contract.internal import (
    OfferUseDenial,
    OfferUseDenied,
    OfferUseGranted,
    OfferUseRequested,
    OfferUseReservationReleased,
    OfferUseReservationRequested,
)
from processors.contract.offer_definition import DiscountKind
from processors.contract.offers import OfferBudgetExhausted, OfferCompleted
from processors.contract.offers import OfferUseReservationAnswered as Answered
from processors.rules.offers import budget, limits
from processors.rules.offers.evaluate import evaluate_cart
from tests.rules.given import T0
from tests.rules.offers.given_offers import Member, discount, offer, purchase, spend, usage

TTL = timedelta(minutes=15)


def capped(total: int = 2):  # type: ignore[no-untyped-def]
    return offer(
        "TENOFF",
        spend(1000),
        reward=discount(DiscountKind.AMOUNT_OFF_CART, amount_off_cents=300),
        usage=usage(uses_total_max=total),
    )


def reserve(tx: str, member: str = "m1", at=T0, total: int = 2) -> OfferUseReservationRequested:  # type: ignore[no-untyped-def]
    return OfferUseReservationRequested(
        event_id=f"res-{tx}-{at.isoformat()}", occurred_at=at, offer_id="TENOFF",
        member_id=member, transaction_id=tx, reserved_until=at + TTL, discount_cents=300,
        uses_total_max=total,
    )  # fmt: skip


def used(tx: str, member: str = "m1", at=T0, total: int = 2) -> OfferUseRequested:  # type: ignore[no-untyped-def]
    return OfferUseRequested(
        event_id=f"use-{tx}", occurred_at=at, offer_id="TENOFF", member_id=member,
        use_number=1, program_id="CA_MAIN", points_due=0, points_requested=0,
        uses_total_max=total, cause_event_id=f"tx-{tx}", transaction_id=tx,
        completed_event_id=f"done-{tx}", discount_cents=300,
    )  # fmt: skip


def run(*asked: budget.UsesInput) -> tuple[budget.OfferUses | None, list[object]]:
    state, out = None, []
    for request in asked:
        decision = budget.decide(state, request)
        state = decision.state
        out += decision.emitted
    return state, out


def answers(out: list[object]) -> list[tuple[str, bool]]:
    return [
        (e.transaction_id, e.reserved) if isinstance(e, Answered)  # type: ignore[attr-defined]
        else (e.member_id, isinstance(e, OfferUseGranted))  # type: ignore[attr-defined]
        for e in out
        if not isinstance(e, OfferBudgetExhausted | OfferClosed)
    ]  # fmt: skip


def test_a_discount_use_of_a_capped_offer_waits_for_the_offer_s_agent():
    member = Member(capped())
    (request,) = member.buys(purchase("T1", cents=2000)).events
    assert isinstance(request, OfferUseRequested)
    assert (request.points_requested, request.discount_cents) == (0, 300)


def test_discount_uses_are_granted_while_the_total_lasts_then_denied():
    state, out = run(*(used(f"T{n}", member=f"m{n}") for n in range(3)))
    assert answers(out) == [("m0", True), ("m1", True), ("m2", False)]
    assert state is not None
    assert state.uses_granted == 2
    assert len([e for e in out if isinstance(e, OfferBudgetExhausted)]) == 1


def test_a_granted_discount_use_completes_with_its_discount_and_no_points():
    member = Member(capped())
    (request,) = member.buys(purchase("T1", cents=2000)).events
    assert isinstance(request, OfferUseRequested)
    grant = budget.decide(None, request).emitted[0]
    assert isinstance(grant, OfferUseGranted)
    done = limits.on_granted(member.state, grant)
    (completed,) = done.events
    assert isinstance(completed, OfferCompleted)
    assert (completed.discount_cents, completed.points_awarded, done.awards) == (300, 0, [])


def test_reservations_count_against_the_total_and_refuse_once_it_is_held():
    _, out = run(reserve("T1"), reserve("T2"), reserve("T3"), used("T4", member="m4"))
    assert answers(out) == [("T1", True), ("T2", True), ("T3", False), ("m4", False)]


def test_a_till_told_yes_is_never_overruled_even_after_its_reservation_lapsed():
    late = T0 + TTL + timedelta(minutes=1)
    _, out = run(
        reserve("T1"), reserve("T2"), used("T3", member="m3", at=late),
        used("T4", member="m4", at=late), used("T1", at=late), used("T2", member="m2", at=late),
    )  # fmt: skip
    # Lapsed, T1 and T2 count no more: two uses go to T3 and T4, then both tills' baskets
    # commit what they were told, three and four over a total of two.
    assert answers(out) == [
        ("T1", True), ("T2", True), ("m3", True), ("m4", True), ("m1", True), ("m2", True),
    ]  # fmt: skip


def test_asking_again_extends_and_a_redelivered_use_gets_its_first_answer():
    later = T0 + timedelta(minutes=10)
    state, out = run(reserve("T1"), reserve("T1", at=later), used("T1"), used("T1"))
    (_first, again) = [e for e in out if isinstance(e, Answered)]
    assert again.reserved_until == later + TTL
    uses = [e for e in out if isinstance(e, OfferUseGranted | OfferUseDenied)]
    assert [type(e).__name__ for e in uses] == ["OfferUseGranted", "OfferUseGranted"]
    assert uses[0] == uses[1]
    assert state is not None
    assert (state.uses_granted, state.reservations) == (1, {})


def test_a_cart_shows_a_capped_discount_as_granted_and_names_the_use_to_reserve():
    member = Member(capped())
    cart = purchase("C1", cents=2000)
    evaluation = evaluate_cart(member.state, cart, member.catalogue, member.programs)
    (completed,) = evaluation.events
    assert isinstance(completed, OfferCompleted)
    assert completed.discount_cents == 300
    assert [(w.offer_id, w.discount_cents) for w in evaluation.waiting] == [("TENOFF", 300)]
    assert sum(d.cents for d in evaluation.discounts) == 300


def test_an_anonymous_cart_gets_no_capped_discount():
    member = Member(capped())
    cart = purchase("C1", cents=2000, member=None)
    evaluation = evaluate_cart(None, cart, member.catalogue, member.programs)
    assert (evaluation.discounts, evaluation.waiting) == ([], [])


def test_a_released_reservation_is_given_back_at_once_and_a_committed_use_stays():
    release = OfferUseReservationReleased(
        event_id="rel-T1", occurred_at=T0, offer_id="TENOFF", transaction_id="T1"
    )
    _, out = run(reserve("T1"), reserve("T2"), release, reserve("T3"), used("T2"), release)
    assert answers(out) == [("T1", True), ("T2", True), ("T3", True), ("m1", True)]


def test_a_use_denied_while_reservations_hold_the_rest_leaves_the_offer_open():
    member = Member(capped(total=1))
    (request,) = member.buys(purchase("T1", cents=2000)).events
    assert isinstance(request, OfferUseRequested)
    state = budget.decide(None, reserve("T0", member="m9", total=1)).state
    (denial,) = budget.decide(state, request).emitted
    assert isinstance(denial, OfferUseDenied)
    assert denial.reason is OfferUseDenial.USES_RESERVED
    limits.on_denied(member.state, denial)
    assert member.state.offers["TENOFF"].closed is False  # the reservation may lapse
    (again,) = member.buys(purchase("T2", cents=2000)).events
    assert isinstance(again, OfferUseRequested)  # asks again, and is decided again


def test_a_reservation_refused_says_whether_the_uses_are_spent_or_only_held():
    _, out = run(reserve("T1", total=1), reserve("T2", total=1), used("T1", total=1),
                 reserve("T3", total=1))  # fmt: skip
    refused = [e.reason for e in out if isinstance(e, Answered) and not e.reserved]
    assert refused == [OfferUseDenial.USES_RESERVED, OfferUseDenial.USES_SPENT]


def test_a_lapsed_reservation_asked_again_is_asked_anew():
    late = T0 + TTL + timedelta(minutes=1)
    _, out = run(
        reserve("T1", total=1), used("T2", member="m2", at=late, total=1),
        reserve("T1", at=late, total=1), used("T1", at=late, total=1),
    )  # fmt: skip
    # T1's reservation lapsed and T2 took the use: asked again, T1 is refused, and its
    # purchase (the till gave no discount) commits nothing.
    assert answers(out) == [("T1", True), ("m2", True), ("T1", False), ("m1", False)]
