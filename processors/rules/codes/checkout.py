"""Promo codes a purchase carries (seed 001; docs/adr/0023-promo-codes.md), member or
anonymous: what the purchase alone can tell (an unknown code, outside the promotion's window,
below its least spend) is refused here; a valid code asks its promotion's agent to count the
use, with the discount it gives on this basket. Each distinct code once per purchase.

A code that unlocks an offer (docs/adr/0037-codes-that-unlock-an-offer.md) is judged in two
steps around the offers engine, the same for the worker and the till:
A code no promotion issued that is a live offer's own coupon code (the offer's activation)
is that offer's: it is neither refused nor counted here (`Judged.coupons`).

1. `judge`: the purchase alone: unknown, window, the offer not live (`code_expired`) or
   capped by its own total uses or budget (`code_not_supported`: the promotion's limits are
   the ones counted); a valid code becomes an unlock, its use request ready for the offer's
   use (the offers engine sends it, `limits.request`, only if the offer completes). One code of a
   promotion per purchase: another code of the same promotion is refused
   (`code_not_applicable`); and the cart discounts of the codes together never exceed the
   basket (each priced alone, capped at what the codes listed before it left). A code a
   till reserved for this very basket, whose offer's use the member holds for it
   (`offers.held_uses`), is valid whatever the window or the offer says by now: a till told
   yes is never overruled. A cart discount's code after its promotion ended goes to the
   promotion's agent all the same, marked ended: it counts only if a till reserved it for
   this basket before (the agent holds the reservations), else it is refused `code_expired`.
2. `unused`: after the evaluation, each unlock whose offer made no use is refused, with why:
   the member's uses of the offer are spent (`code_limit_per_customer`), the offer is not
   open to this customer (`code_not_applicable`: not targeted, held out as control, another
   programme, or an anonymous customer and an offer that needs a member), else its
   behaviours were not met or a better offer of its group applied (`code_min_spend_not_met`).
   No use is counted. The member's uses count those held for their other baskets.

Pure: every time comes from the purchase; ids derive from the transaction and the code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from processors.contract.base import Event
from processors.contract.config import ProgramConfigured, PromotionCodesIssued
from processors.contract.internal import PromoCodeUseRequested
from processors.contract.offers import PromoCodeRefusal, PromoCodeRefused
from processors.contract.transactions import TransactionCompleted
from processors.rules.arithmetic import derived_id
from processors.rules.codes.promotions import Promotions, normalised
from processors.rules.offers import eligibility, held_uses
from processors.rules.offers.catalogue import Catalogue, is_live
from processors.rules.offers.discounts import (
    DiscountOffer,
    PricedLine,
    apply_discounts,
    basket_cents,
    discount_total,
)
from processors.rules.offers.limits import has_offer_limits
from processors.rules.offers.state import MemberOffers

Refusal = tuple[PromoCodeRefusal, str]


@dataclass
class Judged:
    """A purchase's codes before its offers are evaluated: the refusals and the cart
    discounts' use requests, in the order the purchase lists the codes (`events`), and the
    offers its valid codes unlock, each with its code's use request (`unlocks`)."""

    events: list[Event] = field(default_factory=list)
    unlocks: dict[str, PromoCodeUseRequested] = field(default_factory=dict)
    honoured: set[str] = field(default_factory=set)
    """The unlocked offers this basket holds a use of, for its code (`offers.held_uses`)."""
    discounts: dict[str, DiscountOffer] = field(default_factory=dict)
    """The cart discount codes of `events` that ask for a use, with their promotion's discount:
    what the till takes off beside the offers when the code applies (a cart's points are
    judged net of it, as the purchase will be)."""
    coupons: dict[str, list[str]] = field(default_factory=dict)
    """Codes no promotion issued that are live offers' own coupon codes (their activation,
    `ActivationKind.COUPON_CODE`), with those offers: not promotion codes, so neither refused
    nor counted here; the offers engine decides what they give."""


