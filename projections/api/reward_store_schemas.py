"""Bodies of the reward-store endpoints (seed 002, docs/adr/0033-reward-store-api.md), with the
examples the OpenAPI description shows.

Field names follow the contract's JSON form (`OfferPublished`, `RewardStoreListing`,
`RequestAccepted`), timestamps RFC 3339 in UTC, points as integers. Owns shapes only; never
queries nor decides.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from processors.contract.common import Source
from projections.api.identifiers import ApiId, TillId
from projections.api.reward_schemas import RewardCopy, WalletPageInfo
from projections.api.schemas import Body, Instant

IssuedStatus = Literal["ISSUED", "LOCKED", "REDEEMED", "USED"]
PurchaseStatus = Literal["accepted", "rejected", "pending"]
UseAction = Literal["lock", "redeem"]


class RewardStoreSummary(Body):
    """A reward store the member may buy in (`RewardStoreConfigured`)."""

    reward_store_id: str
    market: str = Field(description="The market whose members may buy in it.")
    program_id: str = Field(description="The programme whose points pay.")
    category: str = Field(description="The points category purchases are debited from.")
    copy_: RewardCopy = Field(
        alias="copy", serialization_alias="copy",
        description="Its name (headline) and description in the language asked (else English).",
    )  # fmt: skip
    available_until: Instant | None = Field(description="When it closes; null: no end.")
    offers_for_member: int = Field(
        description="Offers it sells now that the member may be sold (targeted, not held out "
        "as control), whether or not they can afford them yet."
    )
    offers_member_may_buy: int = Field(
        description="Of those, the ones a purchase now would buy, as far as the projections "
        "know (the balance covers the price, uses per member left)."
    )
    cheapest_points_cost: int | None = Field(
        description="The lowest price among the offers for the member; null: none now."
    )


class RewardStores(Body):
    """`GET /v1/reward-stores`: the member's eligible stores, by id."""

    member_id: str
    locale: str = Field(description="The language asked for.")
    reward_stores: list[RewardStoreSummary]


class Buyer(Body):
    """The offer as the member asking sees it: the worker's purchase rule, on what the
    projections know (points reserved by requests in flight are not)."""

    targeted: bool = Field(
        description="The offer's targeting includes the member, not as control (a control "
        "member may not buy it)."
    )
    uses_left: int | None = Field(
        description="Instances the member may still buy (the offer's uses per member less those "
        "bought); null: no limit."
    )
    balance: int = Field(
        description="The member's balance in the store's programme and points category."
    )
    affordable: bool = Field(description="That balance covers the price.")
    may_buy: bool = Field(description="A purchase now would be accepted, as far as known here.")
    refusal: str | None = Field(
        description="Why not: the reason the worker would give (not_eligible, limit_reached, "
        "insufficient_points, member_merged, ...); null when may_buy."
    )
    detail: str | None = Field(description="That reason's words, for a person; never parsed.")


class StoreOffer(Body):
    """An offer a reward store sells now."""

    offer_id: str
    reward_store_id: str
    program_id: str = Field(description="The programme whose points pay (the store's).")
    market: str
    rank: int = Field(description="Its place in the store: 1 first.")
    points_cost: int = Field(description="The price in points.")
    starts_at: Instant = Field(description="Live (for sale and usable) from.")
    ends_at: Instant = Field(description="Live until (excluded); 3001: does not expire.")
    uses_per_member_max: int | None = Field(description="Null: no per-member limit.")
    copy_: RewardCopy = Field(alias="copy", serialization_alias="copy")
    reward: dict[str, Any] = Field(
        description="What one use gives (`OfferPublished.reward`, JSON form): the discount."
    )
    member: Buyer


class StoreOffers(Body):
    """`GET /v1/reward-stores/{reward_store_id}/offers`."""

    reward_store_id: str
    member_id: str
    locale: str = Field(description="The language asked for.")
    offers: list[StoreOffer] = Field(description="By rank, then offer id.")


class IssuedOffer(Body):
    """An offer the member bought in a reward store: their own instance of it."""

    issued_offer_id: str = Field(
        description="What the till locks or redeems, and the transaction carries in "
        "redemption_tokens."
    )
    offer_id: str | None
    reward_store_id: str | None = Field(description="Where it was bought.")
    status: IssuedStatus = Field(
        description="ISSUED (unused), LOCKED (reserved for transaction_id until locked_until), "
        "REDEEMED (spent at once for transaction_id), USED (a transaction got its benefit)."
    )
    is_usable: bool = Field(
        description="A transaction carrying it now may get its benefit: ISSUED, or LOCKED and "
        "the lock lapsed."
    )
    points_spent: int | None = Field(description="The price paid.")
    command_id: str | None = Field(description="The purchase's Idempotency-Key.")
    ledger_event_log_id: str | None = Field(description="The ledger event of the debit.")
    issued_at: Instant | None
    transaction_id: str | None = Field(
        description="The transaction it is locked to, redeemed for or was used in."
    )
    locked_until: Instant | None = Field(description="When a lock lapses.")
    discount_cents: int | None = Field(description="What it took off, once USED.")
    status_at: Instant = Field(description="When it reached its status.")


