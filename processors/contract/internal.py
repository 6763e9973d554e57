"""Internal topics: `loyalty.internal.ledger-steps.v1`, the second step of two-member
operations (and the offer and reward agents' answers), `loyalty.internal.offer-uses.v1`, the
requests for uses of offers with offer-level limits, and `loyalty.internal.reward-stock.v1`,
each reward's code stock and the members' requests for one of its grants.

A transfer, a merge or a referral is decided on the sender's (victim's, referred member's)
partition, which records its side and emits one of these, keyed by the other member, so the
receiver's partition applies the other side (DESIGN.md §2). Each step carries a deterministic
event_id, and the receiver applies a step once, so a crash between the steps neither loses nor
doubles points.
Internal to the engine: not for upstream producers.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from processors.base import topics
from processors.contract.activities import ActivityKind, ActivityRecorded
from processors.contract.base import (
    LONG_MAX,
    Cents,
    ContractEnum,
    Currency,
    Event,
    Id,
    Market,
    OfferId,
    Points,
    Record,
    UtcDatetime,
)
from processors.contract.common import PointsCategory, Source, Store
from processors.contract.config import CodeIssuer
from processors.contract.ledger import AccountBalance, EntryKind, EntryType
from processors.contract.offer_definition import DiscountTerms
from processors.contract.outcomes import RejectionReason
from processors.contract.transactions import Tender, TransactionCompleted, TransactionLine

TOPIC = topics.LEDGER_STEPS.name


class LotPoints(Record):
    """Points moved out of one lot, so the receiver keeps their expiry."""

    expires_at: UtcDatetime | None = Field(description="Expiry of the lot (null: never).")
    points: Points = Field(description="Points moved from that lot.")


class PointsTransferDebited(Event):
    """The sender's side of a transfer was recorded; the recipient is to be credited."""

    topic: ClassVar[str] = TOPIC

    member_id: Id = Field(description="The recipient (the record key), to be credited.")
    sender_member_id: Id = Field(description="The member whose points were debited.")
    program_id: Id = Field(description="The programme of both accounts.")
    command_id: Id = Field(description="The transfer request's command_id.")
    request_event_id: Id = Field(description="event_id of the transfer request.")
    source: Source = Field(description="The channel of the transfer request.")
    lots: list[LotPoints] = Field(description="The points debited, by the lot they came from.")


class PointsTransferBounced(Event):
    """The recipient could not take a transfer; the sender is to be credited back."""

    topic: ClassVar[str] = TOPIC

    member_id: Id = Field(description="The sender (the record key), to be credited back.")
    recipient_member_id: Id = Field(description="The member who could not take the points.")
    program_id: Id = Field(description="The programme of the transfer.")
    command_id: Id = Field(description="The transfer request's command_id.")
    source: Source = Field(description="The channel of the transfer request.")
    reason: str = Field(max_length=200, description="Why the recipient could not take them.")
    lots: list[LotPoints] = Field(description="The points to give back, by lot.")
    rejection: RejectionReason | None = Field(
        default=None,
        description="The reason the sender's answer to the transfer gives (unknown_member, "
        "member_merged, not_eligible); null from an engine before answers waited for the "
        "recipient (its sender had answered accepted already).",
    )


class PointsTransferCredited(Event):
    """The recipient took a transfer: the sender's partition answers the request accepted."""

    topic: ClassVar[str] = TOPIC

    member_id: Id = Field(description="The sender (the record key), whose request is answered.")
    recipient_member_id: Id = Field(description="The member credited.")
    program_id: Id = Field(description="The programme of the transfer.")
    command_id: Id = Field(description="The transfer request's command_id.")
    points: Points = Field(description="Points credited to the recipient.")
    recipient_ledger_event_log_id: Id = Field(
        description="The recipient's ledger event that credited them."
    )


class HeldPoints(Record):
    """Points still held (PROMISED or TRIGGER) when their member was merged away."""

    program_id: Id = Field(description="The programme of the account.")
    category: PointsCategory = Field(description="PROMISED or TRIGGER.")
    points: Points = Field(description="Points still held.")
    expires_at: UtcDatetime | None = Field(description="Expiry of their lot (null: never).")
    release_at: UtcDatetime | None = Field(
        description="When they convert to REGULAR by time (null: on the programme's activity)."
    )
    transaction_id: Id = Field(description="The purchase that earned them.")


