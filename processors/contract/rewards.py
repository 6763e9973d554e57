"""Topic `loyalty.rewards.v1`: the life of granted rewards (granted, redeemed, expired), keyed
by member. CRM subscribes here.

A granted reward is one instance of a master reward given to one member, often with a unique
code from the reward's code stock (seed 004). Points spent on it are in the ledger, not here.
"""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import Field, model_validator

from processors.base import topics
from processors.contract.base import Cents, ContractEnum, Event, Id, OfferId, Points, UtcDatetime
from processors.contract.common import Source
from processors.contract.offer_definition import DiscountTerms

TOPIC = topics.REWARDS.name


class RewardGrantReason(ContractEnum):
    """Why a member was granted a reward."""

    REDEMPTION = "REDEMPTION"  # bought with points (RewardRedemptionRequested)
    ENROLMENT = "ENROLMENT"  # a sign-up reward
    BIRTHDAY = "BIRTHDAY"
    OFFER = "OFFER"  # an offer's reward
    CHALLENGE = "CHALLENGE"  # a completed challenge's reward
    BACK_OFFICE = "BACK_OFFICE"  # given by staff (goodwill, member care)
    MERGE = "MERGE"  # the survivor's copy of a reward the member merged into it held
    EXTERNAL = "EXTERNAL"  # attributed by an upstream system (RewardGrantRecordRequested)
    UNKNOWN = "UNKNOWN"


class RewardGranted(Event):
    """A member was granted a reward."""

    topic: ClassVar[str] = TOPIC

    member_id: Id = Field(description="The member who holds the reward.")
    granted_reward_id: Id = Field(
        description="Id of this granted reward, derived deterministically from its cause so a "
        "replay grants the same id."
    )
    reward_id: Id = Field(description="The master reward (catalogue item) granted.")
    reason: RewardGrantReason = Field(description="Why the reward was granted.")
    program_id: Id | None = Field(
        default=None, description="The programme whose points paid for it, for REDEMPTION."
    )
    points_spent: Points = Field(
        default=0, description="Points the member paid for it; 0 for a reward given free."
    )
    code: Id | None = Field(
        default=None,
        description="The unique code taken from the reward's code stock; null when the reward "
        "has no code stock.",
    )
    redemption_token: Id = Field(
        description="What the till or checkout sends in TransactionCompleted.redemption_tokens "
        "to use the reward: the code when there is one, else the granted_reward_id."
    )
    expires_at: UtcDatetime | None = Field(
        default=None, description="When the reward can no longer be used (null: never)."
    )
    cause_event_id: Id = Field(description="event_id of the input event that caused the grant.")
    command_id: Id | None = Field(
        default=None, description="The redemption request's command_id, for REDEMPTION."
    )
    offer_id: OfferId | None = Field(default=None, description="The offer, for OFFER.")
    challenge_id: Id | None = Field(default=None, description="The challenge, for CHALLENGE.")
    discount: DiscountTerms | None = Field(
        default=None,
        description="The discount this granted reward gives at the till, as the reward's "
        "version had it when granted (a later edit of the reward does not change it); null: "
        "fulfilled outside the cart by its code.",
    )

    @model_validator(mode="after")
    def _check_consistency(self) -> Self:
        if self.reason is RewardGrantReason.REDEMPTION and (
            self.command_id is None or self.program_id is None
        ):
            raise ValueError("a reward bought with points names its command_id and program_id")
        if self.expires_at is not None and self.expires_at <= self.occurred_at:
            raise ValueError("a reward cannot expire before it is granted")
        return self


class RewardRedeemed(Event):
    """A member used a granted reward; it cannot be used again."""

    topic: ClassVar[str] = TOPIC

    member_id: Id = Field(description="The member who used the reward.")
    granted_reward_id: Id = Field(description="The granted reward used.")
    reward_id: Id = Field(description="Its master reward.")
    code: Id | None = Field(default=None, description="Its unique code, if it has one.")
    cause_event_id: Id = Field(
        description="event_id of the input event in which it was used (usually a "
        "TransactionCompleted)."
    )
    source: Source = Field(description="The channel it was used in.")
    transaction_id: Id | None = Field(
        default=None, description="The transaction it was used in, if any."
    )
    store_id: Id | None = Field(default=None, description="The store, when used in one.")
    till_id: str | None = Field(default=None, max_length=64, description="The till, if any.")
    discount_cents: Cents | None = Field(
        default=None,
        description="Cents the reward's discount took off the transaction, priced on its lines "
        "before discounts; null: the reward gives no discount (fulfilled by its code).",
    )


class RewardMoved(Event):
    """A merge took an issued reward from the member merged away: it is closed on their side
    and the survivor holds it from now on (a `RewardGranted` with reason MERGE, same code,
    token, expiry and discount). Seed 004: a granted reward is tied to a member's card."""

    topic: ClassVar[str] = TOPIC

    member_id: Id = Field(description="The member merged away, who held it (the record key).")
    to_member_id: Id = Field(description="The survivor, who holds it now.")
    granted_reward_id: Id = Field(description="The granted reward moved (the victim's id).")
    reward_id: Id = Field(description="Its master reward.")
    code: Id | None = Field(default=None, description="Its unique code, if it has one.")
    cause_event_id: Id = Field(description="event_id of the MembersMerged that moved it.")


class RewardExpired(Event):
    """A granted reward reached its expiry unused; occurred_at is when the expiry run happened."""

    topic: ClassVar[str] = TOPIC

    member_id: Id = Field(description="The member who held the reward.")
    granted_reward_id: Id = Field(description="The granted reward that expired.")
    reward_id: Id = Field(description="Its master reward.")
    code: Id | None = Field(default=None, description="Its unique code, if it had one.")
    expires_at: UtcDatetime = Field(description="The expiry that passed.")
    cause_event_id: Id = Field(description="event_id of the DayStarted that ran the expiry.")

    @model_validator(mode="after")
    def _check_expiry_has_passed(self) -> Self:
        if self.expires_at > self.occurred_at:
            raise ValueError("a reward cannot expire before its expires_at")
        return self
