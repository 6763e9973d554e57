"""What each input means for one member's ledger: the single entry point of the ledger rules.

`handle(state, message, programs)` returns the member's next state and the events to emit.
It never reads a clock: every time comes from the message. Each input type has a natural
idempotency key kept in the state (transaction id, return id, command id, step id, business
date), so a redelivered input changes nothing; a repeated command re-emits its outcome.

Processors must emit the outputs before they save the new state: a crash in between then
redelivers the input against the old state, which yields the same outputs with the same ids.
"""

from __future__ import annotations

from processors.contract.activities import ActivityRecorded
from processors.contract.clock import DayStarted
from processors.contract.enrolments import MemberEnrolled, MembersMerged
from processors.contract.internal import (
    ActivityForwarded,
    MemberMergedAway,
    PointsTransferBounced,
    PointsTransferCredited,
    PointsTransferDebited,
    PurchaseForwarded,
    ReferralQualified,
    ReferralReturned,
    ReturnForwarded,
)
from processors.contract.redemptions import (
    PointsAdjustmentRequested,
    PointsRedemptionRequested,
    PointsTransferRequested,
)
from processors.contract.transactions import TransactionCompleted, TransactionReturned
from processors.rules.ledger import adjustments, daily, purchases, referrals, requests, steps
from processors.rules.ledger.lots import Lot
from processors.rules.ledger.result import Programs, Result, required
from processors.rules.ledger.state import MemberLedger

LedgerInput = (
    MemberEnrolled | TransactionCompleted | TransactionReturned | PointsRedemptionRequested
    | PointsTransferRequested | PointsAdjustmentRequested | MembersMerged | ActivityRecorded
    | DayStarted | PointsTransferDebited | PointsTransferBounced | PointsTransferCredited
    | MemberMergedAway
    | ReferralQualified | ReferralReturned | PurchaseForwarded | ReturnForwarded
    | ActivityForwarded
)  # fmt: skip


def handle(state: MemberLedger | None, message: LedgerInput, programs: Programs) -> Result:
    """Apply one input to one member's ledger.

    Takes ownership of `state` and returns it changed (copying a member's whole state for
    every event cost more than all the rules together): a caller that needs the state as it
    was keeps its own copy, e.g. the serialised bytes it loaded it from.
    """
    if isinstance(message, PurchaseForwarded):
        # Made on a member merged into this one: credited here as this member's purchase.
        message = message.purchase()
    if isinstance(message, ActivityForwarded):
        message = message.activity()  # likewise an activity: this member's
    match message:
        case MemberEnrolled():
            return purchases.enrol(state, message, programs, handle)
        case TransactionCompleted() | TransactionReturned() if state is None:
            return purchases.park(message)
        case TransactionCompleted():
            return purchases.earn(required(state), message, programs)
        case ReturnForwarded():
            return purchases.return_in(state, message)
        case TransactionReturned():
            return purchases.return_purchase(required(state), message, programs)
        case PointsRedemptionRequested():
            return requests.redeem(state, message, programs)
        case PointsTransferRequested():
            return requests.transfer_out(state, message)
        case PointsAdjustmentRequested():
            return adjustments.adjust(state, message, programs)
        case PointsTransferDebited():
            return steps.transfer_in(state, message)
        case PointsTransferBounced():
            return steps.transfer_back(state, message)
        case PointsTransferCredited():
            return steps.transfer_credited(state, message)
        case MembersMerged():
            return steps.merge_away(state, message)
        case MemberMergedAway():
            return steps.merge_in(state, message)
        case ReferralQualified():
            return referrals.credit_referrer(state, message, programs)
        case ReferralReturned():
            return referrals.debit_referrer(state, message)
        case ActivityRecorded():
            return daily.release_on_activity(state, message, programs)
        case DayStarted():
            return daily.start_day(state, message, programs)
    raise TypeError(f"the ledger does not handle {type(message).__name__}")


def parked_state(state: MemberLedger | None) -> bool:
    """True if `state` only holds inputs waiting for the member's enrolment."""
    return state is not None and state.status == "UNKNOWN"


__all__ = ["LedgerInput", "Lot", "MemberLedger", "Programs", "Result", "handle", "parked_state"]
