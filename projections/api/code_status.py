"""A promo code as member care sees it (seed 001): its state, its promotion and limits, the
uses left, the member it is linked to, and a page of its redemptions newest first.

The one home of that answer: `GET /v1/promo-codes/{code}` returns it as JSON and the staff
console renders it (docs/adr/0036-member-care-console.md). Reads the configuration (the
promotion's terms) and the code store; never throttles, never writes.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from processors.rules.codes import uses as uses_rule
from processors.rules.member import Config
from projections.api.code_schemas import (
    CodeIssuerBody,
    CodeLimits,
    CodeRedemption,
    CodeState,
    CodeStatus,
    PromotionTerms,
)
from projections.api.code_store import CodeActivity, CodeStore, UseCursor
from projections.api.errors import BadParameterError


def decode_cursor(value: str | None) -> UseCursor | None:
    """The (used_at, event_id) a `next_cursor` names; 400 for anything else."""
    if value is None:
        return None
    try:
        at, _, event_id = base64.urlsafe_b64decode(value.encode()).decode().partition("|")
        return datetime.fromisoformat(at), event_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadParameterError("cursor", "not a cursor this API gave") from None


def encode_cursor(at: datetime, event_id: str) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{event_id}".encode()).decode()


def state_of(
    *,
    now: datetime,
    starts_at: datetime,
    ends_at: datetime,
    uses_left: int | None,
    activity: CodeActivity,
) -> CodeState:
    """What member care reads first (see `CodeStatus.status`)."""
    if now >= ends_at:
        return "expired"
    if now < starts_at:
        return "scheduled"
    if uses_left == 0:
        return "exhausted"
    if activity.linked_member_id is not None:
        return "linked"
    if activity.code_reservations > 0:
        return "reserved"
    return "active"


async def code_status(
    config: Config,
    store: CodeStore,
    code: str,
    market: str,
    *,
    now: datetime,
    limit: int,
    after: UseCursor | None,
) -> CodeStatus | None:
    """The code's status and up to `limit` redemptions after `after`; None when no promotion
    of `market` issued `code` (normalised, upper-cased)."""
    found = config.promotions.lookup(code, market)
    if found is None:
        return None
    terms, issuer = found.terms, found.issuer
    activity = await store.activity(code, terms.promotion_id, now)
    page = await store.uses(code, limit=limit + 1, after=after)
    uses_left = uses_rule.uses_left(terms, activity.code_taken, activity.promotion_taken)
    shown = page[:limit]
    return CodeStatus(
        code=code,
        market=market,
        status=state_of(now=now, starts_at=terms.starts_at, ends_at=terms.ends_at,
                        uses_left=uses_left, activity=activity),
        promotion=PromotionTerms(
            promotion_id=terms.promotion_id, name=terms.name, market=terms.market,
            mode=terms.mode.value, offer_id=terms.offer_id,
            discount=terms.discount.model_dump(mode="json") if terms.discount else None,
            starts_at=terms.starts_at, ends_at=terms.ends_at,
        ),
        issuer=CodeIssuerBody(kind=issuer.kind.value, issuer_id=issuer.issuer_id,
                              name=issuer.name) if issuer is not None else None,
        limits=CodeLimits(
            redemptions_per_code_max=terms.redemptions_per_code_max,
            redemptions_per_member_max=terms.redemptions_per_member_max,
            redemptions_total_max=terms.redemptions_total_max,
        ),
        uses=activity.code_uses,
        promotion_uses=activity.promotion_uses,
        reservations=activity.code_reservations,
        uses_left=uses_left,
        linked_member_id=activity.linked_member_id,
        redemptions=[
            CodeRedemption(
                member_id=u.member_id, is_anonymous=u.member_id is None,
                transaction_id=u.transaction_id, transaction_number=u.transaction_number,
                store_id=u.store_id, used_at=u.used_at, discount_cents=u.discount_cents,
                use_number=u.use_number,
            )
            for u in shown
        ],
        next_cursor=encode_cursor(shown[-1].used_at, shown[-1].event_id)
        if len(page) > limit else None,
    )  # fmt: skip
