"""The bodies of the promo code endpoints and of the promo code part of a cart evaluation
(docs/adr/0026-promo-code-api.md), with their OpenAPI examples. Owns shapes only; never
decides, never queries."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from processors.contract.redemptions import PromoCodeMode
from projections.api.identifiers import ApiId

LinkStatus = Literal["linked", "rejected", "pending"]
CodeCheckStatus = Literal["applies", "reserved", "refused", "pending"]
CodeState = Literal["active", "scheduled", "reserved", "linked", "exhausted", "expired"]


class Body(BaseModel):
    """A response body: read-only once built."""

    model_config = ConfigDict(frozen=True)


class LinkRequest(BaseModel):
    """`POST /v1/promotions/code/link` (seed 001's linkCode): a physical code for a member."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"examples": [{"code": "ZN34C", "customerId": "M1", "mode": "DISCOUNT"}]},
    )

    code: ApiId = Field(description="The code as printed on the coupon; compared upper-cased.")
    customerId: ApiId = Field(description="The member to link the code to.")  # noqa: N815
    mode: PromoCodeMode = Field(description="The kind of cart promotion the code belongs to.")


class CodeLink(Body):
    """A link request and, once decided, its outcome."""

    command_id: str = Field(description="The Idempotency-Key.")
    member_id: str
    code: str = Field(description="Upper-cased, as codes compare.")
    mode: str | None = Field(description="As requested; null if not requested here.")
    request_event_id: str = Field(description="The PromoCodeLinkRequested's id.")
    status: LinkStatus = Field(
        description="linked (applies by itself at the member's next checkout), rejected (see "
        "reason), or pending (written, not decided yet: ask `status_url`)."
    )
    status_url: str
    reason: str | None = Field(
        description="Once rejected: unknown_code, code_already_linked, code_expired, "
        "code_exhausted, invalid_request, unknown_member, member_merged."
    )
    detail: str | None
    decided_at: datetime | None


class CodeCheck(Body):
    """One promo code of a cart: whether it applies, its discount, its reservation."""

    code: str = Field(description="Upper-cased, as codes compare.")
    status: CodeCheckStatus = Field(
        description="applies (valid for this cart; nothing counted: no reservation asked), "
        "reserved (the till may give the discount: the purchase will be counted), refused "
        "(see reason), pending (the reservation was asked, its answer did not come in time: "
        "evaluate again with the same transaction_id)."
    )
    promotion_id: str | None
    offer_id: str | None = Field(
        default=None,
        description="The offer the code unlocks (ADR 37): its discount or points are the "
        "offer's, already in the cart's totals and `offers_applied`; null: a cart discount "
        "code, whose discount is not in those totals.",
    )
    discount_cents: int = Field(description="What the code takes off this cart; 0 if refused.")
    reserved_until: datetime | None = Field(description="When the reservation lapses, unused.")
    reason: str | None = Field(
        description="Once refused: code_unknown, code_not_yet_valid, code_expired, "
        "code_min_spend_not_met, code_not_supported, code_not_applicable (the offer the code "
        "unlocks is not open to this customer or gave nothing), code_exhausted, "
        "code_limit_per_customer."
    )
    detail: str | None


class ReleasedCode(Body):
    """A reservation given back."""

    code: str
    promotion_id: str


class Released(Body):
    """`DELETE /v1/carts/{transaction_id}/reservations`: what was given back."""

    transaction_id: str
    released: list[ReleasedCode]
    used: list[ReleasedCode] = Field(
        default_factory=list,
        description="Codes reserved for the basket that its purchase used already: they stay "
        "used, nothing is given back.",
    )
    released_offers: list[str] = Field(
        default_factory=list,
        description="The discount offers with a total-uses limit whose reserved use was given "
        "back (docs/adr/0030-discount-offer-total-uses.md).",
    )
    released_issued_offers: list[str] = Field(
        default_factory=list,
        description="The reward-store offers locked to the basket whose lock is released "
        "(`IssuedOfferUnlockRequested`): free for another transaction again.",
    )