class IssuedOffers(Body):
    """`GET /v1/members/{id}/issued-offers`: the store offers of the member's wallet."""

    member_id: str
    page: WalletPageInfo
    issued_offers: list[IssuedOffer] = Field(description="Newest purchase first.")


class Purchase(Body):
    """A reward-store purchase and, once decided, its outcome."""

    command_id: str = Field(description="The Idempotency-Key.")
    member_id: str
    request_event_id: str = Field(
        description="The RewardStoreOfferPurchaseRequested's id, derived from the member and "
        "the key."
    )
    status: PurchaseStatus = Field(
        description="accepted (debited and issued), rejected (nothing changed; see reason), or "
        "pending (written, not decided yet: ask `status_url`)."
    )
    status_url: str = Field(description="Where this purchase's state can be read again.")
    reward_store_id: str
    offer_id: str
    issued_offer: IssuedOffer | None = Field(description="The instance issued, once accepted.")
    ledger_event_log_id: str | None = Field(description="The ledger event of the debit.")
    reason: str | None = Field(
        description="Once rejected: a stable code (insufficient_points, not_eligible, "
        "limit_reached, offer_not_live, unknown_offer, unknown_member, member_merged)."
    )
    detail: str | None = Field(description="The outcome's note for a person; never parsed.")
    decided_at: Instant | None