class MovedReward(Record):
    """A granted reward the victim of a merge still held (issued, unused): the survivor's now,
    with its code, token, expiry and discount unchanged."""

    granted_reward_id: Id = Field(description="The victim's granted reward.")
    reward_id: Id = Field(description="Its master reward.")
    granted_at: UtcDatetime = Field(description="When the victim was granted it.")
    expires_at: UtcDatetime | None = Field(description="When it can no longer be used.")
    code: Id | None = Field(description="Its unique code, if it has one.")
    redemption_token: Id = Field(description="What the till sends to use it (kept).")
    points_spent: Points = Field(description="Points the victim paid for it (0 if given).")
    discount: DiscountTerms | None = Field(description="Its discount at the till, as granted.")


class MovedIssuedOffer(Record):
    """A reward-store offer the victim of a merge bought and had not used: the survivor's now,
    under the same id (the token the till sends)."""

    issued_offer_id: Id = Field(description="The instance (its id and token, kept).")
    offer_id: OfferId = Field(description="The offer it is an instance of.")
    reward_store_id: Id = Field(description="The reward store it was bought in.")
    points_spent: Points = Field(description="Points the victim paid for it.")
    issued_at: UtcDatetime = Field(description="When the victim bought it.")
    status: str = Field(
        max_length=16,
        description="ISSUED (free), LOCKED (held for a basket) or REDEEMED (spent at once for a "
        "basket whose purchase has not come yet): the survivor's as it was.",
    )
    transaction_id: Id | None = Field(
        default=None, description="The basket it is locked to or redeemed for, if any."
    )
    locked_until: UtcDatetime | None = Field(
        default=None, description="When its lock lapses, if locked."
    )


class MemberMergedAway(Event):
    """The victim's side of a merge was recorded; the survivor takes over its balances and the
    rewards it held."""

    topic: ClassVar[str] = TOPIC

    member_id: Id = Field(description="The survivor (the record key).")
    victim_member_id: Id = Field(description="The member merged away.")
    source: Source = Field(description="The channel the merge came through.")
    accounts: list[AccountBalance] = Field(
        description="The victim's accounts as they stood before the merge (negative ones too)."
    )
    held: list[HeldPoints] = Field(
        default_factory=list,
        description="The victim's held points, so they still convert on the survivor's side.",
    )
    rewards: list[MovedReward] = Field(
        default_factory=list,
        description="The victim's granted rewards still usable (issued), for the survivor's "
        "wallet.",
    )
    issued_offers: list[MovedIssuedOffer] = Field(
        default_factory=list,
        description="The reward-store offers the victim bought and had not used, for the "
        "survivor's.",
    )


class ReferralQualified(Event):
    """A referred member's qualifying purchase was recorded; the referrer is to be credited.

    Emitted once per referred member and programme (the referred member's state remembers it),
    with an event_id derived from the referred member, the purchase and the programme.
    """

    topic: ClassVar[str] = TOPIC

    member_id: Id = Field(description="The referrer (the record key), to be credited.")
    referred_member_id: Id = Field(description="The member whose purchase qualified.")
    program_id: Id = Field(description="The programme whose referral policy pays.")
    points: Points = Field(
        gt=0, description="Points due to the referrer, decided by the policy at the purchase."
    )
    transaction_id: Id = Field(description="The qualifying purchase.")
    purchase_event_id: Id = Field(description="event_id of the qualifying purchase.")
    source: Source = Field(description="The channel of the qualifying purchase.")


class ReferralReturned(Event):
    """The qualifying purchase of a referral was returned and no longer qualifies; the
    referrer's referral points are to be taken back (seed 001: "Return of Referral points")."""

    topic: ClassVar[str] = TOPIC

    member_id: Id = Field(description="The referrer (the record key), to be debited.")
    referred_member_id: Id = Field(description="The member whose purchase came back.")
    program_id: Id = Field(description="The programme of the referral.")
    points: Points = Field(gt=0, description="The points the referral credited, taken back.")
    qualified_event_id: Id = Field(
        description="event_id of the ReferralQualified step it reverses; a referrer that never "
        "took that step is not debited."
    )
    return_id: Id = Field(description="The return that left the purchase not qualifying.")
    return_event_id: Id = Field(description="event_id of that return.")
    source: Source = Field(description="The channel of the return.")