class PromotionTerms(Body):
    """A code's promotion as its latest issue states it."""

    promotion_id: str
    name: str | None
    market: str
    mode: str
    offer_id: str | None
    discount: dict[str, Any] | None
    starts_at: datetime
    ends_at: datetime


class CodeIssuerBody(Body):
    """Who issued the code (its issue's issuer; docs/adr/0030-discount-offer-total-uses.md)."""

    kind: str = Field(description="PARTNER, INFLUENCER or BRAND.")
    issuer_id: str
    name: str | None


class CodeLimits(Body):
    """The promotion's limits; null: no limit."""

    redemptions_per_code_max: int | None
    redemptions_per_member_max: int | None
    redemptions_total_max: int | None


class CodeRedemption(Body):
    """One use of the code."""

    member_id: str | None = Field(description="Null: an anonymous customer.")
    is_anonymous: bool
    transaction_id: str
    transaction_number: str | None
    store_id: str | None
    used_at: datetime
    discount_cents: int
    use_number: int = Field(description="The promotion's use this was: 1 for the first.")


class CodeStatus(Body):
    """`GET /v1/promo-codes/{code}`: a code as member care sees it."""

    code: str
    market: str
    status: CodeState = Field(
        description="expired (outside its window, at its end or after), scheduled (before its "
        "start), exhausted (no use left), linked (linked to a member, waiting for their next "
        "purchase), reserved (a till holds a use of it), else active."
    )
    promotion: PromotionTerms
    issuer: CodeIssuerBody | None = Field(
        default=None, description="Who issued the code, for attribution; null: the brand."
    )
    limits: CodeLimits
    uses: int = Field(description="Uses of this code.")
    promotion_uses: int = Field(description="Uses of all of the promotion's codes.")
    reservations: int = Field(description="Reservations of this code still counting.")
    uses_left: int | None = Field(description="Uses still possible for this code; null: no limit.")
    linked_member_id: str | None
    redemptions: list[CodeRedemption] = Field(description="Newest first, one page.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: last.")


LINK_EXAMPLE: dict[str, Any] = {
    "command_id": "link-2026-12-01-0001",
    "member_id": "M1",
    "code": "ZN34C",
    "mode": "DISCOUNT",
    "request_event_id": "promo-code-link-requested-5b0c9e2d7a4f1b3c8e6d0a9f2b4c7e1d",
    "status": "linked",
    "status_url": "/v1/members/M1/code-links/link-2026-12-01-0001",
    "reason": None,
    "detail": None,
    "decided_at": "2026-12-01T15:04:05Z",
}
LINK_PENDING = LINK_EXAMPLE | {"status": "pending", "decided_at": None}
LINK_REJECTED = LINK_EXAMPLE | {
    "status": "rejected", "reason": "code_already_linked",
    "detail": "ZN34C is linked to another member",
}  # fmt: skip

STATUS_EXAMPLE: dict[str, Any] = {
    "code": "HOLIMAN100",
    "market": "CA",
    "status": "active",
    "promotion": {
        "promotion_id": "HOLI",
        "name": "Influencer: Mansi",
        "market": "CA",
        "mode": "DISCOUNT",
        "offer_id": None,
        "discount": {"kind": "AMOUNT_OFF_CART", "amount_off_cents": 500},
        "starts_at": "2026-11-01T00:00:00Z",
        "ends_at": "2027-01-01T00:00:00Z",
    },
    "issuer": {"kind": "INFLUENCER", "issuer_id": "mansi", "name": "Mansi"},
    "limits": {
        "redemptions_per_code_max": 1000,
        "redemptions_per_member_max": 1,
        "redemptions_total_max": None,
    },
    "uses": 1,
    "promotion_uses": 1,
    "reservations": 0,
    "uses_left": 999,
    "linked_member_id": None,
    "redemptions": [
        {
            "member_id": None,
            "is_anonymous": True,
            "transaction_id": "T-0412-000981",
            "transaction_number": "000981",
            "store_id": "0412",
            "used_at": "2026-12-01T15:04:05Z",
            "discount_cents": 500,
            "use_number": 1,
        }
    ],
    "next_cursor": None,
}