def judge(
    tx: TransactionCompleted,
    promotions: Promotions,
    catalogue: Catalogue,
    state: MemberOffers | None = None,
) -> Judged:
    """Step 1 (see the module) for the codes `tx` carries, for the member whose offers are
    `state` (None: an anonymous customer, who holds nothing)."""
    judged = Judged()
    seen: set[str] = set()
    promotions_used: dict[str, str] = {}  # promotion id → its code in this purchase
    left = basket_cents(tx.lines)
    for given in tx.promo_codes:
        code = normalised(given)
        if code in seen:
            continue
        seen.add(code)
        found = promotions.lookup(code, tx.market)
        terms = found.terms if found is not None else None
        if found is None:
            coupon_offers = catalogue.for_coupon(tx.market, tx.occurred_at, code)
            if coupon_offers:
                judged.coupons[code] = [offer.offer_id for offer in coupon_offers]
                continue
        offer_id = terms.offer_id if terms is not None else None
        honoured = offer_id is not None and held_uses.honours(
            state, offer_id, tx.transaction_id, code
        )
        refusal = None if honoured else _refusal(terms, tx) or _offer_refusal(terms, tx, catalogue)
        ended = _ended_cart_discount(terms, tx, refusal)
        if ended is not None:
            refusal = None  # counted only if a till reserved it: the promotion's agent knows
        if refusal is not None:
            promotion_id = terms.promotion_id if terms is not None else None
            judged.events.append(refused(tx, code, promotion_id, *refusal))
            continue
        assert found is not None
        assert terms is not None
        first = promotions_used.setdefault(terms.promotion_id, code)
        if first != code:
            detail = f"code {first} of this purchase is promotion {terms.promotion_id}'s already"
            judged.events.append(refused(tx, code, terms.promotion_id, _NOT_APPLICABLE, detail))
            continue
        # The codes' discounts together never exceed the basket: each is priced alone, as
        # the till is told, and takes at most what the codes before it left.
        cents = min(_discount_cents(terms, tx), left)
        left -= cents
        use = PromoCodeUseRequested(
            event_id=derived_id("CODE-USE", tx.transaction_id, code),
            occurred_at=tx.occurred_at,
            promotion_id=terms.promotion_id,
            code=code,
            member_id=tx.member_id,
            transaction_id=tx.transaction_id,
            transaction_number=tx.transaction_number,
            store_id=tx.store.store_id,
            discount_cents=cents,
            cause_event_id=tx.event_id,
            spend_cents=sum(line.amount_cents for line in tx.lines),
            issuer=found.issuer,
            redemptions_per_code_max=terms.redemptions_per_code_max,
            redemptions_per_member_max=terms.redemptions_per_member_max,
            redemptions_total_max=terms.redemptions_total_max,
            ended_at=ended,
        )
        if terms.offer_id is None:
            judged.events.append(use)
            if terms.discount is not None:
                judged.discounts[code] = DiscountOffer(terms.promotion_id, terms.discount, None)
        elif terms.offer_id in judged.unlocks:
            detail = f"another code of this purchase unlocks offer {terms.offer_id}"
            judged.events.append(refused(tx, code, terms.promotion_id, _NOT_APPLICABLE, detail))
        else:
            judged.unlocks[terms.offer_id] = use
            if honoured:
                judged.honoured.add(terms.offer_id)
    return judged


def unused(
    judged: Judged,
    tx: TransactionCompleted,
    emitted: Iterable[Event],
    state: MemberOffers | None,
    catalogue: Catalogue,
    programs: Mapping[str, ProgramConfigured],
) -> list[PromoCodeRefused]:
    """Step 2 (see the module): the refusals of the codes whose unlocked offer made no use in
    `emitted` (the evaluation's events), judged on the member's offers `state` as they stand
    after it (None: an anonymous customer)."""
    used = {
        e.offer_use.offer_id
        for e in emitted
        if isinstance(e, PromoCodeUseRequested) and e.offer_use is not None
    }
    out = []
    for offer_id, use in judged.unlocks.items():
        if offer_id not in used:
            honoured = offer_id in judged.honoured
            reason, detail = _unused(offer_id, tx, state, catalogue, programs, honoured)
            out.append(refused(tx, use.code, use.promotion_id, reason, detail))
    return out