# --- offer-level limits (docs/adr/0014-offer-level-caps.md) ---------------------------------

OFFER_USES_TOPIC = topics.OFFER_USES.name


class OfferUseRequested(Event):
    """A member completed a use of an offer that has a total-uses limit or a points budget;
    the offer's agent is to grant or deny it, in arrival order (DESIGN.md §2: cross-member
    limits are decided by an agent keyed by the offer).

    Emitted once per member and use (the member's state keeps the use pending), with an
    event_id derived from the completing cause, the offer and the use number, so a redelivery
    is recognised and answered with the original decision.
    """

    topic: ClassVar[str] = OFFER_USES_TOPIC
    key_field: ClassVar[str] = "offer_id"

    offer_id: OfferId = Field(description="The offer (the record key).")
    member_id: Id = Field(description="The member whose use waits for the decision.")
    use_number: int = Field(
        ge=1, le=LONG_MAX, description="The member's use of the offer: 1 for the first."
    )
    program_id: Id = Field(description="The programme the award would credit.")
    points_due: Points = Field(description="Points the use yields before any cap.")
    points_requested: Points = Field(
        ge=0,
        description="Points after the member-level caps (per transaction, per member); the "
        "budget may clip them further, never raise them. 0: a discount-only use, granted "
        "while the offer's total uses last (docs/adr/0030-discount-offer-total-uses.md).",
    )
    uses_total_max: int | None = Field(
        default=None,
        ge=1,
        le=LONG_MAX,
        description="The offer's total-uses limit where the use completed.",
    )
    budget_points_max: Points | None = Field(
        default=None,
        gt=0,
        description="The offer's points budget where the use completed: budget_points_max, "
        "else total uses × points per member when both are set (null: no points budget).",
    )
    cause_event_id: Id = Field(description="event_id of the event that completed the use.")
    transaction_id: Id | None = Field(
        default=None, description="The transaction that completed it, if one did."
    )
    completed_event_id: Id = Field(
        description="event_id the OfferCompleted of this use carries once it is granted."
    )
    discount_cents: Cents = Field(
        default=0,
        description="The discount the use gives on its purchase (0: a points use). A use "
        "whose purchase had a reservation commits it, whatever the limits say by then.",
    )


class OfferUseDenial(ContractEnum):
    """Why an offer's agent denied a use."""

    USES_SPENT = "USES_SPENT"  # the total-uses limit was reached
    BUDGET_SPENT = "BUDGET_SPENT"  # the points budget was spent
    USES_RESERVED = "USES_RESERVED"  # tills' live reservations hold the uses left: may free up
    CODE_REFUSED = "CODE_REFUSED"  # the code that unlocked the offer was refused: not closed
    UNKNOWN = "UNKNOWN"


class OfferUseGranted(Event):
    """The offer's agent granted a member's pending use (or the promotion's agent counted the
    promo code that unlocked it); the member's partition completes it (OfferCompleted and its
    OFFER_AWARD), once."""

    topic: ClassVar[str] = TOPIC

    member_id: Id = Field(description="The member (the record key) whose use is granted.")
    offer_id: OfferId = Field(description="The offer.")
    use_number: int = Field(ge=1, le=LONG_MAX, description="The member's use granted.")
    request_event_id: Id = Field(description="event_id of the OfferUseRequested answered.")
    points_requested: Points = Field(description="Points the request asked for.")
    points_granted: Points = Field(
        ge=0,
        description="Points granted: the request's, clipped to what the budget had left "
        "(DESIGN.md §5.20: 800 due, 300 left → 300); 0 for a discount-only use.",
    )


class OfferUseDenied(Event):
    """The offer's agent denied a member's pending use: its total uses or budget were spent (or
    the promotion's agent refused the promo code that unlocked it). The member's partition pays
    nothing and does not count the use."""

    topic: ClassVar[str] = TOPIC

    member_id: Id = Field(description="The member (the record key) whose use is denied.")
    offer_id: OfferId = Field(description="The offer.")
    use_number: int = Field(ge=1, le=LONG_MAX, description="The member's use denied.")
    request_event_id: Id = Field(description="event_id of the OfferUseRequested answered.")
    reason: OfferUseDenial = Field(
        description="Which offer-level limit was spent, or CODE_REFUSED: the code was refused."
    )


