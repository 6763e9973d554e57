"""Topic `loyalty.offers.v1`: what offers and challenges did for each member (targeted, loaded,
progressed, completed), keyed by member, and when an offer's budget ran out
(`OfferBudgetExhausted`, keyed by offer). Output only: produced by the engine.

Control-group members (DESIGN.md §5.16) get the same events, flagged `in_control_group`, so the
two groups can be compared; they are never awarded anything. Points awarded here are also
recorded in the ledger, which stays the source of truth for balances.
"""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import Field, model_validator

from processors.base import topics
from processors.contract.base import (
    LONG_MAX,
    Cents,
    ContractEnum,
    Event,
    Id,
    OfferId,
    Points,
    Quantity,
    Record,
    UtcDatetime,
)
from processors.contract.config import CodeIssuer
from processors.contract.internal import OfferUseDenial

TOPIC = topics.OFFERS.name


class ProgressMetric(ContractEnum):
    """What a behaviour's progress counts."""

    SPEND_CENTS = "SPEND_CENTS"  # eligible net spend, in minor units
    QUANTITY = "QUANTITY"  # units, litres or kg of eligible lines
    COUNT = "COUNT"  # qualifying transactions, visits or activities
    POINTS_REDEEMED = "POINTS_REDEEMED"  # points redeemed, for redemption behaviours
    UNKNOWN = "UNKNOWN"


class BudgetExhaustion(ContractEnum):
    """Which offer-level limit an offer spent."""

    USES_SPENT = "USES_SPENT"  # the total-uses limit was reached
    BUDGET_SPENT = "BUDGET_SPENT"  # the points budget was spent
    UNKNOWN = "UNKNOWN"


class BehaviourProgress(Record):
    """How far a member is towards one required behaviour of an offer."""

    behaviour_index: int = Field(
        ge=0,
        le=LONG_MAX,
        description="Position of the behaviour in the offer's behaviours, from 0.",
    )
    metric: ProgressMetric = Field(description="What progress and threshold count.")
    progress: Quantity = Field(description="Progress so far in the current use, in the metric.")
    threshold: Quantity = Field(description="The value that completes the behaviour.")


class OfferTargeted(Event):
    """A member was targeted with an offer: it now shows in their feed, or they were held out
    as control."""

    topic: ClassVar[str] = TOPIC

    member_id: Id = Field(description="The member targeted.")
    offer_id: OfferId = Field(description="The offer.")
    in_control_group: bool = Field(
        description="True when the member was held out as control: tracked, never rewarded, and "
        "for the life of the offer (a stable hash of offer_id and member_id)."
    )
    cause_event_id: Id = Field(
        description="event_id of what caused the targeting: the offer's publication, a "
        "DayStarted for delayed targeting, or the behaviour for dynamic targeting."
    )


class IssuedOfferMoved(Event):
    """A merge moved a reward-store offer the member merged away had bought and not used to
    the survivor: the same instance (id, token, price), the survivor's from now on."""

    topic: ClassVar[str] = TOPIC

    member_id: Id = Field(description="The survivor, who holds it now (the record key).")
    from_member_id: Id = Field(description="The member merged away, who bought it.")
    issued_offer_id: Id = Field(description="The instance moved (its id and token, kept).")
    offer_id: OfferId = Field(description="The offer it is an instance of.")
    reward_store_id: Id = Field(description="The reward store it was bought in.")
    points_spent: Points = Field(description="Points paid for it by the member merged away.")
    issued_at: UtcDatetime = Field(description="When it was bought.")
    cause_event_id: Id = Field(description="event_id of the merge step that moved it.")


