"""Uses of offers held for the member's baskets by tills' reservations: the member's side of
reserve → commit for a promo code that unlocks an offer (DESIGN.md §5.25;
docs/adr/0037-codes-that-unlock-an-offer.md, item 5). The promotion's agent reserves the code
for a basket and tells the member's partition (`OfferUseHeld`), which keeps one use of the
offer held for that basket:

- **The basket's own purchase** that carries the held code gets the offer as the till was
  told (`honours`): the code is valid and the offer open even if the promotion ended or the
  offer was withdrawn since, and the member's own use limit does not refuse it, even after
  the hold lapsed: a till told yes is never overruled.
- **Every other cause** (another basket, an activity) sees the held use as taken until the
  hold's time (`elsewhere`): a one-use-per-member offer held for basket A is used up for
  basket B while the hold lasts.
- A release (`OfferUseHoldReleased`) gives it back at once; the basket's purchase uses it up,
  whatever the offer did on it (`used`); a hold that arrives after its basket's purchase is
  not kept; a lapsed hold is forgotten a week after it lapsed (when a hold or a purchase
  comes), as the agent forgets its reservation.

A hold keeps a use, not points: an offer's per-member points cap clips the held basket's award
by what the member has left, as for any use.
Pure: times are the events'; never decides whether a code is counted (`codes.uses` does).
"""

from __future__ import annotations

from datetime import datetime

from processors.contract.config import OfferPublished
from processors.contract.internal import OfferUseHeld, OfferUseHoldReleased
from processors.rules.codes.uses import FORGOTTEN_AFTER
from processors.rules.offers.rewards import is_used_up
from processors.rules.offers.state import HeldUse, MemberOffers, OfferProgress


def hold(state: MemberOffers, held: OfferUseHeld, purchased: bool) -> str:
    """Keep (or extend) the use held for `held`'s basket; a note when nothing is kept because
    the basket's purchase (`purchased`) came first."""
    _forget_lapsed(state, held.occurred_at)
    if purchased:
        return f"basket {held.transaction_id} was already bought: its hold is not kept"
    keep(state, HeldUse(
        offer_id=held.offer_id, transaction_id=held.transaction_id,
        promotion_id=held.promotion_id, code=held.code, until=held.held_until,
    ))  # fmt: skip
    return ""


def keep(state: MemberOffers, use: HeldUse) -> None:
    """Hold `use` for its basket, or extend the basket's hold to its time."""
    key = _key(use.offer_id, use.transaction_id)
    kept = state.held.get(key)
    if kept is not None and kept.code == use.code and kept.until > use.until:
        return
    state.held[key] = use


def release(state: MemberOffers, released: OfferUseHoldReleased) -> None:
    """Give the basket's held use back."""
    key = _key(released.offer_id, released.transaction_id)
    kept = state.held.get(key)
    if kept is not None and kept.code == released.code:
        del state.held[key]


def honours(state: MemberOffers | None, offer_id: str, transaction_id: str, code: str) -> bool:
    """True when the basket holds a use of the offer for this very code (lapsed or not)."""
    if state is None:
        return False
    kept = state.held.get(_key(offer_id, transaction_id))
    return kept is not None and kept.code == code


def is_spent(
    state: MemberOffers, offer: OfferPublished, transaction_id: str | None, at: datetime
) -> bool:
    """True when the member may not use the offer again on a cause at `at` (a purchase of
    basket `transaction_id`, or None: another cause): `rewards.is_used_up`, the uses held for
    the member's other baskets counted as taken."""
    standing = state.offers.get(offer.offer_id)
    taken = _elsewhere(state, offer.offer_id, transaction_id, at) if state.held else 0
    if standing is None and not taken:
        return False  # the common case, without building a standing
    return is_used_up(offer, standing or OfferProgress(), taken)


def _elsewhere(state: MemberOffers, offer_id: str, transaction_id: str | None, at: datetime) -> int:
    """The uses of the offer held at `at` for other baskets than `transaction_id`."""
    return sum(
        1
        for h in state.held.values()
        if h.offer_id == offer_id and h.transaction_id != transaction_id and h.until > at
    )


def used(state: MemberOffers, transaction_id: str, at: datetime) -> None:
    """The basket was bought at `at`: its holds are used up (whatever the offer did on it),
    and those lapsed long enough are forgotten."""
    if state.held:
        state.held = {k: h for k, h in state.held.items() if h.transaction_id != transaction_id}
        _forget_lapsed(state, at)


def _forget_lapsed(state: MemberOffers, at: datetime) -> None:
    state.held = {k: h for k, h in state.held.items() if h.until + FORGOTTEN_AFTER > at}


def _key(offer_id: str, transaction_id: str) -> str:
    return f"{offer_id}|{transaction_id}"