class OfferUseReservationRequested(Event):
    """A till asks, before the purchase completes, whether a discount offer with a total-uses
    limit applies to its basket: the offer's agent reserves one use until `reserved_until`
    (reserve → commit, DESIGN.md §5.25); the member's purchase commits it, and a till told
    yes is never overruled. Asking again for the same basket extends the reservation."""

    topic: ClassVar[str] = OFFER_USES_TOPIC
    key_field: ClassVar[str] = "offer_id"

    offer_id: OfferId = Field(description="The offer (the record key).")
    member_id: Id = Field(description="The member whose basket it is.")
    transaction_id: Id = Field(description="The basket the use is reserved for.")
    reserved_until: UtcDatetime = Field(description="When the reservation lapses, uncommitted.")
    discount_cents: Cents = Field(description="The discount the offer gives on the basket.")
    uses_total_max: int = Field(ge=1, le=LONG_MAX, description="The offer's total-uses limit.")


class OfferUseReservationReleased(Event):
    """The basket was abandoned or cancelled: its reservation of a discount offer's use is
    given back at once (a use its purchase already committed stays committed)."""

    topic: ClassVar[str] = OFFER_USES_TOPIC
    key_field: ClassVar[str] = "offer_id"

    offer_id: OfferId = Field(description="The offer (the record key).")
    transaction_id: Id = Field(description="The basket whose reservation is released.")


class PurchaseForwarded(Event):
    """A purchase made on a member merged away, forwarded to the survivor, who is credited as
    if they had made it: a merge must not make later purchases on the old card earn nothing
    (DESIGN.md §5.18). Carries the purchase whole; its ids stay the original's."""

    topic: ClassVar[str] = TOPIC

    member_id: Id = Field(description="The survivor (the record key), to be credited.")
    victim_member_id: Id = Field(description="The member merged away the purchase was made on.")
    purchase_event_id: Id = Field(description="event_id of the original TransactionCompleted.")
    transaction_id: Id = Field(description="The retailer's unique transaction id.")
    transaction_number: str | None = Field(
        default=None, max_length=64, description="Receipt number printed for the customer."
    )
    market: Market = Field(description="The market (programme country) of the store.")
    currency: Currency = Field(description="ISO 4217 currency of every amount in the event.")
    source: Source = Field(description="The channel the purchase was made in.")
    store: Store = Field(description="The store the purchase was made in.")
    till_id: str | None = Field(default=None, max_length=64, description="The till (register).")
    lines: list[TransactionLine] = Field(
        min_length=1, description="The basket's lines, as the purchase carried them."
    )
    promo_codes: list[Id] = Field(default_factory=list, description="Promo codes of the purchase.")
    redemption_tokens: list[Id] = Field(
        default_factory=list, description="Redemption tokens of the purchase."
    )
    tenders: list[Tender] = Field(default_factory=list, description="How it was paid.")

    @classmethod
    def of(cls, purchase: TransactionCompleted, survivor: str, event_id: str) -> PurchaseForwarded:
        """The step forwarding `purchase` (made on a merged member) to `survivor`."""
        return cls(
            event_id=event_id,
            occurred_at=purchase.occurred_at,
            member_id=survivor,
            victim_member_id=purchase.member_id or purchase.transaction_id,
            purchase_event_id=purchase.event_id,
            **purchase.model_dump(
                include={"transaction_id", "transaction_number", "market", "currency", "source",
                         "store", "till_id", "lines", "promo_codes", "redemption_tokens",
                         "tenders"}
            ),
        )  # fmt: skip

    def purchase(self) -> TransactionCompleted:
        """The purchase, as the survivor's: same ids, the survivor as the member."""
        fields = self.model_dump(
            exclude={"event_id", "member_id", "victim_member_id", "purchase_event_id"}
        )
        return TransactionCompleted(
            event_id=self.purchase_event_id, member_id=self.member_id, **fields
        )