class OfferLoaded(Event):
    """An offer was loaded to a member's account, or issued to them by a reward-store purchase."""

    topic: ClassVar[str] = TOPIC

    member_id: Id = Field(description="The member who holds the offer.")
    offer_id: OfferId = Field(description="The offer.")
    cause_event_id: Id = Field(description="event_id of the request that loaded it.")
    command_id: Id | None = Field(
        default=None, description="The command_id of that request, when it was one."
    )
    issued_offer_id: Id | None = Field(
        default=None,
        description="Id of the issued instance, for an offer bought in a reward store; the "
        "member locks and redeems it by this id.",
    )
    reward_store_id: Id | None = Field(
        default=None, description="The reward store it was bought in, if it was."
    )
    points_spent: Points = Field(
        default=0, description="Points paid for it in a reward store; 0 for a load to card."
    )

    @model_validator(mode="after")
    def _check_purchase(self) -> Self:
        if self.reward_store_id is not None and self.issued_offer_id is None:
            raise ValueError("an offer bought in a reward store has an issued_offer_id")
        return self


class OfferProgressed(Event):
    """A member's progress towards completing an offer changed."""

    topic: ClassVar[str] = TOPIC

    member_id: Id = Field(description="The member.")
    offer_id: OfferId = Field(description="The offer.")
    in_control_group: bool = Field(description="True when the member is held out as control.")
    cause_event_id: Id = Field(description="event_id of the event that made progress.")
    transaction_id: Id | None = Field(
        default=None, description="The transaction that made progress, if one did."
    )
    use_number: int = Field(
        ge=1,
        le=LONG_MAX,
        description="The use in progress: 1 for the first, counting completed uses + 1.",
    )
    progress: list[BehaviourProgress] = Field(
        min_length=1, description="Progress on each of the offer's behaviours, once each."
    )

    @model_validator(mode="after")
    def _check_each_behaviour_once(self) -> Self:
        indexes = [p.behaviour_index for p in self.progress]
        if len(set(indexes)) != len(indexes):
            raise ValueError("progress must list each behaviour_index at most once")
        return self


class OfferCompleted(Event):
    """A member completed one use of an offer and was awarded its reward (or, in the control
    group, would have been)."""

    topic: ClassVar[str] = TOPIC

    member_id: Id = Field(description="The member.")
    offer_id: OfferId = Field(description="The offer.")
    in_control_group: bool = Field(
        description="True when the member is held out as control: the award is 0 and "
        "points_due says what they would have earned."
    )
    cause_event_id: Id = Field(description="event_id of the event that completed the use.")
    transaction_id: Id | None = Field(
        default=None, description="The transaction that completed it, if one did."
    )
    use_number: int = Field(
        ge=1, le=LONG_MAX, description="Which use this completes: 1 for the first."
    )
    multiples: int = Field(
        default=1,
        ge=1,
        le=LONG_MAX,
        description="How many times the reward was paid inside this use: floor(progress / "
        "threshold) for For Every, 1 for Minimum (DESIGN.md §5.5, §5.19).",
    )
    tier: int | None = Field(
        default=None,
        ge=1,
        le=LONG_MAX,
        description="The reward tier paid, by position in the offer's tiers from 1; null when "
        "the offer has no tiers.",
    )
    program_id: Id | None = Field(
        default=None, description="The programme credited; set when points were awarded."
    )
    points_due: Points = Field(
        description="Points the offer yields for this use, before caps and budgets."
    )
    points_awarded: Points = Field(
        description="Points credited after caps and budgets clipped them (DESIGN.md §5.20)."
    )
    discount_cents: Cents = Field(
        default=0, description="Discount delivered at the till or checkout, in minor units."
    )
    issued_offer_id: Id | None = Field(
        default=None,
        description="For an offer bought in a reward store: the member's issued instance this "
        "use spent (the one the transaction carried); null for any other offer.",
    )

    @model_validator(mode="after")
    def _check_award(self) -> Self:
        if self.points_awarded > self.points_due:
            raise ValueError("caps only clip: points_awarded cannot exceed points_due")
        if self.in_control_group and (self.points_awarded or self.discount_cents):
            raise ValueError("a control-group member is never awarded anything")
        if self.points_awarded and self.program_id is None:
            raise ValueError("points awarded need the program_id credited")
        return self


