"""A return re-evaluates the original purchase without the returned lines (DESIGN.md §5.14):
what each offer's progress and awards become, and the points to take back.

Per offer the purchase counted towards:
- its value per behaviour drops by what came back of the lines the behaviour counted (a visit
  stops counting when its eligible lines are all back, or its spend falls below the least);
- if the use it counted towards is still in progress, that progress drops (OfferProgressed);
- if that use completed and paid points, the use is re-priced on its reduced progress (and, for
  the purchase that paid a multiplier, on the covered lines' base without the returned
  amounts): a use that no longer meets its behaviours is reversed whole, one that pays less is
  reversed by the difference. A reversal never exceeds what the use awarded, so points never
  go negative through an offer. The use stays counted (decided: a use limit is not given back).

Never evaluates an offer anew: a return cannot complete a use, only undo one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal

from processors.contract.config import OfferPublished, ProgramConfigured
from processors.contract.offer_definition import BehaviourKind, OfferRewardKind
from processors.contract.transactions import TransactionReturned
from processors.rules.ledger import policy
from processors.rules.offers.catalogue import Catalogue
from processors.rules.offers.plans import AwardReversal, Cause, Evaluation
from processors.rules.offers.progress import (
    is_accumulated,
    is_met,
    is_visit,
    progressed,
    sums,
)
from processors.rules.offers.rewards import covered_base, payout
from processors.rules.offers.state import (
    MemberOffers,
    OfferProgress,
    PurchaseContribution,
    PurchaseRecord,
    UseRecord,
)

_MULTIPLIERS = frozenset({OfferRewardKind.BASE_MULTIPLIER, OfferRewardKind.TIER_MULTIPLIER})


def on_return(
    state: MemberOffers,
    returned: TransactionReturned,
    catalogue: Catalogue,
    programs: Mapping[str, ProgramConfigured],
) -> Evaluation:
    """Take back what the returned lines no longer earn; idempotent per return id."""
    evaluation = Evaluation()
    record = state.purchases.get(returned.transaction_id)
    if record is None or returned.return_id in record.return_ids:
        return evaluation
    record.return_ids.append(returned.return_id)
    back_cents: dict[str, int] = {}
    back_quantity: dict[str, Decimal] = {}
    for item in returned.lines:
        facts = record.lines.get(item.line_id)
        if facts is None:
            continue
        cents = min(item.amount_cents, facts.kept_cents)
        quantity = min(item.quantity, facts.kept_quantity)
        facts.returned_cents += cents
        facts.returned_quantity += quantity
        back_cents[item.line_id] = back_cents.get(item.line_id, 0) + cents
        back_quantity[item.line_id] = back_quantity.get(item.line_id, Decimal(0)) + quantity
    cause = Cause(returned.event_id, returned.occurred_at, returned.transaction_id)
    for offer_id in sorted(record.offers):
        offer = catalogue.definition(offer_id)
        standing = state.offers.get(offer_id)
        program = programs.get(offer.program_id) if offer is not None else None
        if offer is None or standing is None or program is None:
            continue
        contribution = record.offers[offer_id]
        deltas = _reduce(offer, record, contribution, back_cents, back_quantity)
        if not any(deltas):
            continue
        use = standing.use_record(contribution.use)
        if contribution.use > standing.uses:
            _reduce_progress(state, offer, standing, deltas, cause, evaluation)
        elif use is not None:
            counted = _counted_in_use(offer, use, record, returned.transaction_id, deltas)
            use.progress = [p - d for p, d in zip(use.progress, counted, strict=True)]
            if use.transaction_id == returned.transaction_id and offer.reward.kind in _MULTIPLIERS:
                use.base = _base(program, record, contribution)
            _reprice(offer, standing, use, evaluation)
    return evaluation


def _reduce(
    offer: OfferPublished,
    record: PurchaseRecord,
    contribution: PurchaseContribution,
    back_cents: Mapping[str, int],
    back_quantity: Mapping[str, Decimal],
) -> list[Decimal]:
    """Lower the purchase's value per behaviour by what came back; returns the drops."""
    deltas = []
    for i, behaviour in enumerate(offer.behaviours):
        before = contribution.values[i]
        ids = contribution.lines[i] if i < len(contribution.lines) else []
        after = before
        if behaviour.kind is BehaviourKind.SPEND:
            after = before - sum(back_cents.get(line_id, 0) for line_id in ids)
        elif behaviour.kind is BehaviourKind.QUANTITY:
            after = before - sum((back_quantity.get(x, Decimal(0)) for x in ids), Decimal(0))
        elif behaviour.kind is BehaviourKind.VISITS and before > 0:
            kept = [record.lines[x] for x in ids if x in record.lines]
            has_lines = any(facts.kept_quantity > 0 for facts in kept)
            spend = sum(facts.kept_cents for facts in kept)
            after = Decimal(is_visit(behaviour, has_lines, spend))
        after = max(after, Decimal(0))
        contribution.values[i] = after
        deltas.append(before - after)
    return deltas