def outcomes(
    judged: Judged,
    tx: TransactionCompleted,
    emitted: Iterable[Event],
    state: MemberOffers | None,
    catalogue: Catalogue,
    programs: Mapping[str, ProgramConfigured],
) -> list[Event]:
    """Every code's outcome on `tx`, in the order it lists them: its refusal, or the use it
    asks for (a cart discount's, or the offer use it unlocked among `emitted`)."""
    asked = [e for e in emitted if isinstance(e, PromoCodeUseRequested)]
    found = judged.events + asked + unused(judged, tx, asked, state, catalogue, programs)
    order = cart_order(tx)
    return sorted(found, key=lambda e: order.get(getattr(e, "code", ""), len(order)))


def cart_order(tx: TransactionCompleted) -> dict[str, int]:
    """Each distinct code's place in the purchase (its first), as codes compare."""
    return {normalised(code): n for n, code in reversed(list(enumerate(tx.promo_codes)))}


def refused(
    tx: TransactionCompleted,
    code: str,
    promotion_id: str | None,
    reason: PromoCodeRefusal,
    detail: str,
) -> PromoCodeRefused:
    """A code of `tx` that gives nothing, and why."""
    return PromoCodeRefused(
        event_id=derived_id("CODE-REFUSED", tx.transaction_id, code),
        occurred_at=tx.occurred_at,
        code=code,
        promotion_id=promotion_id,
        member_id=tx.member_id,
        transaction_id=tx.transaction_id,
        reason=reason,
        detail=detail,
        cause_event_id=tx.event_id,
    )


def _ended_cart_discount(
    terms: PromotionCodesIssued | None, tx: TransactionCompleted, refusal: Refusal | None
) -> datetime | None:
    """The promotion's end, when a cart discount's code is refused only because its purchase
    came at or after it: a till may have reserved it for this basket before, and a till told
    yes is never overruled, so the use goes to the promotion's agent, which holds the
    reservations, marked ended (`PromoCodeUseRequested.ended_at`); without a reservation the
    agent refuses it `code_expired`, as this module would have."""
    if refusal is None or refusal[0] is not PromoCodeRefusal.code_expired:
        return None
    if terms is None or terms.offer_id is not None or tx.occurred_at < terms.ends_at:
        return None
    return terms.ends_at


def _refusal(terms: PromotionCodesIssued | None, tx: TransactionCompleted) -> Refusal | None:
    if terms is None:
        return PromoCodeRefusal.code_unknown, "no promotion in this market issued this code"
    at = tx.occurred_at
    if at < terms.starts_at:
        when = terms.starts_at.isoformat()
        return PromoCodeRefusal.code_not_yet_valid, f"{terms.promotion_id} starts at {when}"
    if at >= terms.ends_at:
        when = terms.ends_at.isoformat()
        return PromoCodeRefusal.code_expired, f"{terms.promotion_id} ended at {when}"
    if terms.discount is None:
        return None  # an offer's: `_offer_refusal`, then the offers engine
    least = terms.discount.spend_min_cents
    spend = sum(line.amount_cents + line.discount_cents for line in tx.lines)
    if least is not None and spend < least:
        return PromoCodeRefusal.code_min_spend_not_met, f"spend {spend} < {least} cents"
    return None


_NOT_APPLICABLE = PromoCodeRefusal.code_not_applicable