class OfferBudgetExhausted(Event):
    """An offer's total-uses limit or points budget was spent: from now on it awards nothing
    to anyone (DESIGN.md §5.20). Emitted once per offer, by the agent keyed by the offer,
    with the grant that spent it; keyed by offer_id, not by member."""

    topic: ClassVar[str] = TOPIC
    key_field: ClassVar[str] = "offer_id"

    offer_id: OfferId = Field(description="The offer (the record key).")
    reason: BudgetExhaustion = Field(description="Which offer-level limit was spent.")
    uses_granted: int = Field(
        ge=0, le=LONG_MAX, description="Uses granted to all members together."
    )
    points_granted: Points = Field(description="Points granted to all members together.")
    uses_total_max: int | None = Field(
        default=None, ge=1, le=LONG_MAX, description="The total-uses limit in force (null: none)."
    )
    budget_points_max: Points | None = Field(
        default=None, gt=0, description="The points budget in force (null: none)."
    )
    last_member_id: Id = Field(description="The member whose granted use spent it.")
    request_event_id: Id = Field(description="event_id of the request whose grant spent it.")


class ChallengeProgressed(Event):
    """A member's progress towards a challenge's goal changed: up (a purchase, an activity, a
    step done in order) or down (a return, counted visits or spend leaving the rolling window
    at the day's start). docs/adr/0027-challenges.md."""

    topic: ClassVar[str] = TOPIC

    member_id: Id = Field(description="The member.")
    challenge_id: Id = Field(description="The challenge.")
    cause_event_id: Id = Field(
        description="event_id of the event that changed it (a purchase, return, activity or "
        "DayStarted)."
    )
    transaction_id: Id | None = Field(
        default=None, description="The transaction that changed it, if one did."
    )
    completion_number: int = Field(
        ge=1, le=LONG_MAX, description="The completion in progress: completions so far + 1."
    )
    metric: ProgressMetric = Field(description="What progress and threshold count.")
    progress: Quantity = Field(
        description="Progress so far towards this completion, in the metric (steps done, for "
        "a series of steps)."
    )
    threshold: Quantity = Field(description="The progress that completes the challenge.")
    oldest_counted_at: UtcDatetime | None = Field(
        default=None,
        description="With a rolling window (goal.window_days): when the oldest purchase or "
        "activity still counted happened; it stops counting window_days later. Null otherwise.",
    )


class ChallengeAwardTakenBack(Event):
    """A return took a completed challenge's qualifying purchase below its goal: the points it
    awarded are debited in the return's ledger event. The challenge stays completed (it is not
    re-opened) and a granted reward is not taken back (docs/adr/0027-challenges.md)."""

    topic: ClassVar[str] = TOPIC

    member_id: Id = Field(description="The member.")
    challenge_id: Id = Field(description="The challenge.")
    cause_event_id: Id = Field(description="event_id of the TransactionReturned.")
    transaction_id: Id = Field(description="The purchase the return was made against.")
    completion_number: int = Field(
        ge=1, le=LONG_MAX, description="The completion whose award is taken back."
    )
    completed_event_id: Id = Field(description="event_id of that ChallengeCompleted.")
    program_id: Id = Field(description="The programme debited.")
    points_taken_back: Points = Field(gt=0, description="Points debited.")


