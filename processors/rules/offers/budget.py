"""An offer's total uses and points budget, decided in arrival order by the agent keyed by the
offer (DESIGN.md §2, §5.20; docs/adr/0014-offer-level-caps.md). Pure: the state and the
request in, the next state and the events to emit out; no clock, ids derived from the request.

Decisions:
- Requests are granted in the order they arrive on the offer's partition: "the first N" are
  the first N requests that partition holds, whatever member partition sent them.
- The limits judged are those the request carries (the offer's definition where the use
  completed), so the agent needs no catalogue; a republished offer with higher limits opens
  again for later requests.
- Caps clip: a request asking more than the budget has left is granted what is left (800
  asked, 300 left → 300); once the uses or the points are spent every request is denied.
- `OfferBudgetExhausted` is emitted once, with the grant that spends the offer.
- Idempotent: each member's decided uses are kept (use number → points granted, 0 when denied),
  so a redelivered request is answered with its original decision, same id and content. The
  state grows with the members who asked, not with the requests: a member's uses are bounded
  by the offer's own limits, and a member whose use was denied asks no more.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, Field

from processors.contract.base import Event
from processors.contract.internal import (
    OfferUseDenial,
    OfferUseDenied,
    OfferUseGranted,
    OfferUseRequested,
)
from processors.contract.offers import BudgetExhaustion, OfferBudgetExhausted
from processors.rules.arithmetic import derived_id


class OfferUses(BaseModel):
    """What the agent keeps about one offer: what it granted, and every member's answers."""

    offer_id: str
    uses_granted: int = 0
    points_granted: int = 0
    exhausted_by: str | None = None  # the request whose grant spent the offer, once spent
    decided: dict[str, dict[int, int]] = Field(default_factory=dict)
    """member id → use number → points granted (0: denied)."""


@dataclass
class Decision:
    """The offer's next state and what to emit, in order."""

    state: OfferUses
    emitted: list[Event] = field(default_factory=list)


def decide(state: OfferUses | None, request: OfferUseRequested) -> Decision:
    """Grant, clip or deny one requested use (see the module's decisions).

    Takes ownership of `state` and changes it in place, like the member rules.
    """
    if state is None:
        state = OfferUses(offer_id=request.offer_id)
    decision = Decision(state)
    answers = state.decided.setdefault(request.member_id, {})
    known = answers.get(request.use_number)
    if known is not None:
        decision.emitted.append(_answer(state, request, known))
        return decision
    points = min(request.points_requested, _points_left(state, request))
    if _uses_left(state, request) <= 0 or points <= 0:
        points = 0
    else:
        state.uses_granted += 1
        state.points_granted += points
    answers[request.use_number] = points
    decision.emitted.append(_answer(state, request, points))
    spent = _spent(state, request)
    if points > 0 and spent is not None:
        state.exhausted_by = request.event_id
        decision.emitted.append(
            OfferBudgetExhausted(
                event_id=derived_id("offer-budget-exhausted", request.event_id),
                occurred_at=request.occurred_at,
                offer_id=request.offer_id,
                reason=spent,
                uses_granted=state.uses_granted,
                points_granted=state.points_granted,
                uses_total_max=request.uses_total_max,
                budget_points_max=request.budget_points_max,
                last_member_id=request.member_id,
                request_event_id=request.event_id,
            )
        )
    return decision


def _uses_left(state: OfferUses, request: OfferUseRequested) -> int:
    if request.uses_total_max is None:
        return 1
    return request.uses_total_max - state.uses_granted


def _points_left(state: OfferUses, request: OfferUseRequested) -> int:
    if request.budget_points_max is None:
        return request.points_requested
    return request.budget_points_max - state.points_granted


def _spent(state: OfferUses, request: OfferUseRequested) -> BudgetExhaustion | None:
    """Which limit is spent now, if one is (uses first: they are what "the first N" names)."""
    if request.uses_total_max is not None and state.uses_granted >= request.uses_total_max:
        return BudgetExhaustion.USES_SPENT
    if request.budget_points_max is not None and state.points_granted >= request.budget_points_max:
        return BudgetExhaustion.BUDGET_SPENT
    return None


def _answer(state: OfferUses, request: OfferUseRequested, points: int) -> Event:
    if points > 0:
        return OfferUseGranted(
            event_id=derived_id("offer-use-granted", request.event_id),
            occurred_at=request.occurred_at,
            member_id=request.member_id,
            offer_id=request.offer_id,
            use_number=request.use_number,
            request_event_id=request.event_id,
            points_requested=request.points_requested,
            points_granted=points,
        )
    spent = _spent(state, request)
    return OfferUseDenied(
        event_id=derived_id("offer-use-denied", request.event_id),
        occurred_at=request.occurred_at,
        member_id=request.member_id,
        offer_id=request.offer_id,
        use_number=request.use_number,
        request_event_id=request.event_id,
        reason=OfferUseDenial.USES_SPENT
        if spent is BudgetExhaustion.USES_SPENT
        else OfferUseDenial.BUDGET_SPENT,
    )
