"""The member's side of offer-level limits (DESIGN.md §2, §5.20; docs/adr/0014-offer-level-caps.md):
a completed use of an offer with a total-uses limit or a points budget waits for the agent
keyed by the offer, then is completed or dropped on its answer.

1. `request`: the use is counted (its number taken, its points reserved against the member's
   own caps) and kept pending; an `OfferUseRequested` goes to the offer's agent. No
   OfferCompleted and no award yet. A discount use of an offer with a total-uses limit waits
   too (docs/adr/0030-discount-offer-total-uses.md): the till reserved it, or learns from the
   answer.
2. `on_granted`: the pending use completes: OfferCompleted with the granted points (the budget
   may have clipped them; a return since may have lowered them) and its award, once.
3. `on_denied`: the pending use is dropped: nothing is emitted, and the use and its points no
   longer count against the member's limits; the offer is closed for the member when its uses
   or budget are spent, which never comes undone (not when tills' reservations hold the uses
   left: `USES_RESERVED`, ADR 30; not when the code that unlocked it was refused:
   `CODE_REFUSED`, ADR 37).

A use of an offer a promo code unlocked (docs/adr/0037-codes-that-unlock-an-offer.md) waits
the same way, for the promotion's agent instead: its request is the code's
`PromoCodeUseRequested` carrying the offer's use, answered with the same grant or denial.

Answers are idempotent: one for a use that is no longer pending (redelivered) changes nothing.
Never decides whether a use is granted (`budget` does, on the offer's partition).
"""

from __future__ import annotations

from processors.contract.common import Source
from processors.contract.config import OfferPublished
from processors.contract.internal import (
    CodeOfferUse,
    OfferUseDenial,
    OfferUseDenied,
    OfferUseGranted,
    OfferUseRequested,
    PromoCodeUseRequested,
)
from processors.contract.offers import OfferCompleted
from processors.rules.arithmetic import derived_id
from processors.rules.offers.plans import Award, Cause, Evaluation, Plan, use_record
from processors.rules.offers.state import MemberOffers, OfferProgress, PendingUse


def has_offer_limits(offer: OfferPublished) -> bool:
    """True when an agent keyed by the offer must grant each paying use."""
    usage = offer.usage
    return usage.uses_total_max is not None or usage.budget_points_max is not None


def waits_for_offer(plan: Plan, cause: Cause) -> bool:
    """True when the use must wait for an agent: a promo code of the cause unlocked the offer
    and the use gives something (the promotion's agent counts the code, ADR 37); it pays
    points and the offer has a total-uses limit or a budget, or it gives a discount and the
    offer has a total-uses limit (docs/adr/0030-discount-offer-total-uses.md: the till
    reserved it, or it is decided when the purchase lands)."""
    if plan.offer.offer_id in cause.unlocks:
        return plan.points > 0 or plan.discount_cents > 0 or plan.payout.reward_id is not None
    if plan.points > 0:
        return has_offer_limits(plan.offer)
    return plan.discount_cents > 0 and plan.offer.usage.uses_total_max is not None


def budget_points(offer: OfferPublished) -> int | None:
    """The offer's points budget: `budget_points_max`, else total uses × points per member
    when both are set (seed 003: "combining [total uses] with a maximum limit on the number
    of points a member can receive ... you can set a maximum budget"); None: no budget."""
    usage = offer.usage
    if usage.budget_points_max is not None:
        return usage.budget_points_max
    if usage.uses_total_max is not None and usage.points_per_member_max is not None:
        return usage.uses_total_max * usage.points_per_member_max
    return None


