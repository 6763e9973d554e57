"""Offer-level limits (DESIGN.md §2, §5.20; ADR 14): the agent keyed by the offer grants uses in
arrival order, clips the last award to what the budget has left, denies the rest, announces a
spent budget once, and answers a redelivered request alike; the member completes a use only
on a grant."""

from __future__ import annotations

from processors.contract.config import OfferClosed
from processors.contract.internal import OfferUseDenied, OfferUseGranted, OfferUseRequested
from processors.contract.offers import BudgetExhaustion, OfferBudgetExhausted, OfferCompleted
from processors.rules.offers import budget, limits
from tests.rules.given import T0
from tests.rules.offers.given_offers import Member, flat, offer, purchase, spend, usage


def asked(member: str, points: int = 100, use: int = 1, **limits_: int) -> OfferUseRequested:
    return OfferUseRequested(
        event_id=f"req-{member}-{use}",
        occurred_at=T0,
        offer_id="FIRST2",
        member_id=member,
        use_number=use,
        program_id="CA_MAIN",
        points_due=points,
        points_requested=points,
        cause_event_id=f"tx-{member}-{use}",
        completed_event_id=f"done-{member}-{use}",
        **limits_,  # type: ignore[arg-type]
    )


def run(*requests: OfferUseRequested) -> tuple[budget.OfferUses | None, list[object]]:
    state, out = None, []
    for request in requests:
        decision = budget.decide(state, request)
        state = decision.state
        out += decision.emitted
    return state, out


def test_the_first_n_requests_are_granted_and_the_rest_denied():
    state, out = run(*(asked(f"m{n}", uses_total_max=2) for n in range(4)))
    answers = [
        (type(e).__name__, e.member_id)  # type: ignore[attr-defined]
        for e in out
        if not isinstance(e, OfferBudgetExhausted | OfferClosed)
    ]
    assert answers == [
        ("OfferUseGranted", "m0"),
        ("OfferUseGranted", "m1"),
        ("OfferUseDenied", "m2"),
        ("OfferUseDenied", "m3"),
    ]
    assert state is not None
    assert (state.uses_granted, state.points_granted) == (2, 200)


def test_a_spent_budget_is_announced_once_with_the_grant_that_spent_it():
    _, out = run(*(asked(f"m{n}", uses_total_max=2) for n in range(4)))
    spent = [e for e in out if isinstance(e, OfferBudgetExhausted)]
    assert len(spent) == 1
    assert (spent[0].reason, spent[0].last_member_id, spent[0].uses_granted) == (
        BudgetExhaustion.USES_SPENT,
        "m1",
        2,
    )


def test_the_budget_clips_the_award_that_crosses_it_then_denies():
    # 800 due, 300 left -> 300, then nothing (DESIGN.md §5.20).
    _, out = run(*(asked(f"m{n}", points=800, budget_points_max=1900) for n in range(4)))
    granted = [e.points_granted for e in out if isinstance(e, OfferUseGranted)]
    denied = [e.reason.value for e in out if isinstance(e, OfferUseDenied)]
    assert granted == [800, 800, 300]
    assert denied == ["BUDGET_SPENT"]


def test_a_redelivered_request_gets_its_original_answer():
    first = asked("m0", uses_total_max=1)
    state, out = run(first, asked("m1", uses_total_max=1))
    again = budget.decide(state, first).emitted
    assert again == [out[0]]
    assert state is not None
    assert state.uses_granted == 1
    late = budget.decide(state, asked("m1", uses_total_max=1)).emitted
    assert late == [out[-1]]
    assert isinstance(late[0], OfferUseDenied)


def test_budget_is_total_uses_times_the_per_member_cap_when_not_set():
    capped = offer("CAPPED", usage=usage(uses_total_max=10, points_per_member_max=500))
    assert limits.budget_points(capped) == 5000


def limited(**controls: int):  # type: ignore[no-untyped-def]
    return offer("FIRST2", spend(1000), reward=flat(100), usage=usage(**controls))


def test_a_use_of_a_limited_offer_waits_for_the_offer_s_decision():
    member = Member(limited(uses_total_max=2))
    evaluation = member.buys(purchase("T1", cents=1000))
    assert evaluation.awards == []
    assert [type(e).__name__ for e in evaluation.events] == ["OfferUseRequested"]
    request = evaluation.events[0]
    assert isinstance(request, OfferUseRequested)
    assert (request.points_requested, request.uses_total_max) == (100, 2)


def test_a_granted_use_completes_once_with_the_granted_points():
    member = Member(limited(budget_points_max=60))
    (request,) = member.buys(purchase("T1", cents=1000)).events
    assert isinstance(request, OfferUseRequested)
    (grant, _spent, _closed) = budget.decide(None, request).emitted
    assert isinstance(grant, OfferUseGranted)
    done = limits.on_granted(member.state, grant)
    (completed,) = done.events
    assert isinstance(completed, OfferCompleted)
    assert (completed.points_due, completed.points_awarded) == (100, 60)
    assert [a.points for a in done.awards] == [60]
    assert limits.on_granted(member.state, grant).events == []  # redelivered: booked once
    assert member.state.offers["FIRST2"].points_awarded == 60


def test_a_denied_use_pays_nothing_does_not_count_and_closes_the_offer():
    member = Member(limited(uses_total_max=1, uses_per_member_max=5))
    (request,) = member.buys(purchase("T1", cents=1000)).events
    assert isinstance(request, OfferUseRequested)
    spent = budget.OfferUses(offer_id="FIRST2", uses_granted=1)
    (denial,) = budget.decide(spent, request).emitted
    assert isinstance(denial, OfferUseDenied)
    assert limits.on_denied(member.state, denial).events == []
    standing = member.state.offers["FIRST2"]
    assert (standing.uses, standing.points_awarded, standing.closed) == (0, 0, True)
    assert member.buys(purchase("T2", cents=1000)).events == []  # closed: silent
