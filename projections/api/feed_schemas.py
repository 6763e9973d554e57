"""Response and request bodies of the offer feed endpoints (also their OpenAPI description).

Field names follow the contract's JSON form (`OfferPublished`, `OfferProgressed`): timestamps
RFC 3339 in UTC, decimals as strings, money in minor units. Owns shapes and examples only;
never queries nor decides (`offer_feed` renders, `routes_feed` answers).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from processors.contract.base import Market, OfferId
from projections.api.identifiers import ApiId
from projections.api.schemas import Body, Instant

ActivationState = Literal[
    "automatic", "needs_loading", "loaded", "coupon_code_required", "promo_code_required"
]
IssuedState = Literal["ready", "locked", "redeemed"]


class OfferCopy(Body):
    """The offer's customer-facing copy in one language: plain text, as published (the app
    formats it)."""

    locale: str = Field(description="The language of this copy (en or fr).")
    headline: str
    short_description: str
    long_description: str | None = Field(description="Line breaks are `\\n`.")
    terms: str | None = Field(description="Terms and conditions; line breaks are `\\n`.")
    image_url: str | None = Field(description="Absolute https URL of the thumbnail.")


class Activation(Body):
    """What the member must do, besides the behaviour, for the offer to count."""

    kind: str = Field(
        description="AUTOMATIC, LOAD_TO_CARD, COUPON_CODE or PROMOTION_CODE (the offer's)."
    )
    state: ActivationState = Field(
        description="automatic: nothing to do; needs_loading: load it first "
        "(`POST /v1/members/{id}/offers/{offer_id}/load`); loaded: loaded (personalised feed "
        "only); coupon_code_required: the coupon code must be in the cart; "
        "promo_code_required: a valid code of a promotion that unlocks it (ADR 37) must be in "
        "the cart or linked to the member."
    )
    coupon_code: str | None = Field(
        description="The code to bring, in the personalised feed of a targeted member; never "
        "in the anonymous feed."
    )
    loaded_at: Instant | None = Field(description="When the member loaded it.")


class BehaviourView(Body):
    """One behaviour the offer requires, and the member's progress towards it."""

    behaviour_index: int = Field(description="Its position in the offer's behaviours, from 0.")
    kind: str = Field(description="SPEND, QUANTITY, POINTS_REDEMPTION, VISITS or ACTIVITY.")
    metric: str = Field(
        description="What threshold and progress count: SPEND_CENTS (minor units), QUANTITY "
        "(units, litres, kg), COUNT (visits, activities) or POINTS_REDEEMED."
    )
    threshold: str | None = Field(
        description="The value that meets it, a decimal string (`5000` cents, `3` visits)."
    )
    is_accumulated: bool = Field(
        description="Progress adds up across purchases or activities; otherwise the behaviour "
        "is met in one transaction and has no progress to show."
    )
    window_days: int | None = Field(description="Rolling window of accumulated progress.")
    progress: str | None = Field(
        description="Personalised feed, accumulated behaviours: progress of the use in "
        "progress, a decimal string (`3200` of `5000`); 0 after a completed use. Null in the "
        "anonymous feed and for one-transaction behaviours."
    )
    percent: int | None = Field(description="progress / threshold, 0–100, rounded down.")


class Usage(Body):
    """The member's uses and points under the offer's per-member caps."""

    uses: int = Field(description="Uses completed (one award each).")
    uses_per_member_max: int | None = Field(description="Null: no limit.")
    uses_left: int | None = Field(description="Null: no limit.")
    points_awarded: int = Field(description="Points the offer paid the member, in all.")
    points_per_member_max: int | None = Field(description="Null: no cap.")
    points_left: int | None = Field(description="Null: no cap.")


