"""What a purchase, an activity, a points redemption or a return means for one member's offers
(docs/adr/0010-offer-engine.md): the offer events to emit, the points to award or take back,
and the discounts. The single entry point of the offer rules.

`on_transaction`, `on_activity`, `on_redemption` and `on_return` take ownership of the member's
state and change it in place, idempotently per transaction, event or return id;
`evaluate_cart` works on a copy. Every output's id derives from its cause, the offer and the
use number, and its `occurred_at` is the cause's, so a replay emits the same events.

Order of a purchase:
1. Candidates from the catalogue's indexes; kept when the member may count towards them
   (`eligibility`: enrolled, targeted (`targeting`), activated (automatic, coupon in the
   cart, loaded, or unlocked by a valid promo code: ADR 37), store). Control members count,
   pay nothing and stack with nothing (ADR 13).
2. Discount offers are judged on the lines as priced before this engine's discounts (at the
   till: `amount_cents + discount_cents`, the till already took them); points offers on the
   net lines (at the till: `amount_cents`; for a cart: net of the discounts found in step 2).
3. Each offer's progress this purchase, whether its behaviours are met, what the use pays.
4. Unstackable groups keep their most valuable offer (`stacking`); the others consume no use.
5. Completions (one use each, progress restarts), progress, and what the purchase contributed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

from processors.contract.activities import ActivityRecorded
from processors.contract.base import Event
from processors.contract.common import Source
from processors.contract.config import OfferPublished, ProgramConfigured
from processors.contract.enrolments import MemberEnrolled, MemberProfile, MemberProfileUpdated
from processors.contract.internal import OfferUseGranted, OfferUseRequested, PromoCodeUseRequested
from processors.contract.offer_definition import ITEM_DISCOUNTS, BehaviourKind, OfferRewardKind
from processors.contract.offers import OfferCompleted, OfferProgressed
from processors.contract.transactions import (
    TransactionCompleted,
    TransactionLine,
    TransactionReturned,
)
from processors.rules.arithmetic import derived_id
from processors.rules.ledger import policy
from processors.rules.offers import eligibility, held_uses, limits, progress, retention, returns
from processors.rules.offers.basket import Basket
from processors.rules.offers.catalogue import TRANSACTION_BEHAVIOURS, Catalogue
from processors.rules.offers.discounts import (
    DiscountOffer,
    LineDiscount,
    PricedLine,
    apply_discounts,
    discount_alone,
    spread_apart,
)
from processors.rules.offers.plans import Award, AwardReversal, Cause, Evaluation, Plan
from processors.rules.offers.products import Selector, globally_excluded
from processors.rules.offers.rewards import Payout, clip, covered_base, payout
from processors.rules.offers.stacking import Contender, value_cents, winners
from processors.rules.offers.state import (
    TIER_ATTRIBUTE,
    LineFacts,
    MemberOffers,
    PurchaseRecord,
)
from processors.rules.selection import hierarchy_of

Programs = Mapping[str, ProgramConfigured]
Unlocks = Mapping[str, PromoCodeUseRequested]
"""Offer id → the use request of the valid promo code that unlocks it on a purchase (ADR 37)."""

__all__ = [
    "AnonymousPurchase",
    "Award",
    "AwardReversal",
    "CartEvaluation",
    "Evaluation",
    "enrol",
    "evaluate_cart",
    "on_activity",
    "on_anonymous_purchase",
    "on_redemption",
    "on_return",
    "on_transaction",
    "update_profile",
]


@dataclass
class CartEvaluation:
    """What a cart would get at checkout: its discounts, the offer awards and base points per
    programme it would earn, and the offer events completing it would emit."""

    discounts: list[LineDiscount] = field(default_factory=list)
    awards: list[Award] = field(default_factory=list)
    base_points: dict[str, int] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    waiting: list[OfferUseRequested] = field(default_factory=list)
    """Uses the offer's agent would decide (ADR 14, ADR 30): shown in `events` and `awards`
    as if granted; a till reserves the discount ones."""
    code_uses: list[PromoCodeUseRequested] = field(default_factory=list)
    """Uses of offers promo codes unlock, which the promotion's agent would decide (ADR 37):
    shown as if granted; a till reserves their codes."""


# --- member facts -----------------------------------------------------------------------


def enrol(state: MemberOffers | None, enrolled: MemberEnrolled) -> MemberOffers:
    """The member joined programmes of a market; a profile already known (updated since) is
    kept, else the enrolment's is taken."""
    if state is None:
        state = MemberOffers(member_id=enrolled.member_id)
    if enrolled.market not in state.markets:
        state.markets.append(enrolled.market)
    state.programs += [p for p in enrolled.program_ids if p not in state.programs]
    if state.profile is None:
        _take_profile(state, enrolled.profile)
    return state


