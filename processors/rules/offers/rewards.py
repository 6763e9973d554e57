"""What one use of an offer pays (DESIGN.md §5.2, 5.4, 5.5, 5.7, 5.19, 5.20): flat points, a
base, tier or fractional multiplier on the covered lines' base, Minimum vs For Every, reward
tiers, and the caps that clip.

Never decides whether an offer qualifies or which offer of a group wins (see `evaluate`,
`stacking`), and never prices a discount (see `discounts`): a discount reward comes back as the
terms to apply and how many multiples.

Decisions (docs/adr/0010-offer-engine.md, "Decisions taken while building"):
- A multiplier's base is the base earn of the lines it covers in the transaction that pays it,
  after the programme's per-transaction base cap shared pro-rata to the covered lines' share of
  the eligible spend; the bonus (k − 1) × base is rounded half-up once, per award.
- A member whose tier a TIER_MULTIPLIER does not list, like a use whose covered base is zero,
  is due nothing: such a use does not happen (it pays nothing and consumes no use).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from processors.contract.config import OfferPublished, ProgramConfigured
from processors.contract.offer_definition import (
    THRESHOLD_FIELD,
    DiscountTerms,
    OfferRewardKind,
    PayoutMode,
)
from processors.rules.arithmetic import round_half_up
from processors.rules.offers.state import OfferProgress


@dataclass(frozen=True)
class Payout:
    """What a use pays before caps: points due, the multiples and reward tier it pays, and the
    discount to apply (None for points rewards)."""

    points_due: int = 0
    multiples: int = 1
    tier: int | None = None
    discount: DiscountTerms | None = None
    reward_id: str | None = None  # a catalogue reward granted (REWARD offers)

    def __init__(
        self,
        points_due: int = 0,
        multiples: int = 1,
        tier: int | None = None,
        discount: DiscountTerms | None = None,
        reward_id: str | None = None,
    ) -> None:
        # Its own __init__, which mypyc compiles (ADR 41, addendum): faster than the dataclass's.
        object.__setattr__(self, "points_due", points_due)
        object.__setattr__(self, "multiples", multiples)
        object.__setattr__(self, "tier", tier)
        object.__setattr__(self, "discount", discount)
        object.__setattr__(self, "reward_id", reward_id)

    @property
    def pays(self) -> bool:
        """False when the use would give nothing (it then does not happen)."""
        return self.points_due > 0 or self.discount is not None or self.reward_id is not None


def covered_base(program: ProgramConfigured, covered_cents: int, eligible_cents: int) -> Decimal:
    """The base points of the covered lines, unrounded: their spend at the programme's rate, or,
    when the per-transaction base cap binds, the covered share of the cap (DESIGN.md §5.20)."""
    if covered_cents <= 0 or eligible_cents <= 0:
        return Decimal(0)
    rate = program.points_per_currency_unit
    cap = program.base_points_per_transaction_max
    if cap is not None and round_half_up(Decimal(eligible_cents) * rate / 100) > cap:
        return Decimal(cap) * covered_cents / eligible_cents
    return Decimal(covered_cents) * rate / 100


def measured_behaviour(offer: OfferPublished) -> int | None:
    """The index of the one measurable behaviour For Every divides and reward tiers climb."""
    indexes = [i for i, b in enumerate(offer.behaviours) if b.kind in THRESHOLD_FIELD]
    return indexes[0] if len(indexes) == 1 else None


def payout(
    offer: OfferPublished, progress: Sequence[Decimal], base: Decimal, tier_id: str | None
) -> Payout:
    """What one use pays, given each behaviour's progress in the use, the covered lines' base
    and the member's programme tier. Assumes the behaviours are met."""
    reward = offer.reward
    points, multiplier, discount = reward.points, reward.multiplier, reward.discount
    multiples, tier = 1, None
    measured = measured_behaviour(offer)
    if reward.tiers:
        if measured is None:
            return Payout()
        reached = [n for n, t in enumerate(reward.tiers, 1) if t.threshold <= progress[measured]]
        if not reached:
            return Payout()
        tier = reached[-1]
        chosen = reward.tiers[tier - 1]
        points, multiplier, discount = chosen.points, chosen.multiplier, chosen.discount
    elif reward.payout is PayoutMode.FOR_EVERY:
        threshold = offer.behaviours[measured].threshold if measured is not None else None
        if threshold is None:
            return Payout()
        multiples = int(progress[measured] // threshold) if measured is not None else 0
        if multiples < 1:
            return Payout()
    elif reward.payout is not PayoutMode.MINIMUM:
        return Payout()  # a payout mode added later never pays here
    match reward.kind:
        case OfferRewardKind.FLAT_POINTS:
            return Payout((points or 0) * multiples, multiples, tier)
        case OfferRewardKind.BASE_MULTIPLIER:
            return Payout(bonus(multiplier, base), multiples, tier)
        case OfferRewardKind.TIER_MULTIPLIER:
            by_tier = {t.tier_id: t.multiplier for t in reward.tier_multipliers}
            k = by_tier.get(tier_id) if tier_id is not None else None
            return Payout(bonus(k, base), multiples, tier)
        case OfferRewardKind.DISCOUNT if discount is not None:
            return Payout(0, multiples, tier, discount)
        case OfferRewardKind.REWARD if reward.reward_id is not None:
            return Payout(0, multiples, tier, reward_id=reward.reward_id)
    return Payout()


def bonus(multiplier: Decimal | None, base: Decimal) -> int:
    """The bonus of a k× multiplier: (k − 1) × base, rounded half-up once (112.5 → 113)."""
    if multiplier is None or base <= 0:
        return 0
    return max(round_half_up((multiplier - 1) * base), 0)


def clip(offer: OfferPublished, due: int, awarded: int) -> int:
    """The points a use awards: `due` clipped by the per-transaction cap, then by what remains
    of the per-member cap after the `awarded` points of earlier uses (800 due, 300 left → 300;
    then nothing)."""
    usage = offer.usage
    points = due
    if usage.points_per_transaction_max is not None:
        points = min(points, usage.points_per_transaction_max)
    if usage.points_per_member_max is not None:
        points = min(points, usage.points_per_member_max - awarded)
    return max(points, 0)


def is_used_up(offer: OfferPublished, standing: OfferProgress, held: int = 0) -> bool:
    """True when the member may not use the offer again: the per-member use limit is reached
    (counting `held` uses tills' reservations hold for other baskets, `held_uses.elsewhere`), or
    the per-member points cap is spent, or the offer's agent denied a use (its total uses or
    budget are spent, ADR 14). Such an offer neither progresses nor pays."""
    usage = offer.usage
    if standing.closed:
        return True
    uses = standing.uses + held
    if usage.uses_per_member_max is not None and uses >= usage.uses_per_member_max:
        return True
    return (
        usage.points_per_member_max is not None
        and standing.points_awarded >= usage.points_per_member_max
    )
