"""How long a member's per-offer entries are kept (docs/adr/0013-targeting-and-activation.md):
the targeting decision, trigger fires, the load and the standing (progress, completed and
answered uses) of an offer are dropped once the offer ended (its `ends_at`, or its withdrawal
when earlier) more than the returns window (`policy.RETURNS_ACCEPTED_DAYS`) before the
member's newest business time: nothing can count towards it, and no return can reach what it
awarded any more. So a member's offer state stays bounded however many offers they met.

Kept whatever the dates: an offer the catalogue does not know (its definition may not have
been read yet), an evergreen offer still live (its end never comes), an offer with a use
waiting for its agent (docs/adr/0014-offer-level-caps.md: the answer must find it), and one a
return inside the window could still need (a use completed, or a purchase remembered, inside
the window). Pure: the ends come from the configuration, the times from the member's inputs;
never reads a clock.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

from processors.contract.config import OfferPublished
from processors.rules.ledger.policy import returns_horizon
from processors.rules.offers.state import MemberOffers

EndOf = Callable[[str], datetime | None]
"""An offer's end by id (None: unknown, so kept)."""


def end_of(offer: OfferPublished | None, withdrawn_at: datetime | None) -> datetime | None:
    """When nothing counts towards the offer any more: its end, or its withdrawal when
    earlier; None when the offer is unknown."""
    if offer is None:
        return None
    ends_at = offer.schedule.ends_at
    return min(ends_at, withdrawn_at) if withdrawn_at is not None else ends_at


def cutoff(state: MemberOffers, day: date | None = None) -> datetime | None:
    """The oldest end still remembered: the returns window back from the member's newest
    business time, or from `day` (a daily run of the member's market) when later. From a day
    it is the ledger's own returns horizon (that date's UTC midnight, 365 days back), so no
    purchase the ledger would still take a return for loses its offers."""
    horizons = [h for h in (state.horizon(),) if h is not None]
    if day is not None:
        horizons.append(returns_horizon(day))
    return max(horizons, default=None)


def forget_ended(state: MemberOffers, ends: EndOf, day: date | None = None) -> list[str]:
    """Drop every per-offer entry of the offers that ended before `cutoff`; the offer ids
    dropped, sorted."""
    horizon = cutoff(state, day)
    if horizon is None:
        return []
    # Offers a purchase inside the window counted towards: a return of it re-prices them.
    needed = {i for p in state.purchases.values() if p.at >= horizon for i in p.offer_ids()}
    dropped = []
    for offer_id in sorted(state.offer_ids() - needed):
        end = ends(offer_id)
        if end is None or end >= horizon:
            continue
        standing = state.offers.get(offer_id)
        if standing is not None and (
            standing.pending or any(use.at >= horizon for use in standing.completed)
        ):
            continue
        state.forget_offer(offer_id)
        dropped.append(offer_id)
    return dropped