class ActivityForwarded(Event):
    """An activity recorded for a member merged away, forwarded to the survivor, whose offers
    and challenges count it as theirs: the app may still send the old account's events after
    a merge, as a till its purchases (`PurchaseForwarded`). Carries the activity whole; its id
    stays the original's."""

    topic: ClassVar[str] = TOPIC

    member_id: Id = Field(description="The survivor (the record key), who counts it.")
    victim_member_id: Id = Field(description="The member merged away it was recorded for.")
    activity_event_id: Id = Field(description="event_id of the original ActivityRecorded.")
    kind: ActivityKind = Field(description="What the member did.")
    custom_name: Id | None = Field(
        default=None, description="The business-defined activity's name (CUSTOM)."
    )
    challenge_id: Id | None = Field(
        default=None, description="The challenge a CHALLENGE_STEP counts towards."
    )
    step: Id | None = Field(default=None, description="CHALLENGE_STEP: which step was done.")
    source: Source = Field(description="The channel the activity happened in.")
    attributes: dict[str, str] = Field(
        default_factory=dict, description="Facts about the activity, as recorded."
    )

    @classmethod
    def of(cls, activity: ActivityRecorded, survivor: str, event_id: str) -> ActivityForwarded:
        """The step forwarding `activity` (of a merged member) to `survivor`."""
        return cls(
            event_id=event_id, occurred_at=activity.occurred_at, member_id=survivor,
            victim_member_id=activity.member_id, activity_event_id=activity.event_id,
            **activity.model_dump(
                include={"kind", "custom_name", "challenge_id", "step", "source", "attributes"}
            ),
        )  # fmt: skip

    def activity(self) -> ActivityRecorded:
        """The activity, as the survivor's: the same id, the survivor as the member."""
        fields = self.model_dump(
            exclude={"event_id", "member_id", "victim_member_id", "activity_event_id"}
        )
        return ActivityRecorded(event_id=self.activity_event_id, member_id=self.member_id, **fields)


class ForwardedEntry(Record):
    """One ledger entry a return decided on a merged member, for the survivor to book."""

    program_id: Id = Field(description="The programme of the account.")
    category: PointsCategory = Field(description="The points category decided (REGULAR).")
    entry_type: EntryType = Field(description="CREDIT adds points, DEBIT takes them.")
    kind: EntryKind = Field(description="RETURN, or REDEMPTION_REVERSAL.")
    points: Points = Field(description="Points moved, always >= 0.")
    expires_at: UtcDatetime | None = Field(
        default=None, description="Credits: expiry of the lot credited back (null: never)."
    )
    offer_id: OfferId | None = Field(
        default=None, description="The offer whose award the entry takes back, if one."
    )


class ReturnForwarded(Event):
    """A return of a purchase made before its member was merged away: the victim's side
    re-evaluated the purchase (it keeps the purchase's record); the survivor, who holds the
    points now, books what it decided (DESIGN.md §5.14, §5.18)."""

    topic: ClassVar[str] = TOPIC

    member_id: Id = Field(description="The survivor (the record key), to be debited.")
    victim_member_id: Id = Field(description="The member merged away the purchase was made on.")
    return_event_id: Id = Field(description="event_id of the TransactionReturned.")
    return_id: Id = Field(description="The retailer's id of the return transaction.")
    transaction_id: Id = Field(description="The id of the original transaction.")
    source: Source = Field(description="The channel the return was made in.")
    store_id: Id | None = Field(default=None, description="The store taking the return.")
    till_id: str | None = Field(default=None, max_length=64, description="The till, if any.")
    entries: list[ForwardedEntry] = Field(
        min_length=1, description="What the return takes back and gives back, in order."
    )


# --- reward stock (docs/adr/0020-rewards.md) -------------------------------------------------

REWARD_STOCK_TOPIC = topics.REWARD_STOCK.name


class RewardCodesStocked(Event):
    """A batch of codes (RewardCodesAdded on the config topic) handed to the reward's agent,
    keyed by the reward, so the stock and the grants that take from it are one ordered stream.
    Its event_id is the batch's, so a batch forwarded twice is stocked once."""

    topic: ClassVar[str] = REWARD_STOCK_TOPIC
    key_field: ClassVar[str] = "reward_id"

    reward_id: Id = Field(description="The master reward (the record key).")
    codes: list[Id] = Field(min_length=1, description="The batch's codes, verbatim.")


