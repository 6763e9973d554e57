"""The body of `POST /v1/carts/evaluate` and of its answer (also their OpenAPI description).

The request is a cart in the JSON form of `TransactionCompleted` (DESIGN.md §6) without its
envelope: `event_id`, `occurred_at` and `transaction_id` may be left out (the route fills them
in), `source` defaults to INSTORE, and the line, store and tender records are the contract's
own, so a POS that produces transactions already produces carts; its own identifiers follow
`identifiers` (a till's id is printable ASCII here, where the contract only bounds its length).
The answer is integers only: cents and points. Owns shapes only; never evaluates and never
queries.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator
from pydantic.config import JsonDict

from processors.contract.base import Currency, Market, UtcDatetime
from processors.contract.common import Source, Store
from processors.contract.transactions import (
    Tender,
    TransactionCompleted,
    TransactionLine,
    basket_within_bounds,
    unique_line_ids,
)
from projections.api.code_schemas import CodeCheck
from projections.api.identifiers import ApiId, TillId

LINES_MAX = 500
"""Most lines in one cart: an evaluation's cost grows with the lines, so it is bounded."""


_EXAMPLE: JsonDict = {
    "member_id": "M1",
    "market": "CA",
    "currency": "CAD",
    "store": {"store_id": "0412", "country": "CA", "province": "ON"},
    "till_id": "T3",
    "lines": [
        {
            "line_id": "1",
            "sku": "CHIPS-200G",
            "category": "SNACKS",
            "quantity": "2",
            "unit_price_cents": 350,
            "amount_cents": 700,
        }
    ],
    "redemption_tokens": ["RWD-7Q2K-9XPL"],
}


