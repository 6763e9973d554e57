"""Promo codes a purchase carries (seed 001; docs/adr/0023-promo-codes.md), member or
anonymous: what the purchase alone can tell (an unknown code, outside the promotion's window,
below its least spend) is refused here; a valid code asks its promotion's agent to count the
use, with the discount it gives on this basket. Each distinct code once per purchase.

Pure: every time comes from the purchase; ids derive from the transaction and the code.
"""

from __future__ import annotations

from processors.contract.base import Event
from processors.contract.config import PromotionCodesIssued
from processors.contract.internal import PromoCodeUseRequested
from processors.contract.offers import PromoCodeRefusal, PromoCodeRefused
from processors.contract.transactions import TransactionCompleted
from processors.rules.arithmetic import derived_id
from processors.rules.codes.promotions import Promotions, normalised
from processors.rules.offers.discounts import (
    DiscountOffer,
    PricedLine,
    apply_discounts,
    discount_total,
)

Refusal = tuple[PromoCodeRefusal, str]


def on_purchase(tx: TransactionCompleted, promotions: Promotions) -> list[Event]:
    """The refusals and use requests for the codes `tx` carries, in the order it lists them."""
    out: list[Event] = []
    seen: set[str] = set()
    for given in tx.promo_codes:
        code = normalised(given)
        if code in seen:
            continue
        seen.add(code)
        found = promotions.lookup(code, tx.market)
        terms = found.terms if found is not None else None
        refusal = _refusal(terms, tx)
        if refusal is not None:
            out.append(refused(tx, code, terms, *refusal))
            continue
        assert found is not None
        assert terms is not None
        out.append(
            PromoCodeUseRequested(
                event_id=derived_id("CODE-USE", tx.transaction_id, code),
                occurred_at=tx.occurred_at,
                promotion_id=terms.promotion_id,
                code=code,
                member_id=tx.member_id,
                transaction_id=tx.transaction_id,
                transaction_number=tx.transaction_number,
                store_id=tx.store.store_id,
                discount_cents=_discount_cents(terms, tx),
                cause_event_id=tx.event_id,
                spend_cents=sum(line.amount_cents for line in tx.lines),
                issuer=found.issuer,
                redemptions_per_code_max=terms.redemptions_per_code_max,
                redemptions_per_member_max=terms.redemptions_per_member_max,
                redemptions_total_max=terms.redemptions_total_max,
            )
        )
    return out


def refused(
    tx: TransactionCompleted,
    code: str,
    terms: PromotionCodesIssued | None,
    reason: PromoCodeRefusal,
    detail: str,
) -> PromoCodeRefused:
    """A code of `tx` that gives nothing, and why."""
    return PromoCodeRefused(
        event_id=derived_id("CODE-REFUSED", tx.transaction_id, code),
        occurred_at=tx.occurred_at,
        code=code,
        promotion_id=terms.promotion_id if terms is not None else None,
        member_id=tx.member_id,
        transaction_id=tx.transaction_id,
        reason=reason,
        detail=detail,
        cause_event_id=tx.event_id,
    )


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
        return PromoCodeRefusal.code_not_supported, "codes that unlock an offer come later"
    least = terms.discount.spend_min_cents
    spend = sum(line.amount_cents + line.discount_cents for line in tx.lines)
    if least is not None and spend < least:
        return PromoCodeRefusal.code_min_spend_not_met, f"spend {spend} < {least} cents"
    return None


def _discount_cents(terms: PromotionCodesIssued, tx: TransactionCompleted) -> int:
    """What the promotion's discount takes off this basket (the till's lines, before it)."""
    assert terms.discount is not None
    priced = [PricedLine.of(line, gross=True) for line in tx.lines]
    offer = DiscountOffer(terms.promotion_id, terms.discount, None)
    return discount_total(apply_discounts(priced, [offer]))