def _reduce_progress(
    state: MemberOffers,
    offer: OfferPublished,
    standing: OfferProgress,
    deltas: list[Decimal],
    cause: Cause,
    evaluation: Evaluation,
) -> None:
    """The purchase counted towards the use in progress: take its drop out of that progress."""
    changed = False
    for i, delta in enumerate(deltas):
        for contribution in standing.contributions[i]:
            if delta > 0 and contribution.cause == cause.transaction_id:
                taken = min(delta, contribution.value)
                contribution.value -= taken
                delta -= taken
                changed = changed or taken > 0
        standing.contributions[i] = [c for c in standing.contributions[i] if c.value > 0]
    if changed:
        now = sums(offer, standing, [Decimal(0)] * len(offer.behaviours), cause.at)
        evaluation.events.append(progressed(state, offer, standing, now, cause))


def _counted_in_use(
    offer: OfferPublished,
    use: UseRecord,
    record: PurchaseRecord,
    transaction_id: str,
    deltas: list[Decimal],
) -> list[Decimal]:
    """The part of each drop that the completed use had counted: a single-transaction behaviour
    counted only the purchase that completed it; an accumulated one, a purchase still inside
    its rolling window when the use completed."""
    counted = []
    for behaviour, delta in zip(offer.behaviours, deltas, strict=True):
        if is_accumulated(behaviour):
            window = behaviour.window_days
            inside = window is None or record.at >= use.at - timedelta(days=window)
            counted.append(delta if inside else Decimal(0))
        else:
            counted.append(delta if use.transaction_id == transaction_id else Decimal(0))
    return counted


def _base(
    program: ProgramConfigured, record: PurchaseRecord, contribution: PurchaseContribution
) -> Decimal:
    excluded = policy.excluded_skus(program, record.province, record.lines.values())
    kept = {x: facts.kept_cents for x, facts in record.lines.items() if facts.sku not in excluded}
    return covered_base(
        program,
        sum(kept.get(line_id, 0) for line_id in contribution.covered),
        sum(kept.values()),
    )


def _reprice(
    offer: OfferPublished, standing: OfferProgress, use: UseRecord, evaluation: Evaluation
) -> None:
    due = (
        payout(offer, use.progress, use.base, use.tier_id) if is_met(offer, use.progress) else None
    )
    now_due = due.points_due if due is not None else 0
    cap = offer.usage.points_per_transaction_max
    still = min(use.points_awarded, now_due if cap is None else min(now_due, cap))
    taken = use.points_awarded - still
    if taken <= 0:
        return
    use.points_awarded = still
    standing.points_awarded -= taken
    if any(pending.record is use for pending in standing.pending):
        return  # not paid yet: the grant pays at most what is left (ADR 14)
    evaluation.reversals.append(
        AwardReversal(offer.offer_id, use.program_id, taken, use.completed_event_id, use.at)
    )