class RewardAllocationRequested(Event):
    """A member's partition holds the points of a reward redemption and asks the reward's agent
    for one grant: a code from the stock when the reward has one, and one of the reward's
    total grants when they are limited (DESIGN.md §5.26). event_id derives from the member and
    the command, so a redelivery is answered with the original allocation."""

    topic: ClassVar[str] = REWARD_STOCK_TOPIC
    key_field: ClassVar[str] = "reward_id"

    reward_id: Id = Field(description="The master reward (the record key).")
    member_id: Id = Field(description="The member whose redemption waits for the answer.")
    command_id: Id = Field(description="The redemption request's command_id.")
    request_event_id: Id = Field(description="event_id of the RewardRedemptionRequested.")
    quantity: int = Field(
        ge=1, le=100, description="Grants asked for, all or none (each takes its own code)."
    )
    uses_code_stock: bool = Field(description="Whether each grant takes a code from the stock.")
    grants_total_max: int | None = Field(
        default=None,
        ge=1,
        le=LONG_MAX,
        description="The reward's total grants where the request was made.",
    )
    code: Id | None = Field(
        default=None,
        description="The code an upstream system already gave (RewardGrantRecordRequested): "
        "taken from the stock if there, refused CODE_TAKEN if already granted; null: the next "
        "code of the stock.",
    )


class RewardAllocationRefusal(ContractEnum):
    """Why a reward's agent refused a grant."""

    OUT_OF_CODES = "OUT_OF_CODES"  # the code stock is empty
    GRANTS_SPENT = "GRANTS_SPENT"  # the reward's total grants were all given
    CODE_TAKEN = "CODE_TAKEN"  # the code asked for was already granted
    UNKNOWN = "UNKNOWN"


class RewardAllocated(Event):
    """The reward's agent gave a member's redemption one grant (and its code): the member's
    partition books the debit and grants the reward, once."""

    topic: ClassVar[str] = TOPIC

    member_id: Id = Field(description="The member (the record key).")
    reward_id: Id = Field(description="The master reward.")
    command_id: Id = Field(description="The redemption request's command_id.")
    allocation_event_id: Id = Field(description="event_id of the RewardAllocationRequested.")
    codes: list[Id] = Field(
        default_factory=list,
        max_length=100,
        description="One code per grant, taken from the stock; empty without a code stock.",
    )


class RewardAllocationRefused(Event):
    """The reward's agent had nothing left to give: the member's partition releases the held
    points and rejects the redemption `out_of_stock`."""

    topic: ClassVar[str] = TOPIC

    member_id: Id = Field(description="The member (the record key).")
    reward_id: Id = Field(description="The master reward.")
    command_id: Id = Field(description="The redemption request's command_id.")
    allocation_event_id: Id = Field(description="event_id of the RewardAllocationRequested.")
    reason: RewardAllocationRefusal = Field(description="What ran out.")


class RewardAllocationReleased(Event):
    """A member's partition could not use the grants it was given (the member was merged away,
    or the reserved points expired before the grant was booked): the codes go back to the
    front of the stock and the grants are given back, so no code is lost."""

    topic: ClassVar[str] = REWARD_STOCK_TOPIC
    key_field: ClassVar[str] = "reward_id"

    reward_id: Id = Field(description="The master reward (the record key).")
    member_id: Id = Field(description="The member whose redemption was rejected.")
    command_id: Id = Field(description="The redemption request's command_id.")
    quantity: int = Field(ge=1, le=100, description="Grants given back.")
    codes: list[Id] = Field(
        default_factory=list, max_length=100, description="Codes given back to the stock."
    )


# --- promotion uses (docs/adr/0023-promo-codes.md) -------------------------------------------

PROMOTION_USES_TOPIC = topics.PROMOTION_USES.name


class CodeOfferUse(Record):
    """The use of an offer a promo code unlocked on a purchase, waiting for the code's count."""

    offer_id: OfferId = Field(description="The offer the code unlocks.")
    use_number: int = Field(
        ge=1, le=LONG_MAX, description="The member's use of the offer: 1 for the first."
    )
    points_requested: Points = Field(
        ge=0, description="Points the use pays once granted (0: a discount or a reward)."
    )


