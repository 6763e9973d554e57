"""Whether a member's behaviour may count towards an offer at all (DESIGN.md §5.16, §5.17;
seed 003 "Offer targeting", "Offer activation"): enrolment in the offer's programme, targeting,
activation, store location.

Targeting is read from the member's recorded decisions (`targeting.status`, ADR 13): MASS
reaches every member of the programme, the other kinds the members decided in; a control
member counts (tracked as if targeted) and `held_out` says so, for the evaluator to pay them
nothing. LOAD_TO_CARD counts only once the member loaded the offer (`OfferLoaded`). Store
locations and coupon codes gate purchases; an activity or a redemption has no store and counts
towards a location-limited offer, but never towards a coupon offer (a coupon must be in a
cart). A valid promo code of a promotion naming the offer activates it for the purchase that
carries it, whatever the offer's own activation (`unlocked`, ADR 37); PROMOTION_CODE offers
are activated by nothing else.

An anonymous cart (no member) counts only towards discount offers it can earn on its own:
behaviours judged on the one transaction, no per-member use limit (docs/adr/0010), no
total-uses limit (docs/adr/0030: an anonymous purchase runs no offer to count the use).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime

from processors.contract.common import Store
from processors.contract.config import OfferPublished, ProgramConfigured
from processors.contract.offer_definition import (
    Accumulation,
    ActivationKind,
    BehaviourKind,
    OfferRewardKind,
    StoreLocations,
    TargetingKind,
    TargetingTiming,
)
from processors.contract.transactions import TransactionCompleted
from processors.rules.offers import targeting
from processors.rules.offers.state import MemberOffers


def program_for(
    offer: OfferPublished,
    state: MemberOffers,
    programs: Mapping[str, ProgramConfigured],
    tx: TransactionCompleted | None,
    anonymous: bool,
    at: datetime | None = None,
    unlocked: Collection[str] = (),
) -> ProgramConfigured | None:
    """The offer's programme when the member's behaviour (a purchase `tx`, or else an activity
    or redemption) may count towards the offer; None when it may not. `unlocked`: the offers
    the purchase's valid promo codes unlock."""
    program = programs.get(offer.program_id)
    if program is None:
        return None
    if anonymous:
        if not _open_to_anonymous(offer):
            return None
    elif offer.program_id not in state.programs:
        return None
    when = tx.occurred_at if tx is not None else at
    if anonymous:
        # Anonymous carts: only MASS offers without a hold-out, automatic (no member to load).
        if not _is_open_mass(offer) or not _is_activated(offer, tx, None, unlocked):
            return None
    elif (
        when is None
        or held_out(offer, state, when) is None
        or not _is_activated(offer, tx, state, unlocked)
    ):
        return None
    locations = offer.targeting.locations
    if tx is not None and locations is not None and not at_store(locations, tx.store):
        return None
    return program


def at_store(locations: StoreLocations, store: Store) -> bool:
    """True when the store matches every non-empty list and every store attribute given."""
    postal = (store.postal_code or "").replace(" ", "").upper()
    prefixes = [p.replace(" ", "").upper() for p in locations.postal_code_prefixes]
    checks = (
        not locations.store_ids or store.store_id in locations.store_ids,
        not locations.countries or store.country in locations.countries,
        not locations.provinces or store.province in locations.provinces,
        not prefixes or (bool(postal) and any(postal.startswith(p) for p in prefixes)),
        not locations.banners or store.banner in locations.banners,
        all(store.attributes.get(k) == v for k, v in locations.store_attributes.items()),
    )
    return all(checks)


def held_out(offer: OfferPublished, state: MemberOffers, at: datetime) -> bool | None:
    """None when the member is not targeted by the offer at `at`; else whether they are held
    out as control (tracked, never rewarded)."""
    standing = state.offers.get(offer.offer_id)
    return targeting.status(offer, state, at, standing.uses if standing is not None else 0)


def _is_open_mass(offer: OfferPublished) -> bool:
    targeting_ = offer.targeting
    return (
        targeting_.kind is TargetingKind.MASS
        and targeting_.control_share_percent == 0
        and targeting_.timing
        in (TargetingTiming.STATIC, TargetingTiming.DELAYED_STATIC, TargetingTiming.DYNAMIC)
    )


def _is_activated(
    offer: OfferPublished,
    tx: TransactionCompleted | None,
    state: MemberOffers | None,
    unlocked: Collection[str],
) -> bool:
    if offer.reward_store is not None:
        # Sold in a reward store: it applies only to a transaction that carries an instance
        # the member bought (seed 002), whatever its activation says.
        return state is not None and tx is not None and bool(state.presented(offer.offer_id, tx))
    if tx is not None and offer.offer_id in unlocked:
        return True
    activation = offer.activation
    if activation.kind is ActivationKind.AUTOMATIC:
        return True
    if activation.kind is ActivationKind.COUPON_CODE and tx is not None:
        return activation.coupon_code in {code.upper() for code in tx.promo_codes}
    if activation.kind is ActivationKind.LOAD_TO_CARD and state is not None:
        return offer.offer_id in state.loaded
    return False


def _open_to_anonymous(offer: OfferPublished) -> bool:
    one_transaction = all(
        b.kind in (BehaviourKind.SPEND, BehaviourKind.QUANTITY)
        and b.accumulation is Accumulation.SINGLE_TRANSACTION
        for b in offer.behaviours
    )
    return (
        offer.reward.kind is OfferRewardKind.DISCOUNT
        and one_transaction
        and offer.usage.uses_per_member_max is None
        # An anonymous purchase runs no offer, so nobody would count its use of the total.
        and offer.usage.uses_total_max is None
    )