def update_profile(
    state: MemberOffers | None, updated: MemberProfileUpdated
) -> MemberOffers | None:
    """The member's profile (and with it their tier) is now `updated.profile`. A profile that
    overtakes the enrolment is kept for it."""
    if state is None:
        state = MemberOffers(member_id=updated.member_id)
    _take_profile(state, updated.profile)
    return state


def _take_profile(state: MemberOffers, profile: MemberProfile) -> None:
    state.profile = profile
    state.tier = profile.attributes.get(TIER_ATTRIBUTE)


# --- purchases ----------------------------------------------------------------------------


def on_transaction(
    state: MemberOffers,
    tx: TransactionCompleted,
    catalogue: Catalogue,
    programs: Programs,
    ends: retention.EndOf,
    unlocks: Unlocks | None = None,
) -> Evaluation:
    """Evaluate a completed purchase; a transaction already seen changes nothing. Offers that
    ended before the returns window are forgotten first (`retention`, by `ends`). A use of an
    offer in `unlocks` waits for its code's count (ADR 37)."""
    if tx.transaction_id in state.purchases or not state.see(tx.occurred_at):
        return Evaluation()
    retention.forget_ended(state, ends)
    evaluation, _ = _purchase(
        state, tx, catalogue, programs, at_till=True, anonymous=False, unlocks=unlocks or {}
    )
    return evaluation


@dataclass(frozen=True)
class AnonymousPurchase:
    """What an anonymous customer's completed purchase makes of the offers."""

    uses: list[PromoCodeUseRequested]
    """The code uses it makes: the offers its codes unlock that complete on it."""
    discount_cents: int
    """What the offers took off it at the till (asked for only: 0 otherwise)."""


def on_anonymous_purchase(
    tx: TransactionCompleted,
    catalogue: Catalogue,
    programs: Programs,
    unlocks: Unlocks,
    priced: bool = False,
) -> AnonymousPurchase:
    """The code uses an anonymous customer's completed purchase makes: the offers its codes
    unlock that complete on it, as the till's discounts priced them (ADR 37); and, when
    `priced`, the cents the offers took off it at the till, as the cart evaluation told it
    (mass discount offers and those its codes unlock): what its codes' discounts come after
    (`checkout.after_offers`). One evaluation for both. Nothing else of an anonymous purchase
    is kept or emitted: nobody's offers change."""
    if not unlocks and not priced:
        return AnonymousPurchase([], 0)
    scratch = MemberOffers(member_id=tx.transaction_id)
    evaluation, _ = _purchase(
        scratch, tx, catalogue, programs, at_till=True, anonymous=True, unlocks=unlocks
    )
    events = evaluation.events
    return AnonymousPurchase(
        uses=[e for e in events if isinstance(e, PromoCodeUseRequested)],
        discount_cents=sum(e.discount_cents for e in events if isinstance(e, OfferCompleted)),
    )