def _offer_refusal(
    terms: PromotionCodesIssued | None, tx: TransactionCompleted, catalogue: Catalogue
) -> Refusal | None:
    """Why the offer a valid code unlocks cannot be used at all on `tx`."""
    if terms is None or terms.offer_id is None:
        return None
    offer = catalogue.get(terms.offer_id)
    if offer is None or not is_live(offer, tx.occurred_at):
        return PromoCodeRefusal.code_expired, f"offer {terms.offer_id} is not live"
    if offer.market != tx.market:
        return _NOT_APPLICABLE, f"offer {terms.offer_id} is another market's"
    if has_offer_limits(offer):
        detail = (
            f"offer {terms.offer_id} has its own total-uses limit or budget: a code-linked "
            "offer is limited by its promotion's redemptions"
        )
        return PromoCodeRefusal.code_not_supported, detail
    return None


def _unused(
    offer_id: str,
    tx: TransactionCompleted,
    state: MemberOffers | None,
    catalogue: Catalogue,
    programs: Mapping[str, ProgramConfigured],
    honoured: bool,
) -> Refusal:
    """Why the offer a valid code unlocked made no use on `tx` (see the module); `honoured`:
    the basket holds a use of it, so the member's uses do not refuse it."""
    # Live when judged, or held for the basket on its last definition; the catalogue has not
    # changed since.
    offer = catalogue.definition(offer_id)
    assert offer is not None
    spent = state is not None and held_uses.is_spent(
        state, offer, tx.transaction_id, tx.occurred_at
    )
    if spent and not honoured:
        return (
            PromoCodeRefusal.code_limit_per_customer,
            f"this member's uses of offer {offer_id} are spent",
        )
    anonymous = state is None
    who = state or MemberOffers(member_id=tx.transaction_id)
    open_ = eligibility.program_for(offer, who, programs, tx, anonymous, unlocked=(offer_id,))
    if open_ is None and anonymous:
        detail = (
            f"offer {offer_id} needs a member: it pays points, counts across purchases or "
            "limits each customer's uses"
        )
        return _NOT_APPLICABLE, detail
    if open_ is None:
        return _NOT_APPLICABLE, f"offer {offer_id} is not open to this member"
    if state is not None and eligibility.held_out(offer, state, tx.occurred_at):
        return _NOT_APPLICABLE, f"this member is in offer {offer_id}'s control group"
    detail = (
        f"offer {offer_id} did not complete on this purchase: its behaviours are not met, or "
        "a better offer of its stacking group applied"
    )
    return PromoCodeRefusal.code_min_spend_not_met, detail


def spend_after(amounts: Sequence[int], left: int) -> tuple[list[int], int]:
    """`amounts` (each a cart discount code's cents, in the basket's order) each at most what
    the discounts before it `left` of the basket, and what they all leave (the rewards'
    share): the one rule of the codes' spend, at the till and in the worker."""
    spent = []
    left = max(left, 0)
    for cents in amounts:
        taken = min(cents, left)
        spent.append(taken)
        left -= taken
    return spent, left


def after_offers(judged: Judged, basket: int, offers_took: int) -> int:
    """The codes' use requests of `judged` taking only what the offers' discounts left of the
    `basket` (`offers_took` of it), and what the codes leave in turn: the engine's discounts
    come first, then the codes, then the rewards, so that together they never take more than
    the basket (a user's trial: $10 off by code beside 15 % off by an offer on a $10 basket)."""
    uses = [e for e in judged.events if isinstance(e, PromoCodeUseRequested)]
    spent, left = spend_after([u.discount_cents for u in uses], basket - offers_took)
    capped = {
        id(use): use.model_copy(update={"discount_cents": cents})
        for use, cents in zip(uses, spent, strict=True)
        if cents != use.discount_cents
    }
    judged.events = [capped.get(id(e), e) for e in judged.events]
    return left


def _discount_cents(terms: PromotionCodesIssued, tx: TransactionCompleted) -> int:
    """What the promotion's discount takes off this basket (the till's lines, before it); 0
    for a code that unlocks an offer (the offer's use says what it gives)."""
    if terms.discount is None:
        return 0
    priced = [PricedLine.of(line, gross=True) for line in tx.lines]
    offer = DiscountOffer(terms.promotion_id, terms.discount, None)
    return discount_total(apply_discounts(priced, [offer]))
