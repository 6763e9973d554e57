"""Time and triggers: releasing held points and expiring lots on the daily run, and
releasing trigger-held points on the activity (DESIGN.md §5.12–13)."""

from __future__ import annotations

from processors.contract.activities import ActivityRecorded
from processors.contract.clock import DayStarted
from processors.contract.common import PointsCategory, Source
from processors.contract.internal import ActivityForwarded
from processors.contract.ledger import EntryKind, LedgerEventType
from processors.rules.arithmetic import derived_id
from processors.rules.ledger import lots, policy, purchases
from processors.rules.ledger.draft import Draft
from processors.rules.ledger.lots import Move
from processors.rules.ledger.result import Programs, Result, emit
from processors.rules.ledger.state import (
    Hold,
    MemberLedger,
)


def _release(state: MemberLedger, draft: Draft, holds: list[Hold]) -> None:
    """Convert held points to REGULAR, keeping their expiry: debit and credit in one event."""
    for hold in holds:
        held = state.lots(hold.program_id, hold.category)
        available = sum(
            lot.points for lot in held if lot.expires_at == hold.expires_at and lot.points > 0
        )
        points = min(hold.points, available)
        draft.debit_exactly(
            hold.program_id, hold.category, EntryKind.CONVERSION, [Move(hold.expires_at, points)]
        )
        draft.credit(
            hold.program_id, PointsCategory.REGULAR, EntryKind.CONVERSION, points, hold.expires_at
        )
        state.holds.remove(hold)


def release_on_activity(
    state: MemberLedger | None, activity: ActivityRecorded, programs: Programs
) -> Result:
    if state is None:
        return purchases.park(activity)  # counted for them once they enrol
    if state.status == "UNKNOWN":
        return purchases.park_more(state, activity)
    if state.status == "MERGED" and state.merged_into is not None:
        # The old account's app events still count: for the survivor, in their partition.
        forward = ActivityForwarded.of(
            activity,
            state.merged_into,
            derived_id("STEP", activity.event_id, "forward", state.merged_into),
        )
        return Result(state, [forward], note=f"forwarded to survivor {state.merged_into}")
    if state.status != "ACTIVE":
        return Result(state, note="activity of a member who is not active")
    due = [
        hold
        for hold in state.holds
        if hold.release_at is None
        and hold.program_id in programs
        and policy.releases_on(programs[hold.program_id], activity)
    ]
    result = Result(state)
    draft = Draft(
        state,
        LedgerEventType.PROMISED_POINTS_CONVERSION,
        cause_event_id=activity.event_id,
        occurred_at=activity.occurred_at,
        source=activity.source,
    )
    _release(state, draft, due)
    emit(result, draft)
    return result


def start_day(state: MemberLedger | None, day: DayStarted, programs: Programs) -> Result:
    """The daily run for one member: release time-held points, then expire lots whose expiry
    has come; both recorded at the time the run happened (DESIGN.md §5.12–13)."""
    if state is None or state.status != "ACTIVE":
        return Result(state)
    result = Result(state)
    for program_id in state.programs:
        program = programs.get(program_id)
        if program is None or program.market != day.market:
            continue
        last = state.expiry_days.get(program_id)
        if last is not None and last >= day.business_date:
            continue  # this day already ran
        state.expiry_days[program_id] = day.business_date
        due = [
            h
            for h in state.holds
            if h.program_id == program_id
            and h.release_at is not None
            and h.release_at <= day.started_at
        ]
        conversion = Draft(
            state,
            LedgerEventType.PROMISED_POINTS_CONVERSION,
            cause_event_id=day.event_id,
            occurred_at=day.occurred_at,
            source=Source.SYSTEM,
            discriminator=program_id,
        )
        _release(state, conversion, due)
        emit(result, conversion)
        expiry = Draft(
            state,
            LedgerEventType.POINTS_EXPIRY,
            cause_event_id=day.event_id,
            occurred_at=day.occurred_at,
            source=Source.SYSTEM,
            discriminator=program_id,
        )
        for category in program.categories:
            moves = lots.expired(state.lots(program_id, category), day.started_at)
            expiry.debit_exactly(program_id, category, EntryKind.EXPIRY, moves)
            purchases.note_expired(state, program_id, moves)
            for hold in [
                h for h in state.holds if h.program_id == program_id and h.category == category
            ]:
                if hold.expires_at is not None and hold.expires_at <= day.started_at:
                    state.holds.remove(hold)
        emit(result, expiry)
    purchases.forget_old_purchases(state)
    return result
