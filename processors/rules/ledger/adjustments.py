"""Back-office points adjustments: bulk awards, and points, redemptions and expiries imported
from a previous system (seed 001's "Other bulk award events", "Imported points", "Imports for
points redemption or expiry"; ADR 12).

A credit repays any deficit first, then adds a lot expiring when the request says or by the
programme's policy. An imported debit is history and is recorded whole: it may take the
balance below zero, like a return. A repeated command_id re-emits the original outcome and
books nothing (DESIGN.md §5.15). It never moves held (PROMISED, TRIGGER) points.
"""

from __future__ import annotations

from typing import Any, Final

from processors.contract.common import PointsCategory
from processors.contract.ledger import EntryKind, LedgerEventType
from processors.contract.outcomes import RejectionReason
from processors.contract.redemptions import PointsAdjustmentKind, PointsAdjustmentRequested
from processors.rules import outcomes
from processors.rules.ledger import policy, requests
from processors.rules.ledger.draft import Draft
from processors.rules.ledger.result import Programs, Result
from processors.rules.ledger.state import MemberLedger
from processors.rules.outcomes import Outcome

BOOKING: Final[dict[PointsAdjustmentKind, tuple[LedgerEventType, EntryKind]]] = {
    PointsAdjustmentKind.BULK_AWARD: (LedgerEventType.BULK_AWARD, EntryKind.ALLOCATION),
    PointsAdjustmentKind.IMPORTED_POINTS: (LedgerEventType.POINTS_IMPORT, EntryKind.IMPORT),
    PointsAdjustmentKind.IMPORTED_REDEMPTION: (
        LedgerEventType.POINTS_IMPORT,
        EntryKind.REDEMPTION,
    ),
    PointsAdjustmentKind.IMPORTED_EXPIRY: (LedgerEventType.POINTS_IMPORT, EntryKind.EXPIRY),
    PointsAdjustmentKind.MANUAL_CREDIT: (LedgerEventType.MANUAL_ADJUSTMENT, EntryKind.ADJUSTMENT),
    PointsAdjustmentKind.MANUAL_DEBIT: (LedgerEventType.MANUAL_ADJUSTMENT, EntryKind.ADJUSTMENT),
}
"""How each kind is booked: the ledger event type and the kind of its entry."""

Refusal = tuple[RejectionReason, str]


def adjust(
    state: MemberLedger | None, request: PointsAdjustmentRequested, programs: Programs
) -> Result:
    """Book one adjustment into the programme's REGULAR account, or refuse it whole.

    1. A command_id already answered: its outcome again, nothing booked.
    2. Refused (member unknown or merged, programme unknown or not the member's, a held
       category, an unknown kind): a RequestRejected, nothing booked.
    3. Else one ledger event (BULK_AWARD, POINTS_IMPORT or MANUAL_ADJUSTMENT), then a
       RequestAccepted naming it.
    """
    repeated = requests.repeat(state, request)
    if repeated is not None:
        return repeated
    refusal = _refusal(state, request, programs)
    if refusal is not None:
        reason, detail = refusal
        return Result(state, [_answer(state, request, reason=reason, detail=detail)])
    assert state is not None
    event_type, entry_kind = BOOKING[request.kind]
    draft = Draft(
        state,
        event_type,
        cause_event_id=request.event_id,
        occurred_at=request.occurred_at,
        source=request.source,
    )
    category = PointsCategory.REGULAR
    if request.kind.is_credit:
        expiry = request.expires_at or policy.expires_at(
            programs[request.program_id], request.occurred_at
        )
        draft.credit(request.program_id, category, entry_kind, request.points, expiry)
    else:
        # History from the previous system, or an agent's correction, is recorded whole, even
        # below zero (ADR 12).
        draft.debit(request.program_id, category, entry_kind, request.points)
    sealed = draft.seal()
    assert sealed is not None, "an adjustment of > 0 points always has an entry"
    balance = state.balance(request.program_id, category)
    moved = "credited" if request.kind.is_credit else "debited"
    detail = f"{request.kind.value}: {request.points} points {moved}; balance {balance}"
    outcome = _answer(
        state,
        request,
        points_debited=0 if request.kind.is_credit else request.points,
        ledger_event_log_id=sealed.event_log_id,
        detail=detail,
    )
    return Result(state, [sealed, outcome])


def _refusal(
    state: MemberLedger | None, request: PointsAdjustmentRequested, programs: Programs
) -> Refusal | None:
    """Why the adjustment cannot be booked, checked in this order; None if it can."""
    if state is None or state.status == "UNKNOWN":
        return RejectionReason.unknown_member, "no such member"
    if state.status == "MERGED":
        return RejectionReason.member_merged, f"merged into {state.merged_into}"
    if request.program_id not in programs:
        return RejectionReason.unknown_program, f"no programme {request.program_id} configured"
    if request.program_id not in state.programs:
        return RejectionReason.not_eligible, f"not a member of programme {request.program_id}"
    if request.kind not in BOOKING:
        return RejectionReason.invalid_request, f"unknown adjustment kind {request.kind.value}"
    if request.category is not PointsCategory.REGULAR:
        return (
            RejectionReason.invalid_request,
            f"adjustments book into REGULAR only, not {request.category.value}",
        )
    return None


def _answer(
    state: MemberLedger | None,
    request: PointsAdjustmentRequested,
    *,
    reason: RejectionReason | None = None,
    **accepted: Any,
) -> Outcome:
    """The outcome, kept in the member's state (when there is one) for repeated commands."""
    return requests.keep(state, request, outcomes.answer(request, reason=reason, **accepted))