def evaluate_cart(
    state: MemberOffers | None,
    cart: TransactionCompleted,
    catalogue: Catalogue,
    programs: Programs,
    unlocks: Unlocks | None = None,
    taken: Sequence[DiscountOffer] = (),
) -> CartEvaluation:
    """What the cart would get, without changing `state`. Anonymous (`state` None): only
    discount offers judged on this cart alone and without per-member limits apply, and no
    points are earned (there is no account to credit). The offers in `unlocks` are activated
    by the cart's promo codes (ADR 37).

    `taken`: the discounts the till will take beside the offers' (the cart discount codes and
    the rewards that apply), each priced alone on the cart's lines as the till is told: the
    purchase it sends is net of them, so the points offers and the base earn are judged net
    of them too (docs/adr/0011-cart-evaluation.md). The offers' discounts are not: they are
    judged on the lines before any discount, as at the till."""
    anonymous = state is None
    work = (
        state.model_copy(deep=True)
        if state is not None
        else MemberOffers(member_id=cart.member_id or cart.transaction_id)
    )
    work.purchases.pop(cart.transaction_id, None)
    evaluation, net = _purchase(
        work, cart, catalogue, programs, at_till=False, anonymous=anonymous,
        unlocks=unlocks or {}, beside=taken,
    )  # fmt: skip
    waiting, code_uses = _as_granted(work, evaluation)
    base: dict[str, int] = {}
    for program_id in sorted(work.programs if not anonymous else []):
        program = programs.get(program_id)
        if program is not None and program.market == cart.market:
            excluded = policy.excluded_skus(program, cart.store.province, cart.lines)
            spend = sum(line.amount_cents for line in net if line.sku not in excluded)
            base[program_id] = policy.base_points(program, spend)
    return CartEvaluation(
        evaluation.discounts, evaluation.awards, base, evaluation.events, waiting, code_uses
    )


def _as_granted(
    state: MemberOffers, evaluation: Evaluation
) -> tuple[list[OfferUseRequested], list[PromoCodeUseRequested]]:
    """A cart's uses waiting for their offer's agent or their code's, shown as if granted (its
    events and awards, in place of the requests); the requests, of each kind."""
    waiting: list[OfferUseRequested] = []
    code_uses: list[PromoCodeUseRequested] = []
    events: list[Event] = []
    for event in evaluation.events:
        if isinstance(event, OfferUseRequested):
            waiting.append(event)
            offer_id, use, points = event.offer_id, event.use_number, event.points_requested
        elif isinstance(event, PromoCodeUseRequested) and event.offer_use is not None:
            code_uses.append(event)
            asked = event.offer_use
            offer_id, use, points = asked.offer_id, asked.use_number, asked.points_requested
        else:
            events.append(event)
            continue
        granted = limits.on_granted(
            state,
            OfferUseGranted(
                event_id=derived_id("offer-use-granted", event.event_id),
                occurred_at=event.occurred_at, member_id=state.member_id, offer_id=offer_id,
                use_number=use, request_event_id=event.event_id, points_requested=points,
                points_granted=points,
            ),
        )  # fmt: skip
        events += granted.events
        evaluation.awards += granted.awards
    evaluation.events = events
    return waiting, code_uses


