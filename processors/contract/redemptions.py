"""Topic `loyalty.redemptions.v1`: members' requests (spend points, buy and use issued offers,
transfer points, link promo codes, load offers) and the back office's points adjustments
(bulk awards, imports from a previous system), keyed by the member concerned.

A request is not a fact: the engine answers each one on `loyalty.outcomes.v1` with
`RequestAccepted` or `RequestRejected`. Every request carries a client-generated `command_id`;
a repeated `command_id` changes nothing and gets the original outcome again (DESIGN.md §5.15).
"""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import Field, model_validator

from processors.base import topics
from processors.contract.base import (
    ContractEnum,
    Event,
    Id,
    OfferId,
    Points,
    Record,
    Text,
    UtcDatetime,
)
from processors.contract.common import PointsCategory, Source
from processors.contract.notifications import ChangedBy, ContactChannel
from processors.contract.transactions import TransactionLine

TOPIC = topics.REDEMPTIONS.name

_COMMAND_ID = (
    "Idempotency key chosen by the client (the HTTP `Idempotency-Key`): a request repeated "
    "with the same command_id changes nothing and is answered with the original outcome."
)


class RequestType(ContractEnum):
    """Which kind of request an outcome answers: one symbol per request of this topic."""

    REWARD_REDEMPTION = "REWARD_REDEMPTION"
    POINTS_REDEMPTION = "POINTS_REDEMPTION"
    REWARD_STORE_OFFER_PURCHASE = "REWARD_STORE_OFFER_PURCHASE"
    ISSUED_OFFER_LOCK = "ISSUED_OFFER_LOCK"
    ISSUED_OFFER_REDEEM = "ISSUED_OFFER_REDEEM"
    POINTS_TRANSFER = "POINTS_TRANSFER"
    PROMO_CODE_LINK = "PROMO_CODE_LINK"
    OFFER_LOAD = "OFFER_LOAD"
    POINTS_ADJUSTMENT = "POINTS_ADJUSTMENT"
    # A `MemberEnrolled` (loyalty.enrolments.v1): its event_id is the command id.
    ENROLMENT = "ENROLMENT"
    PREFERENCES_CHANGE = "PREFERENCES_CHANGE"
    REWARD_GRANT_RECORD = "REWARD_GRANT_RECORD"
    ISSUED_OFFER_UNLOCK = "ISSUED_OFFER_UNLOCK"
    # A member's `TransactionReturned` (loyalty.transactions.v1): its return_id is the
    # command id, so every return is answered, those that change nothing too (ADR 43).
    RETURN = "RETURN"
    UNKNOWN = "UNKNOWN"


class PromoCodeMode(ContractEnum):
    """What kind of cart promotion a linked promo code is (seed 001)."""

    DISCOUNT = "DISCOUNT"  # a code-linked promotion
    PAYMENT_VOUCHER = "PAYMENT_VOUCHER"  # a gift-voucher-linked promotion
    UNKNOWN = "UNKNOWN"


class ProgramAllocation(Record):
    """The points one programme contributes to a points redemption."""

    program_id: Id = Field(description="The programme whose REGULAR account is debited.")
    points: Points = Field(gt=0, description="Points to take from that programme (> 0).")


class RewardRedemptionRequested(Event):
    """Spending points on a catalogue reward was requested; success grants the reward."""

    topic: ClassVar[str] = TOPIC
    request_type: ClassVar[RequestType] = RequestType.REWARD_REDEMPTION

    command_id: Id = Field(description=_COMMAND_ID)
    member_id: Id = Field(description="The member spending the points.")
    reward_id: Id = Field(description="The master reward (catalogue item) to redeem.")
    program_id: Id = Field(description="The programme whose points pay for the reward.")
    quantity: int = Field(
        default=1, ge=1, le=100, description="How many of the reward; each is granted apart."
    )
    source: Source = Field(description="The channel the request was made in.")
    store_id: Id | None = Field(default=None, description="The store, when made in one.")
    till_id: str | None = Field(default=None, max_length=64, description="The till, if any.")
    transaction_id: Id | None = Field(
        default=None,
        description="The transaction in progress the reward's token is applied to, if any.",
    )


