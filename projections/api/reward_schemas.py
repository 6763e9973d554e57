"""Request and response bodies of the reward endpoints (also their OpenAPI description).

Field names follow the contract's JSON form (`RewardPublished`, `RewardGranted`,
`RequestAccepted`/`RequestRejected`), timestamps RFC 3339 in UTC, points as integers. Owns
shapes only; never queries nor decides.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from projections.api.identifiers import ApiId
from projections.api.schemas import Body, Instant

StockState = Literal["available", "low", "out"]
RedemptionStatus = Literal["accepted", "rejected", "pending"]
GrantedStatus = Literal["ISSUED", "REDEEMED", "EXPIRED", "MOVED"]


class RewardCopy(Body):
    """The reward's customer-facing copy in one language."""

    locale: str = Field(description="The language of this copy (en or fr).")
    headline: str
    short_description: str
    long_description: str | None = None
    terms: str | None = None
    image_url: str | None = None


class Stock(Body):
    """How much of the reward is left for all members together."""

    state: StockState = Field(
        description="`out`: nothing left (a redemption is refused `out_of_stock`); `low`: fewer "
        "than 10 left; `available`: 10 or more, or no limit."
    )
    remaining: int | None = Field(
        description="Codes left in the stock, or grants left under the reward's total limit "
        "(the smaller, when both); null: no limit. Redemptions in flight are not subtracted."
    )


class MemberView(Body):
    """The reward as the member asking sees it."""

    eligible: bool = Field(
        description="The member is active and in the programme whose points pay for it."
    )
    affordable: bool = Field(
        description="The member's REGULAR balance in that programme covers the cost, as the "
        "projection stands (points reserved by redemptions in flight are not known here)."
    )
    balance: int = Field(description="That balance.")


class CatalogueReward(Body):
    """A reward for sale now."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    reward_id: str
    program_id: str = Field(description="The programme whose points pay for it.")
    market: str
    points_cost: int = Field(description="Points one unit costs.")
    copy_: RewardCopy = Field(alias="copy", serialization_alias="copy")
    available_from: Instant
    available_until: Instant | None = Field(description="Null: no end.")
    granted_valid_days: int | None = Field(
        description="Days a granted reward stays usable; null: until the reward's own end."
    )
    grants_per_member_max: int | None = Field(description="Null: no per-member limit.")
    uses_code_stock: bool = Field(description="Each grant carries a unique code.")
    discount: dict[str, Any] | None = Field(
        description="The discount it gives in a cart (`RewardPublished.discount`, JSON form); "
        "null: fulfilled outside the cart by its code."
    )
    stock: Stock
    member: MemberView | None = Field(
        description="With a member token, or `member_id` for staff; null otherwise."
    )


class Catalogue(Body):
    """`GET /v1/rewards`."""

    market: str
    locale: str = Field(description="The language asked for (copy falls back to en).")
    member_id: str | None = Field(description="Whose view `member` is; null: anonymous.")
    rewards: list[CatalogueReward] = Field(description="Cheapest first, then by reward_id.")


class WalletReward(Body):
    """One reward the member holds or held."""

    granted_reward_id: str
    reward_id: str
    status: GrantedStatus = Field(
        description="ISSUED: usable; REDEEMED: used at the till; EXPIRED: expired unused; "
        "MOVED: moved by a merge to the member it was merged into (in their wallet now)."
    )
    is_usable: bool = Field(description="ISSUED and not past its expiry at the time of reading.")
    reason: str = Field(
        description="Why it was granted: REDEMPTION (bought with points), OFFER, CHALLENGE, "
        "BIRTHDAY, ENROLMENT, BACK_OFFICE."
    )
    code: str | None = Field(description="Its unique code from the reward's stock, if any.")
    redemption_token: str = Field(
        description="What the till sends in `redemption_tokens` to use it: the code, else the "
        "granted reward's id."
    )
    expires_at: Instant | None = Field(description="Null: never expires.")
    granted_at: Instant
    closed_at: Instant | None = Field(description="When it was used or expired.")
    program_id: str | None
    points_spent: int
    command_id: str | None = Field(description="The redemption that bought it, if one did.")
    offer_id: str | None
    challenge_id: str | None


class WalletPageInfo(Body):
    """Where this page sits: pass `next_cursor` as `cursor` for the next one."""

    limit: int
    has_more: bool
    next_cursor: str | None


class Wallet(Body):
    """`GET /v1/members/{id}/rewards`."""

    member_id: str
    page: WalletPageInfo
    rewards: list[WalletReward] = Field(description="Newest grant first.")


class RedemptionRequest(BaseModel):
    """The body of `POST /v1/members/{id}/redemptions`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reward_id: ApiId = Field(description="The reward to redeem.", examples=["FREE_MUFFIN"])
    program_id: ApiId = Field(
        description="The programme whose points pay (the reward's own).", examples=["CA_REWARDS"]
    )
    quantity: StrictInt = Field(  # "2" is not a number of rewards (it redeemed two)
        default=1, ge=1, le=100, description="How many; each is a granted reward of its own."
    )


class Redemption(Body):
    """A reward redemption and, once decided, its outcome."""

    command_id: str = Field(description="The Idempotency-Key.")
    member_id: str
    request_event_id: str = Field(
        description="The RewardRedemptionRequested's id, derived from the member and the key."
    )
    status: RedemptionStatus = Field(
        description="accepted (granted and debited), rejected (nothing changed; see reason), "
        "or pending (written, not decided yet: ask `status_url`)."
    )
    status_url: str = Field(description="Where this redemption's state can be read again.")
    reward_id: str | None = Field(description="As requested; null if not requested here.")
    program_id: str | None
    quantity: int | None
    points_debited: int | None = Field(description="Points taken, once accepted.")
    ledger_event_log_id: str | None = Field(description="The ledger event of the debit.")
    granted_rewards: list[WalletReward] = Field(
        description="The rewards granted, with their codes or tokens and expiry."
    )
    reason: str | None = Field(
        description="Once rejected: a stable code (insufficient_points, out_of_stock, "
        "reward_expired, reward_unavailable, not_eligible, limit_reached, unknown_reward, "
        "unknown_member, member_merged)."
    )
    detail: str | None = Field(description="The outcome's note for a person; never parsed.")
    decided_at: Instant | None