def _purchase(
    state: MemberOffers,
    tx: TransactionCompleted,
    catalogue: Catalogue,
    programs: Programs,
    *,
    at_till: bool,
    anonymous: bool,
    unlocks: Unlocks,
    beside: Sequence[DiscountOffer] = (),
) -> tuple[Evaluation, list[PricedLine]]:
    """`beside` (a cart only): the discounts the till takes beside the offers' (codes and
    rewards, each priced alone), spread on what the offers' leave (`spread_apart`)."""
    cause = Cause(
        tx.event_id,
        tx.occurred_at,
        tx.transaction_id,
        tx.source,
        tx.store.store_id,
        tx.till_id,
        tx.transaction_number,
        unlocks,
    )
    priced = [PricedLine.of(line, gross=at_till) for line in tx.lines]
    gross = Basket(priced)
    honoured = _honoured(None if anonymous else state, tx, unlocks)
    live = catalogue.for_transaction(tx.market, tx.occurred_at, tx.lines, within_reach=True)
    candidates = [
        (offer, program)
        for offer in live + _held_but_retired(catalogue, honoured, live)
        if _within_reach(offer, catalogue, gross)
        # A preview leaves out a closed offer; a purchase is judged on it by its agent.
        and (at_till or catalogue.is_offered(offer.offer_id, tx.occurred_at))
        and (
            program := eligibility.program_for(
                offer, state, programs, tx, anonymous, unlocked=unlocks.keys()
            )
        )
    ]
    held = set() if anonymous else _held_out([o for o, _ in candidates], state, tx.occurred_at)
    gives_discount = [c for c in candidates if c[0].reward.kind is OfferRewardKind.DISCOUNT]
    plans = [
        plan
        for offer, program in gives_discount
        if (plan := _plan_purchase(state, offer, program, gross, tx, catalogue, honoured))
    ]
    for plan in plans:
        plan.discount_cents = sum(discount_alone(priced, d) for d in _discount_offers([plan]))
    would = {plan.offer.offer_id for plan in plans if plan.discount_cents > 0}
    first = _stack(_tested(plans, held), programs)
    taken = apply_discounts(priced, _discount_offers(first))
    if at_till:
        net = [PricedLine.of(line) for line in tx.lines]
    else:
        off = {line.line_id: 0 for line in priced}
        for discount in taken:
            off[discount.line_id] += discount.cents
        others = spread_apart(priced, beside, off) if beside else {}
        net = [_net(line, off[line.line_id], others.get(line.line_id, 0)) for line in priced]
    paid = gross.repriced(net)
    plans += [
        plan
        for offer, program in candidates
        if offer.reward.kind is not OfferRewardKind.DISCOUNT
        and (plan := _plan_purchase(state, offer, program, paid, tx, catalogue, honoured))
    ]
    applying = _stack(_tested(plans, held), programs)
    evaluation = Evaluation()
    # Most purchases: the points plans change no discount, and the first stacking stands.
    discounting = [p for p in applying if p.payout.discount is not None]
    same = _same_plans(discounting, [p for p in first if p.payout.discount is not None])
    evaluation.discounts = taken if same else apply_discounts(priced, _discount_offers(applying))
    off_by_offer: dict[str, int] = {}
    for discount in evaluation.discounts:
        off_by_offer[discount.offer_id] = off_by_offer.get(discount.offer_id, 0) + discount.cents
    record = PurchaseRecord(at=tx.occurred_at, province=tx.store.province)
    winners = {id(plan) for plan in applying}
    for plan in sorted(plans, key=_order):
        plan.discount_cents = off_by_offer.get(plan.offer.offer_id, 0)
        applies = id(plan) in winners or _control_completes(plan, held, would)
        use = progress.commit(state, plan, applies, cause, evaluation)
        if use is not None and at_till:  # a cart's state is a copy, thrown away: no record
            record.offers[plan.offer.offer_id] = plan.contribution(use)
    evaluation.events = _flag_control(evaluation.events, held)
    if record.offers:
        record.lines = {
            line.line_id: LineFacts(
                sku=line.sku,
                amount_cents=line.amount_cents,
                quantity=line.quantity,
                **hierarchy_of(line),
            )
            for line in tx.lines
        }
    state.purchases[tx.transaction_id] = record
    return evaluation, net


def _same_plans(these: Sequence[Plan], those: Sequence[Plan]) -> bool:
    """Whether both are the very same plans, in the same order."""
    return len(these) == len(those) and all(a is b for a, b in zip(these, those, strict=True))


def _net(line: PricedLine, offers_cents: int, beside_cents: int) -> PricedLine:
    """`line` less the offers' discounts, then less the others' (never below nothing)."""
    if not offers_cents and not beside_cents:
        return line
    left = line.amount_cents - offers_cents
    return replace(line, amount_cents=left - min(beside_cents, max(left, 0)))