class RewardGrantRecordRequested(Event):
    """An upstream system (a POS, an e-commerce site) gave a member a reward with a code it
    chose, and asks the engine to record it (seed 004: attribution owned by an external
    system). The engine keeps the wallet and the stock right: the code leaves the reward's
    stock if it was in it, a code already granted is refused `code_taken`; nothing is paid
    in points (a price the upstream charged in points is its own PointsRedemptionRequested)."""

    topic: ClassVar[str] = TOPIC
    request_type: ClassVar[RequestType] = RequestType.REWARD_GRANT_RECORD

    command_id: Id = Field(description=_COMMAND_ID)
    member_id: Id = Field(description="The member the upstream system granted the reward to.")
    reward_id: Id = Field(description="The master reward granted.")
    code: Id | None = Field(
        default=None,
        description="The code the upstream system gave the member; null: the reward has none "
        "(the granted reward's id is then its token).",
    )
    system: Id = Field(description="Which upstream system attributed it (e.g. POS, ECOMMERCE).")
    source: Source = Field(description="The channel the grant was made in.")
    store_id: Id | None = Field(default=None, description="The store, when made in one.")
    transaction_id: Id | None = Field(
        default=None, description="The upstream transaction it was given with, if any."
    )


class PointsRedemptionRequested(Event):
    """Spending points for a discount was requested, from one programme or, in a group
    redemption, from several."""

    topic: ClassVar[str] = TOPIC
    request_type: ClassVar[RequestType] = RequestType.POINTS_REDEMPTION

    command_id: Id = Field(description=_COMMAND_ID)
    member_id: Id = Field(description="The member spending the points.")
    allocations: list[ProgramAllocation] = Field(
        min_length=1,
        description="Points per programme, each programme at most once; more than one makes a "
        "group redemption, recorded as one ledger event whose points_on_event is the total.",
    )
    source: Source = Field(description="The channel the request was made in.")
    store_id: Id | None = Field(default=None, description="The store, when made in one.")
    till_id: str | None = Field(
        default=None,
        max_length=64,
        description="The till; a till is mapped to a programme, which is how group redemptions "
        "show in that programme's ledger view (includeTillConceptEvents).",
    )
    transaction_id: Id | None = Field(
        default=None,
        description="The transaction the points pay towards; a return of its lines reverses "
        "the redemption (DESIGN.md §5.14).",
    )
    lines: list[TransactionLine] = Field(
        default_factory=list,
        max_length=500,
        description="The basket lines the points pay for, when the till says (seed 003, "
        "category redemption): an offer that counts points redeemed on selected products "
        "counts the points' share on the lines it selects, in proportion to their amounts; "
        "empty: the products are not known, only offers on any redemption count it.",
    )

    @model_validator(mode="after")
    def _check_one_allocation_per_programme(self) -> Self:
        programmes = [a.program_id for a in self.allocations]
        if len(set(programmes)) != len(programmes):
            raise ValueError("allocations must name each programme at most once")
        return self


class RewardStoreOfferPurchaseRequested(Event):
    """Buying an offer from a reward store with points was requested; success issues the offer."""

    topic: ClassVar[str] = TOPIC
    request_type: ClassVar[RequestType] = RequestType.REWARD_STORE_OFFER_PURCHASE

    command_id: Id = Field(description=_COMMAND_ID)
    member_id: Id = Field(description="The member buying the offer.")
    reward_store_id: Id = Field(description="The reward store the offer is bought from.")
    offer_id: OfferId = Field(
        description="The offer to buy; its price and points account are set in the reward store."
    )
    source: Source = Field(description="The channel the request was made in.")


class IssuedOfferLockRequested(Event):
    """Reserving an issued offer for a transaction in progress was requested.

    A lock is the reserve half of reserve → commit: the offer is used only when the transaction
    completes, and a locked offer cannot be used by another transaction meanwhile.
    """

    topic: ClassVar[str] = TOPIC
    request_type: ClassVar[RequestType] = RequestType.ISSUED_OFFER_LOCK

    command_id: Id = Field(description=_COMMAND_ID)
    member_id: Id = Field(description="The member holding the issued offer.")
    issued_offer_id: Id = Field(description="The issued offer (one instance held by the member).")
    transaction_id: Id = Field(description="The transaction in progress the offer is locked to.")
    source: Source = Field(description="The channel the request was made in.")
    store_id: Id | None = Field(default=None, description="The store, when made in one.")
    till_id: str | None = Field(default=None, max_length=64, description="The till, if any.")