class PromoCodeUseRequested(Event):
    """A purchase carries a promo code that is valid for it: the promotion's agent counts the
    use against the limits the request carries (the promotion's latest terms where the purchase
    was decided), in arrival order, once per code and transaction."""

    topic: ClassVar[str] = PROMOTION_USES_TOPIC
    key_field: ClassVar[str] = "promotion_id"

    promotion_id: Id = Field(description="The promotion (the record key).")
    code: Id = Field(description="The code, upper-cased.")
    member_id: Id | None = Field(default=None, description="The member; null: anonymous.")
    transaction_id: Id = Field(description="The purchase.")
    transaction_number: str | None = Field(
        default=None, max_length=64, description="The receipt number."
    )
    store_id: Id | None = Field(default=None, description="The store.")
    discount_cents: Cents = Field(description="The discount the code gives on the purchase.")
    cause_event_id: Id = Field(description="event_id of the purchase.")
    spend_cents: Cents | None = Field(
        default=None, description="The purchase's spend, after every discount (its revenue)."
    )
    issuer: CodeIssuer | None = Field(
        default=None, description="Who issued the code (its issue's issuer); null: the brand."
    )
    redemptions_per_code_max: int | None = Field(
        default=None, ge=1, le=LONG_MAX, description="Uses of one code."
    )
    redemptions_per_member_max: int | None = Field(
        default=None,
        ge=1,
        le=LONG_MAX,
        description="Uses by one member across the promotion's codes.",
    )
    redemptions_total_max: int | None = Field(
        default=None, ge=1, le=LONG_MAX, description="Uses across all of the promotion's codes."
    )
    offer_use: CodeOfferUse | None = Field(
        default=None,
        description="The use of the offer the code unlocks (docs/adr/0037-codes-that-unlock-"
        "an-offer.md), kept pending by the member until the promotion's agent answers it with "
        "OfferUseGranted or OfferUseDenied (this event's event_id is the request answered); "
        "null: the code gives a cart discount.",
    )
    ended_at: UtcDatetime | None = Field(
        default=None,
        description="The promotion's end, when the purchase came at or after it: the use "
        "counts only if a till reserved this code for this basket (a till told yes is never "
        "overruled, DESIGN.md §5.25), else the promotion's agent refuses it code_expired. "
        "Null: the purchase is within the promotion's window.",
    )


class PromoCodeReservationRequested(Event):
    """A till asks, before the purchase completes, whether a code applies to its basket: the
    promotion's agent reserves one use until `reserved_until` (reserve → commit, DESIGN.md
    §5.25); the purchase that carries the code commits it, and a till told yes is never
    overruled. Asking again for the same code and basket extends the reservation."""

    topic: ClassVar[str] = PROMOTION_USES_TOPIC
    key_field: ClassVar[str] = "promotion_id"

    promotion_id: Id = Field(description="The promotion (the record key).")
    code: Id = Field(description="The code, upper-cased.")
    member_id: Id | None = Field(default=None, description="The member; null: anonymous.")
    transaction_id: Id = Field(description="The basket the use is reserved for.")
    reserved_until: UtcDatetime = Field(description="When the reservation lapses, uncommitted.")
    discount_cents: Cents = Field(description="The discount the code gives on the basket.")
    redemptions_per_code_max: int | None = Field(
        default=None, ge=1, le=LONG_MAX, description="Uses of one code."
    )
    redemptions_per_member_max: int | None = Field(
        default=None,
        ge=1,
        le=LONG_MAX,
        description="Uses by one member across the promotion's codes.",
    )
    redemptions_total_max: int | None = Field(
        default=None, ge=1, le=LONG_MAX, description="Uses across all of the promotion's codes."
    )
    offer_id: OfferId | None = Field(
        default=None,
        description="The offer the code unlocks (docs/adr/0037-codes-that-unlock-an-offer.md): "
        "a member's reservation also holds a use of it for the basket (OfferUseHeld); null: "
        "the code gives a cart discount.",
    )
    lease_id: Id | None = Field(
        default=None,
        description="The lease (PromoCodeLeaseAnswered) whose use the API process assigned to "
        "this basket, having told the till yes once this request was written "
        "(docs/adr/0040-reservations-from-a-lease.md): the agent reserves it from the lease, "
        "never refusing it while the lease has uses; null: the agent decides.",
    )


class PromoCodeLeaseRequested(Event):
    """An API process asks the promotion's agent to set aside uses of a code for it, to answer
    tills' reservations of that code without waiting for the agent
    (docs/adr/0040-reservations-from-a-lease.md). The agent counts the uses it grants as
    taken until `leased_until`, and answers with PromoCodeLeaseAnswered (0 uses near the end
    of the promotion's uses)."""

    topic: ClassVar[str] = PROMOTION_USES_TOPIC
    key_field: ClassVar[str] = "promotion_id"

    promotion_id: Id = Field(description="The promotion (the record key).")
    code: Id = Field(description="The code, upper-cased.")
    holder: Id = Field(description="The API process asking (host, pid and start).")
    uses_wanted: int = Field(ge=1, le=10_000, description="Uses asked for.")
    leased_until: UtcDatetime = Field(
        description="When the uses the holder did not assign return to the promotion."
    )
    redemptions_per_code_max: int | None = Field(
        default=None,
        ge=2,
        le=LONG_MAX,
        description="Uses of the code (never 1: a single-use code is not leased).",
    )
    redemptions_total_max: int | None = Field(
        default=None, ge=1, le=LONG_MAX, description="Uses across all of the promotion's codes."
    )