def request(
    state: MemberOffers,
    standing: OfferProgress,
    plan: Plan,
    cause: Cause,
    use: int,
    completed_event_id: str,
) -> OfferUseRequested | PromoCodeUseRequested:
    """Keep use `use` (already counted in `standing`) pending; the request to send: to the
    promotion's agent when a code of the cause unlocked the offer, else to the offer's."""
    offer = plan.offer
    code_use = cause.unlocks.get(offer.offer_id)
    request_id = (
        code_use.event_id
        if code_use is not None
        else derived_id("offer-use-requested", cause.event_id, offer.offer_id, str(use))
    )
    standing.pending.append(
        PendingUse(
            request_event_id=request_id,
            record=use_record(plan, cause, use, completed_event_id),
            cause_event_id=cause.event_id,
            multiples=plan.payout.multiples,
            tier=plan.payout.tier,
            points_due=plan.payout.points_due,
            discount_cents=plan.discount_cents,
            source=cause.source.value if cause.source is not None else None,
            store_id=cause.store_id,
            till_id=cause.till_id,
            transaction_number=cause.transaction_number,
        )
    )
    if code_use is not None:
        return code_use.model_copy(
            update={
                "discount_cents": plan.discount_cents,
                "offer_use": CodeOfferUse(
                    offer_id=offer.offer_id, use_number=use, points_requested=plan.points
                ),
            }
        )
    return OfferUseRequested(
        event_id=request_id,
        occurred_at=cause.at,
        offer_id=offer.offer_id,
        member_id=state.member_id,
        use_number=use,
        program_id=offer.program_id,
        points_due=plan.payout.points_due,
        points_requested=plan.points,
        uses_total_max=offer.usage.uses_total_max,
        budget_points_max=budget_points(offer),
        cause_event_id=cause.event_id,
        transaction_id=cause.transaction_id,
        completed_event_id=completed_event_id,
        discount_cents=plan.discount_cents,
    )


def on_granted(state: MemberOffers, granted: OfferUseGranted) -> Evaluation:
    """Complete the granted use: OfferCompleted and its award (none when a return took all of
    it back meanwhile). Pays the grant, or less when a return lowered the use since."""
    evaluation = Evaluation()
    standing, pending = _take(state, granted.offer_id, granted.request_event_id)
    if standing is None or pending is None:
        return evaluation
    use = pending.record
    paid = min(granted.points_granted, use.points_awarded)
    standing.points_awarded -= use.points_awarded - paid
    use.points_awarded = paid
    evaluation.events.append(
        OfferCompleted(
            event_id=use.completed_event_id,
            occurred_at=use.at,
            member_id=state.member_id,
            offer_id=granted.offer_id,
            in_control_group=False,
            cause_event_id=pending.cause_event_id,
            transaction_id=use.transaction_id,
            use_number=use.number,
            multiples=pending.multiples,
            tier=pending.tier,
            program_id=use.program_id,
            points_due=max(pending.points_due, paid),
            points_awarded=paid,
            discount_cents=pending.discount_cents,
        )
    )
    if paid > 0:
        evaluation.awards.append(
            Award(
                granted.offer_id,
                use.program_id,
                paid,
                use.completed_event_id,
                pending.cause_event_id,
                use.at,
                use.transaction_id,
                source=Source(pending.source) if pending.source else None,
                store_id=pending.store_id,
                till_id=pending.till_id,
                transaction_number=pending.transaction_number,
            )
        )
        standing.completed.append(use)
    return evaluation


def on_denied(state: MemberOffers, denied: OfferUseDenied) -> Evaluation:
    """Drop the denied use: it and its points no longer count, and the offer is closed unless
    only reservations held it."""
    standing, pending = _take(state, denied.offer_id, denied.request_event_id)
    if standing is not None and pending is not None:
        standing.uses -= 1
        standing.points_awarded -= pending.record.points_awarded
        # Held by tills' reservations is not spent: they may lapse or be released (ADR 30);
        # a refused code leaves the offer open to another code (ADR 37).
        standing.closed = standing.closed or denied.reason in _SPENT
    return Evaluation()


_SPENT = frozenset({OfferUseDenial.USES_SPENT, OfferUseDenial.BUDGET_SPENT})


def _take(
    state: MemberOffers, offer_id: str, request_event_id: str
) -> tuple[OfferProgress | None, PendingUse | None]:
    """The member's standing on the offer and the pending use answered, taken out of it."""
    standing = state.offers.get(offer_id)
    if standing is None:
        return None, None
    for n, pending in enumerate(standing.pending):
        if pending.request_event_id == request_event_id:
            return standing, standing.pending.pop(n)
    return standing, None