class IssuedOfferRedeemRequested(Event):
    """Using an issued offer at once was requested (without a lock first)."""

    topic: ClassVar[str] = TOPIC
    request_type: ClassVar[RequestType] = RequestType.ISSUED_OFFER_REDEEM

    command_id: Id = Field(description=_COMMAND_ID)
    member_id: Id = Field(description="The member holding the issued offer.")
    issued_offer_id: Id = Field(description="The issued offer to use.")
    transaction_id: Id | None = Field(
        default=None, description="The transaction the offer is used in, when known."
    )
    source: Source = Field(description="The channel the request was made in.")
    store_id: Id | None = Field(default=None, description="The store, when made in one.")
    till_id: str | None = Field(default=None, max_length=64, description="The till, if any.")


class IssuedOfferUnlockRequested(Event):
    """The order an issued offer was locked to was cancelled: the lock is to be released now,
    before it lapses, so that another transaction may use the offer (DESIGN.md §5.25)."""

    topic: ClassVar[str] = TOPIC
    request_type: ClassVar[RequestType] = RequestType.ISSUED_OFFER_UNLOCK

    command_id: Id = Field(description=_COMMAND_ID)
    member_id: Id = Field(description="The member holding the issued offer.")
    issued_offer_id: Id = Field(description="The issued offer whose lock is released.")
    transaction_id: Id = Field(
        description="The cancelled transaction the offer is locked to; a lock held for another "
        "transaction is not released (refused `reward_locked`)."
    )
    source: Source = Field(description="The channel the request was made in.")
    store_id: Id | None = Field(default=None, description="The store, when made in one.")
    till_id: str | None = Field(default=None, max_length=64, description="The till, if any.")


class PointsTransferRequested(Event):
    """Moving points from one member to another member of the same programme was requested.

    Keyed by the sender, whose partition decides (it never overdraws the sender); the
    recipient's side is applied afterwards from a re-keyed internal topic (DESIGN.md §2, §5.23).
    """

    topic: ClassVar[str] = TOPIC
    request_type: ClassVar[RequestType] = RequestType.POINTS_TRANSFER

    command_id: Id = Field(description=_COMMAND_ID)
    member_id: Id = Field(description="The sender (the record key), whose points are debited.")
    recipient_member_id: Id = Field(description="The member who receives the points.")
    program_id: Id = Field(description="The programme both members' accounts belong to.")
    points: Points = Field(gt=0, description="Points to move (> 0).")
    source: Source = Field(description="The channel the request was made in.")

    @model_validator(mode="after")
    def _check_two_members(self) -> Self:
        if self.recipient_member_id == self.member_id:
            raise ValueError("a member cannot transfer points to themselves")
        return self


class PromoCodeLinkRequested(Event):
    """Linking a physical promo code to a member was requested, so it applies by itself at the
    member's next checkout."""

    topic: ClassVar[str] = TOPIC
    request_type: ClassVar[RequestType] = RequestType.PROMO_CODE_LINK

    command_id: Id = Field(description=_COMMAND_ID)
    member_id: Id = Field(description="The member (the API's customerId) to link the code to.")
    code: Id = Field(description="The promo code, as printed on the coupon.")
    mode: PromoCodeMode = Field(description="The kind of cart promotion the code belongs to.")
    source: Source = Field(description="The channel the request was made in.")


class OfferLoadRequested(Event):
    """Loading an offer to the member's account (load to card) was requested."""

    topic: ClassVar[str] = TOPIC
    request_type: ClassVar[RequestType] = RequestType.OFFER_LOAD

    command_id: Id = Field(description=_COMMAND_ID)
    member_id: Id = Field(description="The member loading the offer.")
    offer_id: OfferId = Field(description="The offer to load; the member must be targeted.")
    source: Source = Field(description="The channel the offer was loaded from.")


class PointsAdjustmentKind(ContractEnum):
    """What a back-office points adjustment records (seed 001: "Other bulk award events",
    "Imported points", "Imports for points redemption or expiry"; and member care's manual
    adjustments, with their reason code in `reason`)."""

    BULK_AWARD = "BULK_AWARD"  # credit: points awarded in bulk, e.g. by a campaign
    IMPORTED_POINTS = "IMPORTED_POINTS"  # credit: points earned in a previous system
    IMPORTED_REDEMPTION = "IMPORTED_REDEMPTION"  # debit: a redemption made in a previous system
    IMPORTED_EXPIRY = "IMPORTED_EXPIRY"  # debit: an expiry that happened in a previous system
    # A member-care agent's credit or debit of one member (goodwill, a correction, a fraud
    # reversal): recorded whole, a debit even below zero (ADR 12), like imported history.
    MANUAL_CREDIT = "MANUAL_CREDIT"
    MANUAL_DEBIT = "MANUAL_DEBIT"
    UNKNOWN = "UNKNOWN"

    @property
    def is_credit(self) -> bool:
        """True for the kinds that add points; the others take them."""
        return self in (
            PointsAdjustmentKind.BULK_AWARD,
            PointsAdjustmentKind.IMPORTED_POINTS,
            PointsAdjustmentKind.MANUAL_CREDIT,
        )