class ChallengeCompleted(Event):
    """A member completed a challenge and was awarded its points or reward."""

    topic: ClassVar[str] = TOPIC

    member_id: Id = Field(description="The member.")
    challenge_id: Id = Field(description="The challenge completed.")
    cause_event_id: Id = Field(description="event_id of the event that completed it.")
    completion_number: int = Field(
        ge=1,
        le=LONG_MAX,
        description="Which completion this is, for challenges that can repeat: 1 first.",
    )
    program_id: Id | None = Field(
        default=None, description="The programme credited; set when points were awarded."
    )
    points_awarded: Points = Field(default=0, description="Points credited for completing it.")
    reward_id: Id | None = Field(default=None, description="The master reward granted, if any.")
    granted_reward_id: Id | None = Field(
        default=None, description="The granted reward (see RewardGranted), if any."
    )

    @model_validator(mode="after")
    def _check_award(self) -> Self:
        if self.points_awarded and self.program_id is None:
            raise ValueError("points awarded need the program_id credited")
        if (self.reward_id is None) != (self.granted_reward_id is None):
            raise ValueError("reward_id and granted_reward_id go together")
        return self


# --- promo codes (docs/adr/0023-promo-codes.md) ---------------------------------------------


class PromoCodeRefusal(ContractEnum):
    """Why a promo code carried by a purchase gave nothing. Stable: new reasons go before
    UNKNOWN."""

    code_unknown = "code_unknown"  # no promotion issued this code
    code_not_yet_valid = "code_not_yet_valid"  # before the promotion's start
    code_expired = "code_expired"  # at or after the promotion's end
    code_exhausted = "code_exhausted"  # the code's or the promotion's uses are spent
    code_limit_per_customer = "code_limit_per_customer"  # this customer's uses are spent
    code_min_spend_not_met = "code_min_spend_not_met"  # the basket is below the least spend
    code_not_supported = "code_not_supported"  # a promotion this version does not apply yet
    code_not_applicable = "code_not_applicable"  # its offer is not open to this customer or
    # gave nothing on this purchase (docs/adr/0037-codes-that-unlock-an-offer.md)
    UNKNOWN = "UNKNOWN"


class PromoCodeRedeemed(Event):
    """A purchase used a promo code: one of its promotion's uses, counted in arrival order by
    the promotion's agent. Keyed by the member, or by the transaction for an anonymous
    customer, like the purchase."""

    topic: ClassVar[str] = TOPIC

    code: Id = Field(description="The code, upper-cased as codes compare.")
    promotion_id: Id = Field(description="The promotion that issued it.")
    member_id: Id | None = Field(default=None, description="The member; null: anonymous.")
    transaction_id: Id = Field(description="The purchase that used it.")
    transaction_number: str | None = Field(
        default=None, max_length=64, description="The receipt number, for member care."
    )
    store_id: Id | None = Field(default=None, description="The store it was used in.")
    discount_cents: Cents = Field(description="The discount the code gives on the purchase.")
    use_number: int = Field(
        ge=1, le=LONG_MAX, description="The promotion's use this is: 1 for the first."
    )
    cause_event_id: Id = Field(description="event_id of the purchase.")
    spend_cents: Cents | None = Field(
        default=None,
        description="The purchase's spend, after every discount (the revenue the use brought, "
        "for members and anonymous customers alike); null before it was recorded.",
    )
    issuer: CodeIssuer | None = Field(
        default=None,
        description="Who issued the code (its issue's issuer: a partner, an influencer), for "
        "attribution; null: the brand.",
    )

    def partition_key(self) -> str:
        return self.member_id or self.transaction_id


class PromoCodeRefused(Event):
    """A promo code a purchase carried gave nothing, with the reason (the till should have
    learned it from the cart evaluation). Keyed like the purchase."""

    topic: ClassVar[str] = TOPIC

    code: Id = Field(description="The code, upper-cased as codes compare.")
    promotion_id: Id | None = Field(default=None, description="Its promotion, when known.")
    member_id: Id | None = Field(default=None, description="The member; null: anonymous.")
    transaction_id: Id = Field(description="The purchase that carried it.")
    reason: PromoCodeRefusal = Field(description="Why, as a stable code.")
    detail: str = Field(min_length=1, max_length=500, description="Why, for a person.")
    cause_event_id: Id = Field(description="event_id of the purchase.")

    def partition_key(self) -> str:
        return self.member_id or self.transaction_id