def _within_reach(offer: OfferPublished, catalogue: Catalogue, gross: Basket) -> bool:
    """False when the purchase alone decides the offer (`Catalogue.reach`) and even every
    line its behaviours select, at full price, cannot meet them: its plan would not be met,
    would pay nothing and keep nothing (`_plan_purchase` drops it), so it is not judged."""
    reach = catalogue.reach(offer.offer_id)
    if reach is None:
        return True
    met = [
        needed is not None and gross.most(kind, selector) >= needed
        for selector, kind, needed in reach.needs
    ]
    return progress.combined(reach.operator, met)


def _plan_purchase(
    state: MemberOffers,
    offer: OfferPublished,
    program: ProgramConfigured,
    basket: Basket,
    tx: TransactionCompleted,
    catalogue: Catalogue,
    honoured: set[str],
) -> Plan | None:
    selectors = catalogue.selectors(offer.offer_id)
    excluded = globally_excluded(offer, program, tx.store.province, tx.lines)
    counted = [
        basket.eligible(selector, excluded) if b.kind in TRANSACTION_BEHAVIOURS else []
        for b, selector in zip(offer.behaviours, selectors, strict=True)
    ]
    values = [
        progress.purchase_value(b, ls) for b, ls in zip(offer.behaviours, counted, strict=True)
    ]

    def base() -> Decimal:
        base_excluded = policy.excluded_skus(program, tx.store.province, tx.lines)
        return covered_base(
            program,
            basket.spend_cents(base_excluded, selectors, excluded),
            basket.spend_cents(base_excluded),
        )

    held_here = offer.offer_id in honoured
    plan = _plan(state, offer, program, values, base, tx.occurred_at, tx.transaction_id, held_here)
    if plan is None or not (plan.payout.pays or _accumulates(offer, values)):
        # Most candidates: a use that pays nothing and no progress to keep. Such a plan never
        # wins stacking, never completes (not even for control) and `commit` keeps nothing of
        # it, so it is not made.
        return None
    plan.lines = [[line.line_id for line in ls] for ls in counted]
    plan.covered = [line.line_id for line in basket.covered(selectors, excluded)]
    return plan


def _accumulates(offer: OfferPublished, values: Sequence[Decimal]) -> bool:
    """True when this cause adds progress that outlives it (what `progress.commit` keeps)."""
    return any(
        progress.is_accumulated(b) and v > 0 for b, v in zip(offer.behaviours, values, strict=True)
    )


def _plan(
    state: MemberOffers,
    offer: OfferPublished,
    program: ProgramConfigured,
    values: list[Decimal],
    base: Callable[[], Decimal],
    at: datetime,
    transaction_id: str | None = None,
    honoured: bool = False,
) -> Plan | None:
    """What this cause does for the offer, not yet applied; None when it does nothing. `base`
    (the covered lines' base points) is asked for only when the behaviours are met: only a
    use that completes reads it, and most candidates of a purchase do not. The uses tills'
    reservations hold for other baskets than `transaction_id` count as taken; a basket that
    holds one itself (`honoured`) is not refused for the member's uses (`held_uses`)."""
    if not honoured and held_uses.is_spent(state, offer, transaction_id, at):
        return None
    standing = state.offers.get(offer.offer_id)
    if not any(value > 0 for value in values):
        return None
    sums = progress.sums(offer, standing, values, at)
    if not progress.is_met(offer, sums):  # nothing due: no base to judge, nothing to clip
        return Plan(offer, program, values, sums, Payout(), 0, Decimal(0), state.tier)
    covered = base()
    due = payout(offer, sums, covered, state.tier)
    points = clip(offer, due.points_due, standing.points_awarded if standing else 0)
    return Plan(offer, program, values, sums, due, points, covered, state.tier)