class PromoCodeReservationReleased(Event):
    """The basket was abandoned or cancelled: its reservation is given back at once."""

    topic: ClassVar[str] = PROMOTION_USES_TOPIC
    key_field: ClassVar[str] = "promotion_id"

    promotion_id: Id = Field(description="The promotion (the record key).")
    code: Id = Field(description="The code, upper-cased.")
    transaction_id: Id = Field(description="The basket whose reservation is released.")


class OfferUseHeld(Event):
    """The promotion's agent reserved, for a member's basket, a code that unlocks an offer: the
    member's partition holds one use of the offer for that basket (ADR 37). While the hold
    lasts the member's other baskets see the use as taken; the basket's own purchase carrying
    the code gets the offer whatever the member's uses or the offer's window say by then, even
    after the hold lapsed (a till told yes is never overruled). Asking again extends it."""

    topic: ClassVar[str] = TOPIC

    member_id: Id = Field(description="The member (the record key) whose basket holds the use.")
    offer_id: OfferId = Field(description="The offer the reserved code unlocks.")
    transaction_id: Id = Field(description="The basket (the till's transaction) held for.")
    promotion_id: Id = Field(description="The promotion whose code was reserved.")
    code: Id = Field(description="The code reserved, upper-cased.")
    held_until: UtcDatetime = Field(
        description="When the hold stops counting against the member's other baskets (the "
        "reservation's end); the basket's own purchase still gets the use after it."
    )


class OfferUseHoldReleased(Event):
    """The reservation behind an OfferUseHeld was released (the basket cancelled, or asked
    again after it lapsed and refused): the member's partition no longer holds the use."""

    topic: ClassVar[str] = TOPIC

    member_id: Id = Field(description="The member (the record key) whose hold is released.")
    offer_id: OfferId = Field(description="The offer the released code unlocks.")
    transaction_id: Id = Field(description="The basket whose hold is released.")
    promotion_id: Id = Field(description="The promotion whose code was released.")
    code: Id = Field(description="The code released, upper-cased.")


class PromoCodeLinkClaimRequested(Event):
    """A member asked to link a promo code (PromoCodeLinkRequested): the promotion's agent
    decides whether the code may be theirs (a single-use code links to one member only, and
    not once its uses are spent), in arrival order."""

    topic: ClassVar[str] = PROMOTION_USES_TOPIC
    key_field: ClassVar[str] = "promotion_id"

    promotion_id: Id = Field(description="The promotion (the record key).")
    code: Id = Field(description="The code, upper-cased.")
    member_id: Id = Field(description="The member asking.")
    command_id: Id = Field(description="The link request's command_id.")
    redemptions_per_code_max: int | None = Field(
        default=None,
        ge=1,
        le=LONG_MAX,
        description="Uses of one code (1: single-use, linked to one member).",
    )
    redemptions_per_member_max: int | None = Field(
        default=None,
        ge=1,
        le=LONG_MAX,
        description="Uses of the promotion one member may make: a member who made them is "
        "not linked a code that would be refused at their next purchase.",
    )
    redemptions_total_max: int | None = Field(
        default=None,
        ge=1,
        le=LONG_MAX,
        description="Uses across all of the promotion's codes: none left, nothing is linked.",
    )


class PromoCodeLinkAnswered(Event):
    """The promotion's agent's answer to a link claim: linked, or why not."""

    topic: ClassVar[str] = TOPIC

    member_id: Id = Field(description="The member (the record key).")
    promotion_id: Id = Field(description="The promotion.")
    code: Id = Field(description="The code, upper-cased.")
    command_id: Id = Field(description="The link request's command_id.")
    linked: bool = Field(description="Whether the code is now linked to the member.")
    refusal: RejectionReason | None = Field(
        default=None,
        description="When not linked: why (code_already_linked, code_exhausted).",
    )
