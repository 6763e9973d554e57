"""Topic `loyalty.ledger.v1`: the points ledger, the source of truth for every balance."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from processors.base import topics
from processors.contract.base import (
    LONG_MAX,
    ContractEnum,
    Event,
    Id,
    OfferId,
    Points,
    Record,
    SignedPoints,
    UtcDatetime,
)
from processors.contract.common import PointsCategory, Source

TOPIC = topics.LEDGER.name


class LedgerEventType(ContractEnum):
    """The business event a ledger event records (seed 001)."""

    CUSTOMER_REGISTRATION = "CUSTOMER_REGISTRATION"
    TRANSACTION_ADD = "TRANSACTION_ADD"
    TRANSACTION_RETURN = "TRANSACTION_RETURN"
    POINTS_REDEMPTION = "POINTS_REDEMPTION"
    POINTS_TRANSFER = "POINTS_TRANSFER"
    REDEMPTION_REVERSAL = "REDEMPTION_REVERSAL"
    POINTS_EXPIRY = "POINTS_EXPIRY"
    MERGE_CUSTOMER = "MERGE_CUSTOMER"
    PROMISED_POINTS_CONVERSION = "PROMISED_POINTS_CONVERSION"
    POINTS_IMPORT = "POINTS_IMPORT"
    REFERRAL = "REFERRAL"
    OFFER_AWARD = "OFFER_AWARD"
    BULK_AWARD = "BULK_AWARD"
    CHALLENGE_AWARD = "CHALLENGE_AWARD"  # a completed challenge's points (ADR 27)
    MANUAL_ADJUSTMENT = "MANUAL_ADJUSTMENT"  # a member-care agent's credit or debit (ADR 36)
    UNKNOWN = "UNKNOWN"


class EntryType(ContractEnum):
    """Whether an entry adds points to or takes points from an account."""

    CREDIT = "CREDIT"
    DEBIT = "DEBIT"
    UNKNOWN = "UNKNOWN"


class EntryKind(ContractEnum):
    """Why an entry credits or debits an account."""

    OPENING_BALANCE = "OPENING_BALANCE"
    ALLOCATION = "ALLOCATION"
    TRANSFER_IN = "TRANSFER_IN"
    TRANSFER_OUT = "TRANSFER_OUT"
    REDEMPTION = "REDEMPTION"
    REDEMPTION_REVERSAL = "REDEMPTION_REVERSAL"
    EXPIRY = "EXPIRY"
    RETURN = "RETURN"
    CONVERSION = "CONVERSION"
    MERGE = "MERGE"
    IMPORT = "IMPORT"
    REFERRAL = "REFERRAL"
    ADJUSTMENT = "ADJUSTMENT"  # a member-care agent's credit or debit
    UNKNOWN = "UNKNOWN"


class LedgerEntry(Record):
    """One credit or debit of one points account (member × programme × category)."""

    entry_id: Id = Field(description="Id of the entry, derived from its ledger event.")
    program_id: Id = Field(description="The programme whose account is affected.")
    category: PointsCategory = Field(description="The points category of the account.")
    entry_type: EntryType = Field(description="CREDIT adds points, DEBIT takes them.")
    kind: EntryKind = Field(description="Why the account is credited or debited.")
    points: Points = Field(description="Points moved, always >= 0; entry_type gives the sign.")
    expires_at: UtcDatetime | None = Field(
        default=None,
        description="The lot the entry adds to (credit) or draws from (debit), named by its "
        "expiry (null: points that never expire). A debit drawing several lots is one entry per "
        "lot, earliest expiry first.",
    )
    offer_id: OfferId | None = Field(
        default=None, description="The offer that awarded the points, for offer awards."
    )


class Lot(Record):
    """Points of one account that expire together."""

    expires_at: UtcDatetime | None = Field(description="When these points expire (null: never).")
    points: SignedPoints = Field(
        description="Points left in the lot; only the never-expiring lot may be negative (an "
        "account overdrawn by a return)."
    )


class AccountBalance(Record):
    """One points account (member × programme × category) after a ledger event."""

    program_id: Id = Field(description="The programme of the account.")
    category: PointsCategory = Field(description="The points category of the account.")
    balance: SignedPoints = Field(
        description="The account's balance: the sum of its entries; negative only after returns."
    )
    lots: list[Lot] = Field(
        description="The balance split by expiry, earliest first; their points sum to balance."
    )


class LedgerEventRecorded(Event):
    """One business event's effect on one member's points accounts."""

    topic: ClassVar[str] = TOPIC

    event_log_id: Id = Field(
        description="The ledger event's id in the member's ledger, derived deterministically from "
        "its cause so a replay records the same id."
    )
    member_id: Id = Field(description="The member whose ledger this is.")
    sequence: int = Field(
        ge=1,
        le=LONG_MAX,
        description="Position of this event in the member's ledger: 1 for the first, then +1 "
        "per event. Chronological order, independent of Kafka offsets.",
    )
    event_type: LedgerEventType = Field(description="The business event recorded.")
    recorded_at: UtcDatetime = Field(
        description="Business time at which the engine recorded the event (for an expiry: when "
        "the expiry run happened)."
    )
    cause_event_id: Id = Field(description="event_id of the input event that caused it.")
    source: Source = Field(description="The channel of the causing event.")
    store_id: Id | None = Field(default=None, description="The store, when there is one.")
    till_id: str | None = Field(default=None, max_length=64, description="The till, if any.")
    transaction_id: Id | None = Field(
        default=None,
        description="For TRANSACTION_ADD the purchase, for TRANSACTION_RETURN the return.",
    )
    transaction_number: str | None = Field(
        default=None, max_length=64, description="Receipt number, for TRANSACTION_ADD only."
    )
    related_member_id: Id | None = Field(
        default=None,
        description="The other member of a transfer or a merge (each side sees only its entry).",
    )
    points_on_event: SignedPoints = Field(
        description="Net effect on the member: sum of credits minus sum of debits."
    )
    entries: list[LedgerEntry] = Field(description="The credits and debits, in order.")
    balances_after: list[AccountBalance] = Field(
        default_factory=list,
        description="Every account the entries touched, as it stands after this event, so "
        "readers (projections, CRM) need no ledger rules to know balances and lots.",
    )