class OfferUseReservationAnswered(Event):
    """The offer's agent answered a till's reservation of a discount offer's use
    (`OfferUseReservationRequested`): reserved until a time (the till may give the discount;
    the member's purchase will be counted, whatever happens in between), or refused because
    the offer's total uses are spent (the till gives the basket without it)."""

    topic: ClassVar[str] = TOPIC

    member_id: Id = Field(description="The member (the record key) whose basket it is.")
    offer_id: OfferId = Field(description="The offer.")
    transaction_id: Id = Field(description="The basket.")
    request_event_id: Id = Field(description="event_id of the reservation request answered.")
    reserved: bool = Field(description="True: a use is reserved; false: refused.")
    reserved_until: UtcDatetime | None = Field(
        default=None, description="When the reservation lapses, uncommitted; null if refused."
    )
    discount_cents: Cents = Field(description="The discount the offer gives on the basket.")
    reason: OfferUseDenial | None = Field(
        default=None,
        description="Why it was refused: `USES_SPENT` (the offer's total uses are granted) or "
        "`USES_RESERVED` (tills' live reservations hold the uses left; they may lapse or be "
        "released); null when reserved.",
    )


class PromoCodeLeaseAnswered(Event):
    """The promotion's agent answered an API process's lease request
    (`PromoCodeLeaseRequested`, docs/adr/0040-reservations-from-a-lease.md): `uses_granted`
    uses of the code set aside for that process until `leased_until` (0: none; the process
    asks the agent for each reservation meanwhile). Read by the API processes' answer readers;
    keyed by the promotion."""

    topic: ClassVar[str] = TOPIC
    key_field: ClassVar[str] = "promotion_id"

    promotion_id: Id = Field(description="The promotion (the record key).")
    code: Id = Field(description="The code leased, upper-cased.")
    holder: Id = Field(description="The API process that asked (host, pid and start).")
    lease_id: Id = Field(description="event_id of the lease request answered: the lease's id.")
    uses_granted: int = Field(
        ge=0,
        le=LONG_MAX,
        description="Uses set aside for the holder (counted as taken by the agent).",
    )
    leased_until: UtcDatetime = Field(
        description="When the uses the holder did not assign return to the promotion."
    )


class PromoCodeReserved(Event):
    """A code was reserved for a basket: the till may give its discount; the purchase that
    carries it will be counted, whatever happens in between. Keyed like the purchase."""

    topic: ClassVar[str] = TOPIC

    code: Id = Field(description="The code, upper-cased as codes compare.")
    promotion_id: Id = Field(description="The promotion that issued it.")
    member_id: Id | None = Field(default=None, description="The member; null: anonymous.")
    transaction_id: Id = Field(description="The basket it is reserved for.")
    reserved_until: UtcDatetime = Field(description="When the reservation lapses, uncommitted.")
    discount_cents: Cents = Field(description="The discount the code gives on the basket.")

    def partition_key(self) -> str:
        return self.member_id or self.transaction_id


class PromoCodeUnreserved(Event):
    """A basket's reservation of a code was given back before any purchase used it (the till
    cancelled the basket, `DELETE /v1/carts/{transaction_id}/reservations`): the use counts
    no more, for the code, its promotion and the member. Emitted by the promotion's agent only
    when a live reservation was dropped; keyed like the `PromoCodeReserved` it ends, so it is
    read after it."""

    topic: ClassVar[str] = TOPIC

    code: Id = Field(description="The code, upper-cased as codes compare.")
    promotion_id: Id = Field(description="The promotion that issued it.")
    member_id: Id | None = Field(default=None, description="The member; null: anonymous.")
    transaction_id: Id = Field(description="The basket whose reservation ended.")

    def partition_key(self) -> str:
        return self.member_id or self.transaction_id
