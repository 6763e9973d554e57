"""Readable builders for offer rule tests: offers, baskets, and a member who shops."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from processors.contract.activities import ActivityKind, ActivityRecorded
from processors.contract.common import Source, Store
from processors.contract.config import OfferPublished, ProgramConfigured
from processors.contract.enrolments import MemberProfile, MemberProfileUpdated
from processors.contract.offer_definition import (
    Accumulation,
    ActivationKind,
    Behaviour,
    BehaviourKind,
    BehaviourOperator,
    DiscountKind,
    DiscountTerms,
    LocalizedCopy,
    OfferActivation,
    OfferReward,
    OfferRewardKind,
    OfferRewardTier,
    OfferSchedule,
    OfferTargeting,
    OfferUsageControls,
    PayoutMode,
    ProductSelection,
    TargetingKind,
    TargetingTiming,
    TierMultiplier,
)
from processors.contract.offers import OfferCompleted, OfferProgressed
from processors.contract.transactions import (
    ReturnedLine,
    TransactionCompleted,
    TransactionLine,
    TransactionReturned,
)
from processors.rules.offers import retention
from processors.rules.offers.catalogue import Catalogue
from processors.rules.offers.evaluate import (
    CartEvaluation,
    Evaluation,
    enrol,
    evaluate_cart,
    on_activity,
    on_redemption,
    on_return,
    on_transaction,
    update_profile,
)
from processors.rules.offers.state import MemberOffers
from tests.rules.given import PROGRAM, T0, enrolled, program

STARTS = T0 - timedelta(days=1)
ENDS = T0 + timedelta(days=60)

# --- offers -------------------------------------------------------------------------------


def offer(
    offer_id: str = "OFFER_A",
    *behaviours: Behaviour,
    reward: OfferReward | None = None,
    operator: BehaviourOperator = BehaviourOperator.ALL,
    **changes: Any,
) -> OfferPublished:
    """A live MASS offer in CA, automatic: spend $10 in one transaction for 100 points."""
    fields: dict[str, Any] = {
        "event_id": f"pub-{offer_id}",
        "occurred_at": STARTS - timedelta(days=1),
        "offer_id": offer_id,
        "program_id": PROGRAM,
        "market": "CA",
        "localized_copy": [
            LocalizedCopy(locale="en", headline="Offer", short_description="An offer"),
            LocalizedCopy(locale="fr", headline="Offre", short_description="Une offre"),
        ],
        "rank": 5,
        "schedule": OfferSchedule(starts_at=STARTS, ends_at=ENDS, display_at=None),
        "targeting": OfferTargeting(kind=TargetingKind.MASS, timing=TargetingTiming.DYNAMIC),
        "activation": OfferActivation(kind=ActivationKind.AUTOMATIC),
        "behaviours": list(behaviours) or [spend(1000)],
        "behaviour_operator": operator,
        "reward": reward or flat(100),
        "usage": OfferUsageControls(),
    }
    return OfferPublished(**{**fields, **changes})


def usage(**limits: int) -> OfferUsageControls:
    return OfferUsageControls(**limits)


def coupon(code: str) -> OfferActivation:
    return OfferActivation(kind=ActivationKind.COUPON_CODE, coupon_code=code)


def skus(*values: str) -> ProductSelection:
    return ProductSelection(skus=list(values))


def spend(
    cents: int,
    *,
    accumulated: bool = False,
    window_days: int | None = None,
    products: ProductSelection | None = None,
) -> Behaviour:
    return Behaviour(
        kind=BehaviourKind.SPEND,
        spend_min_cents=cents,
        accumulation=Accumulation.ACCUMULATED if accumulated else Accumulation.SINGLE_TRANSACTION,
        window_days=window_days,
        products=products,
    )


def quantity(litres: str, products: ProductSelection, *, accumulated: bool = False) -> Behaviour:
    return Behaviour(
        kind=BehaviourKind.QUANTITY,
        quantity_min=Decimal(litres),
        accumulation=Accumulation.ACCUMULATED if accumulated else Accumulation.SINGLE_TRANSACTION,
        products=products,
    )


def visits(
    count: int,
    *,
    spend_min: int | None = None,
    window_days: int | None = None,
    products: ProductSelection | None = None,
) -> Behaviour:
    return Behaviour(
        kind=BehaviourKind.VISITS,
        count_min=count,
        spend_min_cents=spend_min,
        window_days=window_days,
        products=products,
    )


def did(kind: ActivityKind, count: int | None = None) -> Behaviour:
    return Behaviour(kind=BehaviourKind.ACTIVITY, activity_kind=kind, count_min=count)


def redeems(points: int, *, accumulated: bool = False) -> Behaviour:
    return Behaviour(
        kind=BehaviourKind.POINTS_REDEMPTION,
        points_min=points,
        accumulation=Accumulation.ACCUMULATED if accumulated else Accumulation.SINGLE_TRANSACTION,
    )


def flat(points: int, *, for_every: bool = False) -> OfferReward:
    payout = PayoutMode.FOR_EVERY if for_every else PayoutMode.MINIMUM
    return OfferReward(kind=OfferRewardKind.FLAT_POINTS, points=points, payout=payout)


def multiplier(k: str) -> OfferReward:
    return OfferReward(kind=OfferRewardKind.BASE_MULTIPLIER, multiplier=Decimal(k))


def tier_multiplier(**by_tier: str) -> OfferReward:
    return OfferReward(
        kind=OfferRewardKind.TIER_MULTIPLIER,
        tier_multipliers=[
            TierMultiplier(tier_id=t, multiplier=Decimal(k)) for t, k in by_tier.items()
        ],
    )


def flat_tiers(*tiers: tuple[int, int]) -> OfferReward:
    """Reward tiers on spend: (threshold cents, points)."""
    return OfferReward(
        kind=OfferRewardKind.FLAT_POINTS,
        tiers=[OfferRewardTier(threshold_cents=c, points=p) for c, p in tiers],
    )


def discount(kind: DiscountKind, *, for_every: bool = False, **terms: Any) -> OfferReward:
    payout = PayoutMode.FOR_EVERY if for_every else PayoutMode.MINIMUM
    return OfferReward(
        kind=OfferRewardKind.DISCOUNT, discount=DiscountTerms(kind=kind, **terms), payout=payout
    )


# --- baskets ------------------------------------------------------------------------------


def item(
    line_id: str,
    cents: int,
    sku: str = "SKU",
    *,
    quantity: str = "1",
    category: str | None = None,
    brand: str | None = None,
    discount_cents: int = 0,
) -> TransactionLine:
    return TransactionLine(
        line_id=line_id,
        sku=sku,
        category=category,
        brand=brand,
        quantity=Decimal(quantity),
        unit_price_cents=cents,
        amount_cents=cents,
        discount_cents=discount_cents,
    )


def purchase(
    tx: str,
    *lines: TransactionLine,
    cents: int = 0,
    at: datetime = T0,
    codes: Sequence[str] = (),
    store: Store | None = None,
    market: str = "CA",
    member: str | None = "m1",
) -> TransactionCompleted:
    return TransactionCompleted(
        event_id=f"tx-{tx}",
        occurred_at=at,
        transaction_id=tx,
        member_id=member,
        market=market,
        currency="CAD",
        source=Source.INSTORE,
        store=store or Store(store_id="S1", country="CA", province="ON"),
        lines=list(lines) or [item("1", cents)],
        promo_codes=list(codes),
    )


def fill_up(tx: str, litres: str, at: datetime = T0) -> TransactionCompleted:
    return purchase(tx, item("1", 5000, "FUEL", quantity=litres), at=at)


def give_back(
    tx: str, return_id: str, *lines: tuple[str, int], quantity: str = "1", at: datetime = T0
) -> TransactionReturned:
    return TransactionReturned(
        event_id=f"ret-{return_id}",
        occurred_at=at,
        return_id=return_id,
        transaction_id=tx,
        member_id="m1",
        market="CA",
        currency="CAD",
        source=Source.INSTORE,
        store=Store(store_id="S1", province="ON"),
        lines=[
            ReturnedLine(line_id=i, quantity=Decimal(quantity), amount_cents=c) for i, c in lines
        ],
    )


def act(kind: ActivityKind, n: int = 1, at: datetime = T0) -> ActivityRecorded:
    return ActivityRecorded(
        event_id=f"act-{kind.value}-{n}",
        occurred_at=at,
        member_id="m1",
        kind=kind,
        source=Source.APP,
    )


# --- a member who shops -------------------------------------------------------------------


class Member:
    """One member enrolled in CA_MAIN (1 point per dollar), with the offers given, who shops.
    Keeps every evaluation, so tests read totals and events."""

    def __init__(
        self,
        *offers: OfferPublished,
        programs: Iterable[ProgramConfigured] = (),
        tier: str | None = None,
    ) -> None:
        self.catalogue = Catalogue(offers)
        self.programs = {p.program_id: p for p in (list(programs) or [program()])}
        self.state: MemberOffers = enrol(None, enrolled("m1"))
        if tier is not None:
            profile = MemberProfile(attributes={"tier": tier})
            updated = MemberProfileUpdated(
                event_id="prof-1",
                occurred_at=T0,
                member_id="m1",
                source=Source.APP,
                profile=profile,
            )
            self.state = update_profile(self.state, updated) or self.state
        self.evaluations: list[Evaluation] = []

    def ends(self, offer_id: str) -> datetime | None:
        """An offer's end as the worker's configuration gives it (no withdrawals here)."""
        return retention.end_of(self.catalogue.definition(offer_id), None)

    def buys(self, *txs: TransactionCompleted) -> Evaluation:
        return self._keep(
            [on_transaction(self.state, tx, self.catalogue, self.programs, self.ends) for tx in txs]
        )

    def does(self, *activities: ActivityRecorded) -> Evaluation:
        return self._keep(
            [on_activity(self.state, a, self.catalogue, self.programs) for a in activities]
        )

    def redeems(self, points: int, cause: str = "red-1", at: datetime = T0) -> Evaluation:
        return self._keep(
            [
                on_redemption(
                    self.state, "m1", PROGRAM, points, cause, at, self.catalogue, self.programs
                )
            ]
        )

    def returns(self, *returned: TransactionReturned) -> Evaluation:
        return self._keep(
            [on_return(self.state, r, self.catalogue, self.programs) for r in returned]
        )

    def cart(self, cart: TransactionCompleted) -> CartEvaluation:
        return evaluate_cart(self.state, cart, self.catalogue, self.programs)

    def _keep(self, evaluations: list[Evaluation]) -> Evaluation:
        merged = Evaluation()
        for evaluation in evaluations:
            merged.events += evaluation.events
            merged.awards += evaluation.awards
            merged.reversals += evaluation.reversals
            merged.discounts += evaluation.discounts
        self.evaluations.append(merged)
        return merged

    @property
    def points(self) -> int:
        """Offer points credited, less those taken back."""
        credited = sum(a.points for e in self.evaluations for a in e.awards)
        return credited - sum(r.points for e in self.evaluations for r in e.reversals)

    def completed(self) -> list[OfferCompleted]:
        return [ev for e in self.evaluations for ev in e.events if isinstance(ev, OfferCompleted)]

    def progressed(self) -> list[OfferProgressed]:
        return [ev for e in self.evaluations for ev in e.events if isinstance(ev, OfferProgressed)]


def points_of(evaluation: Evaluation) -> int:
    return sum(a.points for a in evaluation.awards)