def _honoured(state: MemberOffers | None, tx: TransactionCompleted, unlocks: Unlocks) -> set[str]:
    """The offers `unlocks` opens that this very basket holds a use of, for its code
    (`held_uses`)."""
    return {
        offer_id
        for offer_id, use in unlocks.items()
        if held_uses.honours(state, offer_id, tx.transaction_id, use.code)
    }


def _held_but_retired(
    catalogue: Catalogue, honoured: set[str], live: Sequence[OfferPublished]
) -> list[OfferPublished]:
    """The held offers no longer live (withdrawn, or ended since the till was told yes): the
    basket still gets them, on their last definition."""
    if not honoured:
        return []
    missing = honoured - {offer.offer_id for offer in live}
    return [o for i in sorted(missing) if (o := catalogue.definition(i)) is not None]


def _no_base() -> Decimal:
    """The base of a cause that is not a purchase: no lines, no base."""
    return Decimal(0)


def _discount_offers(plans: Sequence[Plan]) -> list[DiscountOffer]:
    offers = []
    for plan in sorted(plans, key=_order):
        terms = plan.payout.discount
        if terms is None:
            continue
        narrowed = terms.kind in ITEM_DISCOUNTS and not terms.names_its_items
        line_ids = frozenset(plan.covered) if narrowed else None
        offers.append(DiscountOffer(plan.offer.offer_id, terms, line_ids, plan.payout.multiples))
    return offers


def _stack(plans: Sequence[Plan], programs: Programs) -> list[Plan]:
    """The plans that complete a use and win their group (a discount taking nothing, like a use
    due nothing, does not complete; a catalogue reward always pays, valued at 0 here)."""
    paying = [
        p
        for p in plans
        if p.points > 0
        or (p.payout.discount and p.discount_cents > 0)
        or p.payout.reward_id is not None
    ]
    contenders = [
        Contender(
            p.offer.offer_id,
            p.offer.rank,
            p.offer.stacking_group,
            value_cents(p.points, p.discount_cents, programs.get(p.offer.program_id)),
        )
        for p in paying
    ]
    ids = winners(contenders)
    return [p for p in paying if p.offer.offer_id in ids]


def _order(plan: Plan) -> tuple[int, str]:
    return (plan.offer.rank, plan.offer.offer_id)


# --- control group (DESIGN.md §5.16, ADR 13) --------------------------------------------------


def _held_out(offers: Sequence[OfferPublished], state: MemberOffers, at: datetime) -> set[str]:
    """The offers (among those the member counts towards) holding the member out as control."""
    return {o.offer_id for o in offers if eligibility.held_out(o, state, at)}


def _tested(plans: Sequence[Plan], held: set[str]) -> list[Plan]:
    """The plans that may pay: control plans never take part in stacking (they pay nothing, so
    they never deprive the member of another offer)."""
    return [p for p in plans if p.offer.offer_id not in held]


def _control_completes(plan: Plan, held: set[str], would_discount: set[str]) -> bool:
    """A control member's use completes when it would have paid (points due, or a discount
    taking something off); it is recorded paying nothing."""
    if plan.offer.offer_id not in held:
        return False
    plan.points = 0
    return plan.payout.points_due > 0 or plan.offer.offer_id in would_discount


def _flag_control(events: list[Event], held: set[str]) -> list[Event]:
    """The control members' OfferProgressed and OfferCompleted say so."""
    if not held:
        return events
    return [
        e.model_copy(update={"in_control_group": True})
        if isinstance(e, OfferProgressed | OfferCompleted) and e.offer_id in held
        else e
        for e in events
    ]


# --- activities and redemptions -------------------------------------------------------------


