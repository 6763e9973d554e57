"""Progress towards an offer's behaviours and applying what a cause did (DESIGN.md §5.6, 5.19):
a cause's value per behaviour, the progress sums of the current use, whether the behaviours are
met, and committing a plan as a completed use or as progress, with its events and award.

Decisions (docs/adr/0010-offer-engine.md):
- One cause completes at most one use of an offer; after a use the progress of every behaviour
  starts again from zero: the excess over the threshold is not carried into the next use.
- OfferProgressed is emitted only when accumulated progress changed: a single-transaction
  behaviour keeps no progress between transactions.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from processors.contract.activities import ActivityKind, ActivityRecorded
from processors.contract.config import OfferPublished
from processors.contract.offer_definition import (
    Accumulation,
    Behaviour,
    BehaviourKind,
    BehaviourOperator,
)
from processors.contract.offers import (
    BehaviourProgress,
    OfferCompleted,
    OfferProgressed,
    ProgressMetric,
)
from processors.rules.arithmetic import derived_id
from processors.rules.offers import limits
from processors.rules.offers.discounts import PricedLine
from processors.rules.offers.plans import Award, Cause, Evaluation, Plan, use_record
from processors.rules.offers.state import Contribution, MemberOffers, OfferProgress

_METRICS = {
    BehaviourKind.SPEND: ProgressMetric.SPEND_CENTS,
    BehaviourKind.QUANTITY: ProgressMetric.QUANTITY,
    BehaviourKind.POINTS_REDEMPTION: ProgressMetric.POINTS_REDEEMED,
    BehaviourKind.VISITS: ProgressMetric.COUNT,
    BehaviourKind.ACTIVITY: ProgressMetric.COUNT,
}


def metric(behaviour: Behaviour) -> ProgressMetric:
    """What a behaviour's progress counts (OfferProgressed and ChallengeProgressed say it)."""
    return _METRICS.get(behaviour.kind, ProgressMetric.UNKNOWN)


def is_accumulated(behaviour: Behaviour) -> bool:
    """True when progress sums across causes (visits and activities always do)."""
    return behaviour.kind in (BehaviourKind.VISITS, BehaviourKind.ACTIVITY) or (
        behaviour.accumulation is Accumulation.ACCUMULATED
    )


def threshold(behaviour: Behaviour) -> Decimal | None:
    """The value that meets the behaviour (an activity: count_min, else once)."""
    if behaviour.kind is BehaviourKind.ACTIVITY:
        return Decimal(behaviour.count_min or 1)
    return behaviour.threshold


def purchase_value(behaviour: Behaviour, lines: Sequence[PricedLine]) -> Decimal:
    """What the behaviour's eligible lines of one purchase are worth towards it."""
    if behaviour.kind is BehaviourKind.SPEND:
        return Decimal(sum(line.amount_cents for line in lines))
    if behaviour.kind is BehaviourKind.QUANTITY:
        return sum((line.quantity for line in lines), Decimal(0))
    if behaviour.kind is BehaviourKind.VISITS:
        spend = sum(line.amount_cents for line in lines)
        return Decimal(is_visit(behaviour, bool(lines), spend))
    return Decimal(0)


def is_visit(behaviour: Behaviour, has_lines: bool, spend_cents: int) -> bool:
    """A purchase is a visit when it has an eligible line and, if set, the least spend."""
    least = behaviour.spend_min_cents
    return has_lines and (least is None or spend_cents >= least)


def activity_value(behaviour: Behaviour, activity: ActivityRecorded) -> Decimal:
    """1 when the behaviour counts this activity, else 0."""
    matches = (
        behaviour.kind is BehaviourKind.ACTIVITY
        and behaviour.activity_kind is activity.kind
        and (
            activity.kind is not ActivityKind.CUSTOM
            or behaviour.activity_custom_name == activity.custom_name
        )
    )
    return Decimal(1 if matches else 0)


def in_window(
    behaviour: Behaviour, contributions: Sequence[Contribution], at: datetime
) -> list[Contribution]:
    """The contributions still inside the behaviour's rolling window at `at` (all of them
    without one: the offer's own window bounds them)."""
    if behaviour.window_days is None:
        return list(contributions)
    start = at - timedelta(days=behaviour.window_days)
    return [c for c in contributions if c.at >= start]


def sums(
    offer: OfferPublished, standing: OfferProgress | None, values: Sequence[Decimal], at: datetime
) -> list[Decimal]:
    """Progress per behaviour in the current use once `values` are added."""
    out = []
    for i, behaviour in enumerate(offer.behaviours):
        total = values[i]
        if is_accumulated(behaviour) and standing is not None and i < len(standing.contributions):
            total += sum(
                (c.value for c in in_window(behaviour, standing.contributions[i], at)), Decimal(0)
            )
        out.append(total)
    return out