class PointsAdjustmentRequested(Event):
    """The back office asked to credit or debit one member's points outside any purchase: a
    bulk award (a campaign), or history imported from a previous system.

    Imported debits are history and are recorded whole: they may take the balance below zero,
    like a return, and the next credit repays the deficit (ADR 12).
    """

    topic: ClassVar[str] = TOPIC
    request_type: ClassVar[RequestType] = RequestType.POINTS_ADJUSTMENT

    command_id: Id = Field(
        description=_COMMAND_ID + " A bulk job derives it from its run and the member, so a "
        "re-run of the job books nothing twice."
    )
    member_id: Id = Field(description="The member whose points are adjusted (the record key).")
    program_id: Id = Field(description="The programme whose account is adjusted.")
    kind: PointsAdjustmentKind = Field(description="What the adjustment records.")
    category: PointsCategory = Field(
        default=PointsCategory.REGULAR,
        description="The account's points category; only REGULAR is accepted for now (held "
        "categories convert by their purchase's hold, which an adjustment does not have).",
    )
    points: Points = Field(gt=0, description="Points credited or debited (> 0).")
    expires_at: UtcDatetime | None = Field(
        default=None,
        description="Credits only: when the points expire; null: the programme's expiry policy "
        "from occurred_at. Must be after occurred_at.",
    )
    campaign_id: Id | None = Field(
        default=None,
        description="The campaign, job or previous system the adjustment comes from, for the "
        "audit trail.",
    )
    reason: Text | None = Field(
        default=None, description="Why the points are adjusted, for member care and audit."
    )
    source: Source = Field(description="The channel the request came through (BACK_OFFICE...).")

    @model_validator(mode="after")
    def _check_expiry(self) -> Self:
        if self.expires_at is None:
            return self
        if not self.kind.is_credit:
            raise ValueError("expires_at is given only for credits (BULK_AWARD, IMPORTED_POINTS)")
        if self.expires_at <= self.occurred_at:
            raise ValueError("expires_at must be after occurred_at")
        return self


class ChannelChoice(Record):
    """One channel's opt-in, as asked."""

    channel: ContactChannel = Field(description="The channel.")
    opted_in: bool = Field(description="Whether the member accepts marketing on it from now.")


class PreferencesChangeRequested(Event):
    """A member, or staff on their behalf, asked to opt in or out of marketing channels.

    The member's partition checks each channel against those the member's market offers
    (`ProgramConfigured.contact_channels`; others are refused whole, `channel_not_offered`),
    answers on loyalty.outcomes.v1 and publishes what changed as `PreferencesChanged`, the
    audit trail's entry, on loyalty.notifications.v1.
    """

    topic: ClassVar[str] = TOPIC
    request_type: ClassVar[RequestType] = RequestType.PREFERENCES_CHANGE

    command_id: Id = Field(description=_COMMAND_ID)
    member_id: Id = Field(description="The member whose preferences are set.")
    choices: list[ChannelChoice] = Field(
        min_length=1, max_length=8, description="The channels set, each at most once."
    )
    changed_by: ChangedBy = Field(description="Who asked: the member, staff, a system.")
    changed_by_id: Id = Field(
        description="Who exactly: the member_id for MEMBER, else the staff user's or system's id."
    )
    source: Source = Field(description="The channel the change was asked in.")
    reason: str | None = Field(
        default=None, max_length=500, description="Why, when staff or a system asks."
    )

    @model_validator(mode="after")
    def _check_choices(self) -> Self:
        channels = [c.channel for c in self.choices]
        if len(set(channels)) != len(channels):
            raise ValueError("choices must name each channel at most once")
        if self.changed_by is ChangedBy.MEMBER and self.changed_by_id != self.member_id:
            raise ValueError("a change asked by the member names the member as changed_by_id")
        return self
