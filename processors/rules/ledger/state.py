"""One member's ledger state: accounts with lots, and what is needed to answer what comes
next (returns, holds, repeated commands). Serialisable (pydantic) for the processor's tables."""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar

from pydantic import BaseModel, Field

from processors.contract.activities import ActivityRecorded
from processors.contract.common import PointsCategory
from processors.contract.internal import MemberMergedAway, ReturnForwarded
from processors.contract.outcomes import RequestAccepted, RequestRejected
from processors.contract.redemptions import RequestType
from processors.contract.transactions import TransactionCompleted, TransactionReturned
from processors.rules.deferred import Deferred
from processors.rules.ledger.lots import Lot, Move
from processors.rules.selection import ProductHierarchy


def account_key(program_id: str, category: PointsCategory) -> str:
    """The key of a points account in `MemberLedger.accounts`."""
    return f"{program_id}|{category.value}"


class PurchasedLine(ProductHierarchy):
    """A line of a purchase as it earned, and how much of it has come back."""

    line_id: str
    sku: str
    amount_cents: int
    returned_cents: int = 0


class Redeemed(BaseModel):
    """Points spent towards a purchase, so a return of its lines can give them back."""

    program_id: str
    points: int
    reversed_points: int = 0
    moves: list[tuple[datetime | None, int]]


class Purchase(Deferred):
    """What one transaction earned, per programme, for re-evaluation on returns.

    Once booked it changes only when a return is applied to it (its id joins `return_ids`)
    or points are redeemed against it (`redeemed` grows): `revision` counts both, so a copy
    stored at the same revision is this record (`member.dump_state` reuses it). Stored, its
    lines are read only when asked for (`Deferred`): by a return of it."""

    DEFERRED = ("lines",)

    transaction_id: str
    occurred_at: datetime | None = None  # None: recorded before this field existed
    province: str | None
    lines: list[PurchasedLine]
    earned: dict[str, int] = Field(default_factory=dict)  # program_id → base points standing
    category: dict[str, PointsCategory] = Field(default_factory=dict)  # where they were earned
    redeemed: list[Redeemed] = Field(default_factory=list)
    return_ids: list[str] = Field(default_factory=list)
    # Digests of the bodies accepted under these ids (rules.identity); None: kept before.
    digest: str | None = None
    return_digests: dict[str, str] = Field(default_factory=dict)  # return_id → digest

    @property
    def revision(self) -> tuple[int, int]:
        return len(self.return_ids), len(self.redeemed)


class Hold(BaseModel):
    """Earned points held in PROMISED or TRIGGER until released to REGULAR."""

    program_id: str
    category: PointsCategory
    transaction_id: str
    points: int
    expires_at: datetime | None
    release_at: datetime | None  # None: released by an activity


class Referral(BaseModel):
    """A referral this member's purchase paid to their referrer: paid once per programme, and
    taken back if that purchase is returned until it no longer qualifies."""

    transaction_id: str  # the qualifying purchase
    points: int  # what the referrer was paid
    spend_min_cents: int  # the policy's threshold when it was paid
    step_id: str  # the ReferralQualified step's event_id
    returned: bool = False


class ExpiredLot(BaseModel):
    """Points of one lot that expired and that no return has set against it yet.

    A return takes back a purchase's points; those of them that expired are gone already, and
    taking them again would charge the member twice (ADR 43, addendum). Lots keep points by
    expiry date, not by purchase, so a return counts the expired points of its purchase's lot
    as its own first, up to what it takes, and uses them up: across every return of a lot's
    purchases, no more is left untaken than expired. Kept while a purchase with points in
    the lot may still be returned (`purchases.forget_old_purchases`)."""

    program_id: str
    expires_at: datetime
    points: int


class Reserved(BaseModel):
    """Points promised to a request in flight (a reward redemption waiting for its stock):
    still in the balance, but no longer spendable by anything else."""

    program_id: str
    points: int


class InFlight(BaseModel):
    """A transfer debited here whose recipient has not answered yet: what the sender's answer
    to the request will say once they do (`steps.transfer_credited`, `steps.transfer_back`).
    Satisfies `rules.outcomes.Request`."""

    request_type: ClassVar[RequestType] = RequestType.POINTS_TRANSFER

    event_id: str  # the request's
    occurred_at: datetime
    member_id: str
    command_id: str
    points: int
    ledger_event_log_id: str  # the sender's debit


Parked = (
    TransactionCompleted | TransactionReturned | MemberMergedAway | ActivityRecorded
    | ReturnForwarded
)  # fmt: skip
"""What waits in an unknown member's state for their enrolment: their purchases, returns and
activities (the app's events can overtake the enrolment too), a merge into them (the
victim's balances) and the returns of the victim's purchases forwarded after it."""


class MemberLedger(BaseModel):
    """Everything the ledger rules know about one member."""

    member_id: str
    status: str = "ACTIVE"  # ACTIVE | MERGED
    merged_into: str | None = None
    sequence: int = 0
    programs: list[str] = Field(default_factory=list)
    accounts: dict[str, tuple[Lot, ...]] = Field(default_factory=dict)
    purchases: dict[str, Purchase] = Field(default_factory=dict)
    holds: list[Hold] = Field(default_factory=list)
    outcomes: dict[str, RequestAccepted | RequestRejected] = Field(default_factory=dict)
    requests: dict[str, str] = Field(default_factory=dict)  # command_id → digest of its body
    enrolments: dict[str, str] = Field(default_factory=dict)  # event_id → digest of its body
    steps_applied: list[str] = Field(default_factory=list)
    expiry_days: dict[str, date] = Field(default_factory=dict)  # program_id → last run
    parked: list[Parked] = Field(default_factory=list)
    referrer_member_id: str | None = None  # who referred this member, from the enrolment
    referrals: dict[str, Referral] = Field(default_factory=dict)  # program_id → referral paid
    reserved: dict[str, Reserved] = Field(default_factory=dict)  # command_id → points reserved
    transfers: dict[str, InFlight] = Field(default_factory=dict)  # command_id → not answered
    expired: list[ExpiredLot] = Field(default_factory=list)  # not yet set against a return

    def lots(self, program_id: str, category: PointsCategory) -> tuple[Lot, ...]:
        return self.accounts.get(account_key(program_id, category), ())

    def balance(self, program_id: str, category: PointsCategory) -> int:
        return sum(lot.points for lot in self.lots(program_id, category))

    def spendable(self, program_id: str, category: PointsCategory = PointsCategory.REGULAR) -> int:
        """The category's balance less what requests in flight have reserved (reservations
        hold REGULAR points only)."""
        if category is not PointsCategory.REGULAR:
            return self.balance(program_id, category)
        held = sum(r.points for r in self.reserved.values() if r.program_id == program_id)
        return self.balance(program_id, PointsCategory.REGULAR) - held

    def has_account(self, program_id: str, category: PointsCategory) -> bool:
        return account_key(program_id, category) in self.accounts


def moves_as_pairs(moves: list[Move]) -> list[tuple[datetime | None, int]]:
    """Moves in the serialisable form kept in state."""
    return [(move.expires_at, move.points) for move in moves]