def on_activity(
    state: MemberOffers, activity: ActivityRecorded, catalogue: Catalogue, programs: Programs
) -> Evaluation:
    """Count an activity towards the ACTIVITY behaviours it matches; idempotent per event."""
    if activity.event_id in state.causes or not state.see(activity.occurred_at):
        return Evaluation()
    plans = []
    for offer in catalogue.for_activity(state.markets, activity.occurred_at, activity):
        program = eligibility.program_for(
            offer, state, programs, None, anonymous=False, at=activity.occurred_at
        )
        if program is not None:
            values = [progress.activity_value(b, activity) for b in offer.behaviours]
            plans.append(_plan(state, offer, program, values, _no_base, activity.occurred_at))
    cause = Cause(activity.event_id, activity.occurred_at, None, activity.source)
    return _settle(state, [p for p in plans if p is not None], cause, programs)


def on_redemption(
    state: MemberOffers,
    member_id: str,
    program_id: str,
    points: int,
    cause_event_id: str,
    occurred_at: datetime,
    catalogue: Catalogue,
    programs: Programs,
    source: Source | None = None,
    lines: Sequence[TransactionLine] = (),
) -> Evaluation:
    """Count an accepted points redemption towards POINTS_REDEMPTION behaviours of the
    programme's offers; idempotent per cause. Called on the ledger's accepted outcome, since
    only the ledger knows whether the points were there. A behaviour on selected products
    (category redemption, seed 003) counts the points' share on the `lines` it selects."""
    assert member_id == state.member_id, "a redemption of another member"
    program = programs.get(program_id)
    if program is None or cause_event_id in state.causes or not state.see(occurred_at):
        return Evaluation()
    plans = []
    for offer in catalogue.for_redemption([program.market], occurred_at):
        if offer.program_id != program_id:
            continue
        if eligibility.program_for(offer, state, programs, None, False, occurred_at) is not None:
            selectors = catalogue.selectors(offer.offer_id)
            values = [
                _redeemed_on(points, lines, selector)
                if b.kind is BehaviourKind.POINTS_REDEMPTION
                else Decimal(0)
                for b, selector in zip(offer.behaviours, selectors, strict=True)
            ]
            plans.append(_plan(state, offer, program, values, _no_base, occurred_at))
    return _settle(
        state,
        [p for p in plans if p is not None],
        Cause(cause_event_id, occurred_at, None, source),
        programs,
    )


def _redeemed_on(
    points: int, lines: Sequence[TransactionLine], selector: Selector | None
) -> Decimal:
    """The points of a redemption a behaviour counts: all of them without a product
    selection; with one, their share on the lines it selects, in proportion to the lines'
    amounts, rounded down (none when the redemption names no lines)."""
    if selector is None:
        return Decimal(points)
    total = sum(max(line.amount_cents, 0) for line in lines)
    chosen = sum(max(line.amount_cents, 0) for line in lines if selector.selects(line))
    return Decimal(points * chosen // total) if total else Decimal(0)


def _settle(state: MemberOffers, plans: list[Plan], cause: Cause, programs: Programs) -> Evaluation:
    """Stack and apply plans made outside a purchase: discounts need a cart, so they wait."""
    evaluation = Evaluation()
    held = _held_out([p.offer for p in plans], state, cause.at)
    tested = _tested([p for p in plans if p.payout.discount is None], held)
    applying = _stack(tested, programs)
    for plan in sorted(plans, key=_order):
        applies = plan in applying or (
            plan.payout.discount is None and _control_completes(plan, held, set())
        )
        progress.commit(state, plan, applies, cause, evaluation)
    evaluation.events = _flag_control(evaluation.events, held)
    if plans:
        state.causes[cause.event_id] = cause.at
    return evaluation


# --- returns ------------------------------------------------------------------------------


def on_return(
    state: MemberOffers, returned: TransactionReturned, catalogue: Catalogue, programs: Programs
) -> Evaluation:
    """Re-evaluate the original purchase without the returned lines (DESIGN.md §5.14); see
    `returns`. Idempotent per return id."""
    return returns.on_return(state, returned, catalogue, programs)
