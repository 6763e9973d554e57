"""What the reward rules keep: a member's granted rewards and redemptions in flight (part of
the member's state), and what a reward's agent keeps about its stock."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from processors.contract.offer_definition import DiscountTerms
from processors.contract.redemptions import RewardGrantRecordRequested, RewardRedemptionRequested


class GrantedReward(BaseModel):
    """One reward a member holds (the wallet)."""

    granted_reward_id: str
    reward_id: str
    granted_at: datetime
    expires_at: datetime | None = None
    code: str | None = None
    command_id: str | None = None  # the redemption that bought it, if one did
    status: str = "ISSUED"  # ISSUED | REDEEMED | EXPIRED | MOVED (to a merge's survivor)
    closed_at: datetime | None = None  # when it was used or expired
    discount: DiscountTerms | None = None  # what it takes off at the till, as granted
    token: str | None = None  # what the till sends, when neither its code nor its id (a merge)
    points_spent: int = 0  # what the member paid for it (liability, a merge's copy)


class FreeGrant(BaseModel):
    """Why a reward is given without points (an offer's reward, later birthdays, sign-ups)."""

    reason: str  # a RewardGrantReason value
    cause_event_id: str
    at: datetime
    offer_id: str | None = None
    challenge_id: str | None = None
    program_id: str | None = None
    # The inbox message that announces it (sign-up and birthday grants), in the member's locale.
    locale: str | None = None
    title: str | None = None
    body: str | None = None
    # An upstream system's grant (RewardGrantRecordRequested): the code it chose, and the
    # request to answer once the grant is booked or refused.
    code: str | None = None
    request: RewardGrantRecordRequested | None = None


class PendingRedemption(BaseModel):
    """A grant waiting for the reward's agent: a redemption (its points reserved meanwhile),
    or a free grant."""

    reward_id: str
    program_id: str
    points: int
    quantity: int
    request: RewardRedemptionRequested | None = None  # to answer it once allocated
    grant: FreeGrant | None = None  # or the free grant's cause
    digest: str = ""  # of the request's body (rules.identity)
    # The reward version's validity where it was requested: days after the grant, else its end.
    valid_days: int | None = None
    valid_until: datetime | None = None
    discount: DiscountTerms | None = None  # the version's discount, kept by the grant


class MemberRewards(BaseModel):
    """Everything the reward rules know about one member."""

    granted: dict[str, GrantedReward] = Field(default_factory=dict)
    pending: dict[str, PendingRedemption] = Field(default_factory=dict)  # by command_id

    def held(self, reward_id: str) -> int:
        """Grants of `reward_id` the member holds or waits for (the per-member limit)."""
        owned = sum(1 for g in self.granted.values() if g.reward_id == reward_id)
        waiting = sum(p.quantity for p in self.pending.values() if p.reward_id == reward_id)
        return owned + waiting


class RewardStock(BaseModel):
    """What a reward's agent keeps: its codes not yet given, what it gave, and each member
    request's answer (so a redelivered request gets the same answer)."""

    reward_id: str
    codes: list[str] = Field(default_factory=list)  # in the order they were stocked
    given: int = 0  # grants given (the total-grants limit)
    batches: list[str] = Field(default_factory=list)  # event ids of the batches stocked
    answers: dict[str, list[str] | str] = Field(default_factory=dict)
    """member|command → the codes given ([] without a code stock), or the refusal's reason."""
    released: list[str] = Field(default_factory=list)  # member|command given back