class IssuedOfferUseRequest(BaseModel):
    """The body of `POST /v1/members/{id}/issued-offers/{issued_offer_id}/lock` and
    `.../redeem`: the till's basket the instance is held for."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    transaction_id: ApiId | None = Field(
        default=None,
        description="The transaction in progress (required to lock; to redeem, null: the next "
        "transaction that carries the instance).",
        examples=["POS-0042-0193"],
    )
    store_id: ApiId | None = Field(default=None, description="The store, when made in one.")
    till_id: TillId | None = Field(default=None, description="The till, if any.")
    source: Source = Field(
        default=Source.INSTORE,
        description="The channel: INSTORE at a till, ECOMMERCE at an online checkout.",
    )


class IssuedOfferUse(Body):
    """A lock or an immediate redeem of an issued offer and, once decided, its outcome."""

    command_id: str = Field(description="The Idempotency-Key.")
    member_id: str
    request_event_id: str = Field(
        description="The IssuedOfferLockRequested's or IssuedOfferRedeemRequested's id, derived "
        "from the member and the key."
    )
    action: UseAction
    status: PurchaseStatus = Field(
        description="accepted (locked, or redeemed), rejected (nothing changed; see reason), or "
        "pending (written, not decided yet: ask `status_url`)."
    )
    status_url: str = Field(description="Where this request's state can be read again.")
    issued_offer_id: str
    transaction_id: str | None = Field(description="As asked.")
    issued_offer: IssuedOffer | None = Field(
        description="The instance as the wallet shows it now, once accepted."
    )
    reason: str | None = Field(
        description="Once rejected: a stable code (reward_locked: locked to another transaction; "
        "duplicate_request: already used; unknown_offer; unknown_member)."
    )
    detail: str | None = Field(description="The outcome's note for a person; never parsed.")
    decided_at: Instant | None


STORES_EXAMPLE: dict[str, Any] = {
    "member_id": "M1",
    "locale": "fr",
    "reward_stores": [{
        "reward_store_id": "CAFE", "market": "CA", "program_id": "CA_REWARDS",
        "category": "REGULAR",
        "copy": {
            "locale": "fr", "headline": "La boutique café",
            "short_description": "Des offres café et boulangerie à acheter avec vos points.",
            "long_description": None, "terms": None,
            "image_url": "https://images.example.com/stores/cafe-fr.png",
        },
        "available_until": None, "offers_for_member": 2, "offers_member_may_buy": 1,
        "cheapest_points_cost": 300,
    }],
}  # fmt: skip
_COPY = {
    "locale": "en", "headline": "Half off a muffin",
    "short_description": "Buy a coffee, get a muffin half price.", "long_description": None,
    "terms": "One use, with a coffee.", "image_url": "https://cdn.example.com/muffin.png",
}  # fmt: skip
STORE_OFFERS_EXAMPLE: dict[str, Any] = {
    "reward_store_id": "CAFE",
    "member_id": "M1",
    "locale": "en",
    "offers": [{
        "offer_id": "MUFFIN_HALF_OFF", "reward_store_id": "CAFE", "program_id": "CA_REWARDS",
        "market": "CA", "rank": 1, "points_cost": 300, "starts_at": "2026-11-01T00:00:00Z",
        "ends_at": "2027-01-01T00:00:00Z", "uses_per_member_max": 2, "copy": _COPY,
        "reward": {
            "kind": "DISCOUNT", "payout": "MINIMUM", "points": None, "multiplier": None,
            "tier_multipliers": [], "reward_id": None, "tiers": [],
            "discount": {
                "kind": "AMOUNT_OFF_CART", "amount_off_cents": 200, "percent_off": None,
                "discount_max_cents": None, "free_units": None, "products": None,
                "spend_min_cents": None,
            },
        },
        "member": {"targeted": True, "uses_left": 1, "balance": 1200, "affordable": True,
                   "may_buy": True, "refusal": None, "detail": None},
    }],
}  # fmt: skip
ISSUED_EXAMPLE: dict[str, Any] = {
    "issued_offer_id": "IO-5f2c0e9a41d7b3c28e6f01a9d4b7c3e2",
    "offer_id": "MUFFIN_HALF_OFF",
    "reward_store_id": "CAFE",
    "status": "ISSUED",
    "is_usable": True,
    "points_spent": 300,
    "command_id": "buy-2026-12-01-0001",
    "ledger_event_log_id": "LE-9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d",
    "issued_at": "2026-12-01T15:04:05Z",
    "transaction_id": None,
    "locked_until": None,
    "discount_cents": None,
    "status_at": "2026-12-01T15:04:05Z",
}
ISSUED_OFFERS_EXAMPLE: dict[str, Any] = {
    "member_id": "M1",
    "page": {"limit": 20, "has_more": False, "next_cursor": None},
    "issued_offers": [
        ISSUED_EXAMPLE | {
            "status": "LOCKED", "is_usable": False, "transaction_id": "POS-0042-0193",
            "locked_until": "2026-12-02T09:40:00Z", "status_at": "2026-12-02T09:10:00Z",
        },
    ],
}  # fmt: skip
PURCHASE_EXAMPLE: dict[str, Any] = {
    "command_id": "buy-2026-12-01-0001",
    "member_id": "M1",
    "request_event_id": "reward-store-offer-purchase-requested-0c1e4f3b8a9d2c7e6b5a4f3e2d1c0b9a",
    "status": "accepted",
    "status_url": "/v1/members/M1/reward-store-purchases/buy-2026-12-01-0001",
    "reward_store_id": "CAFE",
    "offer_id": "MUFFIN_HALF_OFF",
    "issued_offer": ISSUED_EXAMPLE,
    "ledger_event_log_id": "LE-9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d",
    "reason": None,
    "detail": None,
    "decided_at": "2026-12-01T15:04:05Z",
}
PURCHASE_PENDING = PURCHASE_EXAMPLE | {
    "status": "pending", "issued_offer": None, "ledger_event_log_id": None, "decided_at": None,
}  # fmt: skip
PURCHASE_REJECTED = PURCHASE_PENDING | {
    "status": "rejected", "reason": "insufficient_points",
    "detail": "CA_REWARDS: balance 120 < 300 requested", "decided_at": "2026-12-01T15:04:05Z",
}  # fmt: skip
USE_EXAMPLE: dict[str, Any] = {
    "command_id": "till-0042-lock-0193",
    "member_id": "M1",
    "request_event_id": "issued-offer-lock-requested-7a1c0e9b2d4f6a8c0e1b3d5f7a9c1e3b",
    "action": "lock",
    "status": "accepted",
    "status_url": "/v1/members/M1/issued-offers/IO-5f2c0e9a41d7b3c28e6f01a9d4b7c3e2/lock/"
    "till-0042-lock-0193",
    "issued_offer_id": "IO-5f2c0e9a41d7b3c28e6f01a9d4b7c3e2",
    "transaction_id": "POS-0042-0193",
    "issued_offer": ISSUED_OFFERS_EXAMPLE["issued_offers"][0],
    "reason": None,
    "detail": "locked to POS-0042-0193 until 2026-12-02T09:40:00+00:00",
    "decided_at": "2026-12-02T09:10:00Z",
}
USE_PENDING = USE_EXAMPLE | {
    "status": "pending", "issued_offer": None, "detail": None, "decided_at": None,
}  # fmt: skip
USE_REFUSED = USE_PENDING | {
    "status": "rejected", "reason": "duplicate_request",
    "detail": "issued offer IO-5f2c0e9a41d7b3c28e6f01a9d4b7c3e2 was used",
    "decided_at": "2026-12-02T09:10:00Z",
}  # fmt: skip