class CartRequest(BaseModel):
    """A cart to evaluate: a `TransactionCompleted` in JSON form, envelope optional."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra={"examples": [_EXAMPLE]}
    )

    type: Literal["TransactionCompleted"] | None = Field(
        default=None, description="Accepted for symmetry with the JSON form; ignored."
    )
    event_id: ApiId | None = Field(
        default=None, description="Optional; a fresh id is used when left out."
    )
    occurred_at: UtcDatetime | None = Field(
        default=None,
        description="Business time of the checkout, RFC 3339 with an offset; default: now. "
        "Offers are live for starts_at <= occurred_at < ends_at.",
    )
    transaction_id: ApiId | None = Field(
        default=None, description="The POS's id of the transaction; default: the event id."
    )
    transaction_number: str | None = Field(default=None, max_length=64)
    member_id: ApiId | None = Field(
        default=None, description="The member at the till; null or absent: anonymous."
    )
    market: Market
    currency: Currency
    source: Source = Source.INSTORE
    store: Store
    till_id: TillId | None = Field(default=None, description="The till (register).")
    lines: list[TransactionLine] = Field(
        min_length=1,
        max_length=LINES_MAX,
        description="The basket's lines as the POS priced them: `amount_cents` is what the "
        "line costs before this engine's discounts.",
    )
    promo_codes: list[ApiId] = Field(default_factory=list, max_length=50)
    redemption_tokens: list[ApiId] = Field(default_factory=list, max_length=50)
    tenders: list[Tender] = Field(default_factory=list, max_length=50)
    reserve: StrictBool = Field(
        default=False,
        description="Reserve each promo code that applies for this basket (needs "
        "`transaction_id`), and each use of a discount offer with a total-uses limit: the till "
        "may then give its discount, and the purchase carrying it is counted whatever happens "
        "in between. Without it nothing is counted.",
    )

    @field_validator("lines")
    @classmethod
    def _check_line_ids_unique(cls, lines: list[TransactionLine]) -> list[TransactionLine]:
        unique_line_ids([line.line_id for line in lines], "a cart")
        basket_within_bounds(lines, "a cart")
        return lines

    def transaction(self, *, event_id: str, occurred_at: datetime) -> TransactionCompleted:
        """The cart as the rules read it; `event_id` and `occurred_at` fill what it leaves out."""
        chosen = self.event_id or event_id
        return TransactionCompleted(
            event_id=chosen,
            occurred_at=self.occurred_at or occurred_at,
            transaction_id=self.transaction_id or chosen,
            transaction_number=self.transaction_number,
            member_id=self.member_id,
            market=self.market,
            currency=self.currency,
            source=self.source,
            store=self.store,
            till_id=self.till_id,
            lines=self.lines,
            promo_codes=self.promo_codes,
            redemption_tokens=self.redemption_tokens,
            tenders=self.tenders,
        )


class Body(BaseModel):
    """A response body: read-only once built."""

    model_config = ConfigDict(frozen=True)


class LineDiscount(Body):
    """Cents one offer takes off one line."""

    offer_id: str
    cents: int
    cart_level: bool = Field(description="True for a cart discount's share of this line.")


class CartLine(Body):
    """One line of the cart and what the offers take off it."""

    line_id: str
    sku: str
    amount_cents: int = Field(description="As given: before this engine's discounts.")
    item_discount_cents: int = Field(description="Taken off by item discounts.")
    cart_discount_cents: int = Field(description="This line's share of cart discounts.")
    net_amount_cents: int = Field(description="What the line costs after every discount.")
    discounts: list[LineDiscount] = Field(description="Item discounts first, then cart ones.")


class CartDiscount(Body):
    """A cart-level discount, whole (its shares are in the lines)."""

    offer_id: str
    cents: int


class ProgramPoints(Body):
    """Points the cart would earn in one programme."""

    program_id: str
    base_points: int = Field(
        description="The programme's base earn on the net basket: net of the offers' "
        "discounts and of the promo codes' and rewards' that apply, as the purchase the till "
        "sends will be."
    )
    offer_points: int = Field(description="Awards of the offers the cart completes.")
    total_points: int


class OfferApplied(Body):
    """A use of an offer the cart would complete."""

    offer_id: str
    program_id: str | None
    use_number: int
    multiples: int
    tier: int | None
    points: int = Field(description="Points awarded, after caps.")
    discount_cents: int


class BehaviourProgress(Body):
    """Progress on one behaviour of an offer, in its metric."""

    behaviour_index: int
    metric: str
    progress: str = Field(description="A decimal, as a string (cents, units, counts).")
    threshold: str


class OfferProgress(Body):
    """An offer the cart would move towards completion without completing it."""

    offer_id: str
    use_number: int
    progress: list[BehaviourProgress]


class OfferReservation(Body):
    """A discount offer with a total-uses limit, reserved for the basket when the till asks
    (`reserve`; docs/adr/0030-discount-offer-total-uses.md)."""

    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "examples": [
                {"offer_id": "FIRST100_TENOFF", "status": "reserved", "discount_cents": 1000,
                 "reserved_until": "2026-11-07T18:55:01Z", "reason": None},
                {"offer_id": "FIRST100_TENOFF", "status": "refused", "discount_cents": 0,
                 "reserved_until": None, "reason": "USES_SPENT"},
            ]
        },
    )  # fmt: skip

    offer_id: str
    status: Literal["reserved", "refused", "pending"] = Field(
        description="reserved: the discount is the basket's, and the member's purchase is "
        "counted whatever happens in between; refused: the offer's uses are spent (the cart "
        "was evaluated without it); pending: no answer in time (evaluated without it; evaluate "
        "again with the same transaction_id)."
    )
    discount_cents: int = Field(description="The discount reserved; 0 unless reserved.")
    reserved_until: datetime | None
    reason: str | None = Field(
        description="When refused: USES_SPENT (the offer's uses are granted) or USES_RESERVED "
        "(other tills hold the uses left: asking again later may succeed); when pending, why."
    )


class CartEvaluation(Body):
    """`POST /v1/carts/evaluate`: what the cart would get at checkout. Nothing is recorded."""

    member_id: str | None
    transaction_id: str
    occurred_at: datetime
    market: str
    currency: str
    lines: list[CartLine]
    cart_discounts: list[CartDiscount]
    total_before_cents: int
    total_discount_cents: int
    total_after_cents: int
    points: list[ProgramPoints] = Field(description="Per programme; empty for anonymous carts.")
    total_points: int
    offers_applied: list[OfferApplied]
    offers_progressed: list[OfferProgress]
    promo_codes: list[CodeCheck] = Field(
        default_factory=list,
        description="Per distinct promo code of the cart (those linked to the member "
        "included): whether it applies, its discount (a cart discount code's is not in the "
        "totals above, which are the offers', but the points are judged net of it; a code "
        "that unlocks an offer names it in "
        "`offer_id`, and that offer's discount is in them), and its reservation.",
    )
    offer_reservations: list[OfferReservation] = Field(
        default_factory=list,
        description="With `reserve`: per discount offer with a total-uses limit the cart "
        "would complete, its reservation; the lines and totals above include only those "
        "reserved.",
    )
    rewards: list[RewardCheck] = Field(
        default_factory=list,
        description="Per redemption token of the cart: whether the granted reward applies "
        "and what its discount takes off (not in the totals above, which are the offers', "
        "but the points are judged net of it); "
        "nothing is used until the transaction carries the token.",
    )


class RewardCheck(Body):
    """A granted reward's token at the till (`processors.rules.rewards.till`)."""

    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "examples": [
                {"token": "RWD-7Q2K-9XPL", "status": "applies",
                 "granted_reward_id": "GR-7f3a9c1e5b2d4a60", "reward_id": "FIVE_OFF_OVER_20",
                 "discount_cents": 500, "reason": None, "detail": None},
                {"token": "RWD-2M4N-8QWE", "status": "refused", "granted_reward_id": None,
                 "reward_id": None, "discount_cents": 0, "reason": "reward_not_yours",
                 "detail": "token RWD-2M4N-8QWE is another member's reward"},
            ]
        },
    )  # fmt: skip

    token: str = Field(description="As the cart sent it in `redemption_tokens`.")
    status: Literal["applies", "refused"]
    granted_reward_id: str | None = Field(
        description="The member's granted reward; null when it is not the cart member's."
    )
    reward_id: str | None = Field(description="Its master reward; null when not the member's.")
    discount_cents: int = Field(
        description="What its discount takes off this cart, priced on the lines before "
        "discounts, and at most what the cart's promo codes and the rewards before it leave "
        "of the cart (together they never take more than it); 0 if refused or if the reward "
        "gives no discount (fulfilled by its code)."
    )
    reason: str | None = Field(
        description="Once refused: reward_unknown, reward_not_yours, reward_used, "
        "reward_expired, min_spend_not_met, nothing_left (the cart's promo codes and the "
        "rewards before it already take the whole cart: the reward is kept); for a "
        "reward-store offer the member bought (listed here only when it gives nothing: one "
        "that applies is in `offers_applied`): "
        "reward_used, reward_locked (to another basket), offer_not_met."
    )
    detail: str | None