def is_met(offer: OfferPublished, progress: Sequence[Decimal]) -> bool:
    """True when the behaviours are met, combined by the offer's operator."""
    met = []
    for behaviour, value in zip(offer.behaviours, progress, strict=True):
        needed = threshold(behaviour)
        met.append(needed is not None and value >= needed)
    return combined(offer.behaviour_operator, met)


def combined(operator: BehaviourOperator, met: Sequence[bool]) -> bool:
    """Whether behaviours met as `met` (one flag each) meet the offer under `operator`."""
    if operator is BehaviourOperator.ALL:
        return all(met)
    if operator is BehaviourOperator.ANY:
        return any(met)
    return False


def commit(
    state: MemberOffers, plan: Plan, applies: bool, cause: Cause, evaluation: Evaluation
) -> int | None:
    """Apply a plan: a completed use when it `applies`, else progress. Returns the use the cause
    counted towards when a return may need it (it paid points, or added accumulated progress)."""
    offer = plan.offer
    accumulates = [
        is_accumulated(b) and v > 0 for b, v in zip(offer.behaviours, plan.values, strict=True)
    ]
    if not applies and not any(accumulates):
        return None  # nothing to keep: a single-transaction offer that did not complete
    standing = state.progress_of(offer.offer_id, len(offer.behaviours))
    if applies:
        use = _complete(state, standing, plan, cause, evaluation)
        return use if plan.points > 0 else None
    for i, behaviour in enumerate(offer.behaviours):
        if accumulates[i]:
            standing.contributions[i].append(
                Contribution(at=cause.at, value=plan.values[i], cause=cause.key)
            )
        standing.contributions[i] = in_window(behaviour, standing.contributions[i], cause.at)
    evaluation.events.append(progressed(state, offer, standing, plan.sums, cause))
    return standing.uses + 1


def progressed(
    state: MemberOffers,
    offer: OfferPublished,
    standing: OfferProgress,
    progress: Sequence[Decimal],
    cause: Cause,
) -> OfferProgressed:
    """The OfferProgressed event for the current use."""
    use = standing.uses + 1
    return OfferProgressed(
        event_id=derived_id("offer-progressed", cause.event_id, offer.offer_id, str(use)),
        occurred_at=cause.at,
        member_id=state.member_id,
        offer_id=offer.offer_id,
        in_control_group=False,
        cause_event_id=cause.event_id,
        transaction_id=cause.transaction_id,
        use_number=use,
        progress=[
            BehaviourProgress(
                behaviour_index=i,
                metric=metric(behaviour),
                progress=max(value, Decimal(0)),
                threshold=threshold(behaviour) or Decimal(0),
            )
            for i, (behaviour, value) in enumerate(zip(offer.behaviours, progress, strict=True))
        ],
    )


def _complete(
    state: MemberOffers, standing: OfferProgress, plan: Plan, cause: Cause, evaluation: Evaluation
) -> int:
    offer = plan.offer
    standing.uses += 1
    use = standing.uses
    standing.points_awarded += plan.points
    event_id = derived_id("offer-completed", cause.event_id, offer.offer_id, str(use))
    if limits.waits_for_offer(plan, cause):
        # Cross-member limits: the offer's agent decides; the use waits for its answer.
        evaluation.events.append(limits.request(state, standing, plan, cause, use, event_id))
        standing.contributions = [[] for _ in offer.behaviours]
        return use
    evaluation.events.append(
        OfferCompleted(
            event_id=event_id,
            occurred_at=cause.at,
            member_id=state.member_id,
            offer_id=offer.offer_id,
            in_control_group=False,
            cause_event_id=cause.event_id,
            transaction_id=cause.transaction_id,
            use_number=use,
            multiples=plan.payout.multiples,
            tier=plan.payout.tier,
            program_id=offer.program_id,
            points_due=plan.payout.points_due,
            points_awarded=plan.points,
            discount_cents=plan.discount_cents,
        )
    )
    if plan.points > 0:
        evaluation.awards.append(
            Award(
                offer.offer_id,
                offer.program_id,
                plan.points,
                event_id,
                cause.event_id,
                cause.at,
                cause.transaction_id,
            )
        )
        standing.completed.append(use_record(plan, cause, use, event_id))
    standing.contributions = [[] for _ in offer.behaviours]
    return use