class IssuedView(Body):
    """An instance of a reward-store offer the member bought and has not used yet."""

    issued_offer_id: str = Field(description="What the member locks and redeems it by.")
    reward_store_id: str | None = Field(description="The store it was bought in.")
    points_spent: int | None = Field(description="Points paid for it.")
    issued_at: Instant | None = Field(description="When it was bought.")
    state: IssuedState = Field(
        description="ready: the next transaction that carries it gets the offer; locked: "
        "reserved for a transaction in progress until `locked_until`; redeemed: spent for a "
        "transaction not completed yet."
    )
    locked_until: Instant | None = Field(description="When a lock lapses (locked only).")


class FeedOffer(Body):
    """One offer as the feed shows it."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    offer_id: str
    program_id: str
    market: str
    rank: int = Field(description="1 is the top of the gallery, 9 the bottom.")
    copy_: OfferCopy = Field(alias="copy", serialization_alias="copy")
    display_at: Instant = Field(description="When it was first shown.")
    starts_at: Instant = Field(description="When behaviour starts to count.")
    ends_at: Instant | None = Field(
        description="When it ends (for a triggered offer, the end of the member's own window); "
        "null: it does not expire."
    )
    is_live: bool = Field(description="Behaviour counts now (shown before its start: false).")
    days_left: int | None = Field(
        description="Whole days until `ends_at`, rounded up (ends in 5 hours: 1); null: no end."
    )
    activation: Activation
    reward: dict[str, Any] = Field(
        description="What one use pays: `OfferPublished.reward` in JSON form (kind, payout, "
        "points, multiplier, tier_multipliers, discount, reward_id, tiers), product lists left "
        "out."
    )
    behaviour_operator: str = Field(description="ALL: every behaviour; ANY: one is enough.")
    behaviours: list[BehaviourView]
    usage: Usage | None = Field(description="Personalised feed only; null in the anonymous one.")
    issued: list[IssuedView] | None = Field(
        description="A reward-store offer in the member's feed: the instances of it they bought "
        "and have not used yet, oldest first; null for any other offer, and anonymously."
    )


_OFFER_EXAMPLE: dict[str, Any] = {
    "offer_id": "SPEND_50_GET_500",
    "program_id": "CA_MAIN",
    "market": "CA",
    "rank": 1,
    "copy": {
        "locale": "fr",
        "headline": "500 points pour 50 $",
        "short_description": "Dépensez 50 $ d'ici dimanche.",
        "long_description": None,
        "terms": "Une fois par membre.",
        "image_url": "https://images.example.com/offers/spend50.png",
    },
    "display_at": "2026-03-01T05:00:00Z",
    "starts_at": "2026-03-02T05:00:00Z",
    "ends_at": "2026-03-09T05:00:00Z",
    "is_live": True,
    "days_left": 4,
    "activation": {
        "kind": "LOAD_TO_CARD",
        "state": "loaded",
        "coupon_code": None,
        "loaded_at": "2026-03-02T14:10:00Z",
    },
    "reward": {"kind": "FLAT_POINTS", "payout": "MINIMUM", "points": 500, "multiplier": None,
               "tier_multipliers": [], "discount": None, "reward_id": None, "tiers": []},
    "behaviour_operator": "ALL",
    "behaviours": [
        {"behaviour_index": 0, "kind": "SPEND", "metric": "SPEND_CENTS", "threshold": "5000",
         "is_accumulated": True, "window_days": None, "progress": "3200", "percent": 64},
    ],
    "usage": {"uses": 0, "uses_per_member_max": 1, "uses_left": 1, "points_awarded": 0,
              "points_per_member_max": None, "points_left": None},
    "issued": None,
}  # fmt: skip

_BOUGHT_EXAMPLE: dict[str, Any] = {
    **_OFFER_EXAMPLE,
    "offer_id": "STORE_DOUBLE_POINTS",
    "rank": 2,
    "activation": {"kind": "AUTOMATIC", "state": "automatic", "coupon_code": None,
                   "loaded_at": None},
    "issued": [{"issued_offer_id": "ISS-7f3a", "reward_store_id": "CA_STORE",
                "points_spent": 1500, "issued_at": "2026-03-03T16:20:00Z", "state": "ready",
                "locked_until": None}],
}  # fmt: skip


class MarketFeed(Body):
    """`GET /v1/offers`: what anyone sees in a market."""

    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "market": "CA",
                    "locale": "fr",
                    "offers": [
                        {
                            **_OFFER_EXAMPLE,
                            "activation": {
                                "kind": "LOAD_TO_CARD",
                                "state": "needs_loading",
                                "coupon_code": None,
                                "loaded_at": None,
                            },
                            "behaviours": [
                                {
                                    **_OFFER_EXAMPLE["behaviours"][0],
                                    "progress": None,
                                    "percent": None,
                                }
                            ],
                            "usage": None,
                        }
                    ],
                }
            ]
        },
    )

    market: str
    locale: str = Field(description="The language asked for; each offer's copy says its own.")
    offers: list[FeedOffer] = Field(
        description="The market's mass offers displayable now: by rank (1 first), then the "
        "earliest end, then offer_id."
    )


class MemberFeed(Body):
    """`GET /v1/members/{id}/offers`: the offers this member sees."""

    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "examples": [
                {"member_id": "M1", "locale": "fr", "offers": [_OFFER_EXAMPLE, _BOUGHT_EXAMPLE]}
            ]
        },
    )

    member_id: str
    locale: str = Field(
        description="The language asked for, else the member's preferred one, else en."
    )
    offers: list[FeedOffer] = Field(
        description="Offers targeted to the member (mass offers of their programmes included, "
        "control hold-outs left out) and reward-store offers they bought and have not used, "
        "displayable now: by rank (1 first), then the earliest end, then offer_id."
    )


class FeedEventKind(StrEnum):
    """What the app saw the customer do on the offers page."""

    PAGE_VIEWED = "PAGE_VIEWED"  # the offers page was shown, with these offers on it
    OFFER_CLICKED = "OFFER_CLICKED"  # one offer was opened


OFFER_IDS_MAX = 200
"""Offers one page view may list."""


class FeedEventRequest(BaseModel):
    """The body of `POST /v1/offer-feed/events`: one thing the app saw, recorded once."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "event_id": "9b2f7c1e-5f3a-4a8e-9c61-0d7c2f4b8a10",
                    "kind": "PAGE_VIEWED",
                    "market": "CA",
                    "locale": "fr",
                    "offer_ids": ["SPEND_50_GET_500"],
                },
                {
                    "event_id": "0e4a7d55-3c2b-4f0e-8d9a-6b1c5e2f7a93",
                    "kind": "OFFER_CLICKED",
                    "market": "CA",
                    "offer_id": "SPEND_50_GET_500",
                },
            ]
        },
    )

    event_id: ApiId = Field(
        description="The app's own id for the event (a UUID): sending it again records nothing "
        "more, so a retry is safe."
    )
    kind: FeedEventKind
    market: Market = Field(description="The market of the feed shown.")
    locale: str | None = Field(
        default=None, max_length=35, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$",
        description="The language the page was shown in.",
    )  # fmt: skip
    offer_id: OfferId | None = Field(
        default=None, description="OFFER_CLICKED: the offer opened. Not for PAGE_VIEWED."
    )
    offer_ids: list[OfferId] = Field(
        default_factory=list,
        max_length=OFFER_IDS_MAX,
        description="PAGE_VIEWED: the offers on the page, in the order shown (impressions). "
        "Not for OFFER_CLICKED.",
    )

    @model_validator(mode="after")
    def _check_kind_fields(self) -> Self:
        if self.kind is FeedEventKind.OFFER_CLICKED:
            if self.offer_id is None:
                raise ValueError("an OFFER_CLICKED event names the offer_id opened")
            if self.offer_ids:
                raise ValueError("an OFFER_CLICKED event has no offer_ids")
        elif self.offer_id is not None:
            raise ValueError("a PAGE_VIEWED event lists offer_ids, not an offer_id")
        if len(set(self.offer_ids)) != len(self.offer_ids):
            raise ValueError("offer_ids lists each offer once")
        return self
