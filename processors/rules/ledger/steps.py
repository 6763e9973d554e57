"""The receiving side of two-member operations (transfer, bounce, merge) and the victim's
side of a merge: each step applied once (DESIGN.md §2, §5.18, §5.23)."""

from __future__ import annotations

from processors.contract.common import PointsCategory
from processors.contract.enrolments import MembersMerged
from processors.contract.internal import (
    HeldPoints,
    LotPoints,
    MemberMergedAway,
    PointsTransferBounced,
    PointsTransferCredited,
    PointsTransferDebited,
)
from processors.contract.ledger import AccountBalance, EntryKind, LedgerEventType
from processors.contract.ledger import Lot as LotOut
from processors.contract.outcomes import RejectionReason
from processors.rules import outcomes
from processors.rules.arithmetic import derived_id
from processors.rules.ledger import lots, purchases
from processors.rules.ledger.draft import Draft
from processors.rules.ledger.lots import Move
from processors.rules.ledger.result import Result, emit, required
from processors.rules.ledger.state import (
    Hold,
    MemberLedger,
    account_key,
)


def transfer_in(state: MemberLedger | None, step: PointsTransferDebited) -> Result:
    """The recipient's step: credit the points into lots of the same expiry, or bounce them
    back when the recipient cannot hold them."""
    if state is not None and step.event_id in state.steps_applied:
        return Result(state, note="transfer already credited")
    problem, rejection = None, None
    if state is None or state.status == "UNKNOWN":
        problem, rejection = "recipient is not a member", RejectionReason.unknown_member
    elif state.status == "MERGED":
        problem = f"recipient merged into {state.merged_into}"
        rejection = RejectionReason.member_merged
    elif step.program_id not in state.programs:
        problem = f"recipient is not in programme {step.program_id}"
        rejection = RejectionReason.not_eligible
    if problem is not None:
        bounce = PointsTransferBounced(
            event_id=derived_id("STEP", step.event_id, "bounce"),
            occurred_at=step.occurred_at,
            member_id=step.sender_member_id,
            recipient_member_id=step.member_id,
            program_id=step.program_id,
            command_id=step.command_id,
            source=step.source,
            reason=problem,
            lots=step.lots,
            rejection=rejection,
        )
        if state is not None:
            state.steps_applied.append(step.event_id)
        return Result(state, [bounce], note=problem)
    state = required(state)
    state.steps_applied.append(step.event_id)
    draft = Draft(
        state,
        LedgerEventType.POINTS_TRANSFER,
        cause_event_id=step.request_event_id,
        occurred_at=step.occurred_at,
        source=step.source,
        discriminator="in",
        related_member_id=step.sender_member_id,
    )
    result = _credit_transferred(state, draft, step.program_id, step.lots)
    result.emitted.append(
        PointsTransferCredited(
            event_id=derived_id("STEP", step.event_id, "credited"),
            occurred_at=step.occurred_at,
            member_id=step.sender_member_id,
            recipient_member_id=step.member_id,
            program_id=step.program_id,
            command_id=step.command_id,
            points=sum(lot.points for lot in step.lots),
            recipient_ledger_event_log_id=draft.event_log_id,
        )
    )
    return result


def transfer_credited(state: MemberLedger | None, step: PointsTransferCredited) -> Result:
    """The sender's answer once the recipient took the points: accepted (DESIGN.md §5.23)."""
    pending = state.transfers.pop(step.command_id, None) if state is not None else None
    if pending is None:  # answered already, or accepted at once by an engine before this step
        return Result(state, note="transfer already answered")
    accepted = outcomes.answer(
        pending, points_debited=pending.points, discount_cents=None,
        ledger_event_log_id=pending.ledger_event_log_id,
        detail=f"{step.points} points credited to {step.recipient_member_id}",
    )  # fmt: skip
    assert state is not None
    state.outcomes[pending.command_id] = accepted  # the request's digest is kept since its debit
    return Result(state, [accepted])


def _credit_transferred(
    state: MemberLedger, draft: Draft, program_id: str, moved: list[LotPoints]
) -> Result:
    """Credit transferred points into REGULAR lots of the expiry they came with."""
    result = Result(state)
    for lot in moved:
        draft.credit(
            program_id, PointsCategory.REGULAR, EntryKind.TRANSFER_IN, lot.points, lot.expires_at
        )
    emit(result, draft)
    return result


def transfer_back(state: MemberLedger | None, bounce: PointsTransferBounced) -> Result:
    if state is None:
        # The sender's own debit made this step, so the sender exists wherever it ran; a
        # missing state means this worker's inputs are out of order. Park nothing: note it.
        return Result(None, note="bounce for an unknown sender")
    if bounce.event_id in state.steps_applied:
        return Result(state, note="bounce already credited")
    state.steps_applied.append(bounce.event_id)
    draft = Draft(
        state,
        LedgerEventType.POINTS_TRANSFER,
        cause_event_id=bounce.event_id,
        occurred_at=bounce.occurred_at,
        source=bounce.source,
        related_member_id=bounce.recipient_member_id,
    )
    result = _credit_transferred(state, draft, bounce.program_id, bounce.lots)
    pending = state.transfers.pop(bounce.command_id, None)
    if pending is not None:  # the request is answered now: refused, its points given back
        reason = bounce.rejection or RejectionReason.not_eligible
        detail = f"{bounce.reason}; the points were given back"
        refused = outcomes.answer(pending, reason=reason, detail=detail)
        state.outcomes[pending.command_id] = refused
        result.emitted.append(refused)
    return result


def merge_away(state: MemberLedger | None, merged: MembersMerged) -> Result:
    """The victim's step: a final entry per non-zero account brings it to zero (a debit, or a
    credit when negative), then the survivor's partition takes the balances (DESIGN.md §5.18)."""
    if state is None or state.status == "UNKNOWN":
        return Result(state, note="merge of an unknown member")
    if state.status == "MERGED":
        return Result(state, note="member already merged")
    result = Result(state)
    draft = Draft(
        state,
        LedgerEventType.MERGE_CUSTOMER,
        cause_event_id=merged.event_id,
        occurred_at=merged.occurred_at,
        source=merged.source,
        related_member_id=merged.survivor_member_id,
    )
    accounts = []
    for key, account in list(state.accounts.items()):
        program_id, category_value = key.split("|")
        category = PointsCategory(category_value)
        accounts.append(
            AccountBalance(
                program_id=program_id,
                category=category,
                balance=lots.balance(account),
                lots=[LotOut(expires_at=lot.expires_at, points=lot.points) for lot in account],
            )
        )
        positive = [Move(lot.expires_at, lot.points) for lot in account if lot.points > 0]
        draft.debit_exactly(program_id, category, EntryKind.MERGE, positive)
        deficit = -sum(lot.points for lot in account if lot.points < 0)
        draft.credit(program_id, category, EntryKind.MERGE, deficit, None)
    held = [
        HeldPoints(
            program_id=h.program_id,
            category=h.category,
            points=h.points,
            expires_at=h.expires_at,
            release_at=h.release_at,
            transaction_id=h.transaction_id,
        )
        for h in state.holds
    ]
    state.status = "MERGED"
    state.merged_into = merged.survivor_member_id
    state.holds.clear()
    emit(result, draft)
    result.emitted.append(
        MemberMergedAway(
            event_id=derived_id("STEP", merged.event_id, "merge"),
            occurred_at=merged.occurred_at,
            member_id=merged.survivor_member_id,
            victim_member_id=merged.victim_member_id,
            source=merged.source,
            accounts=accounts,
            held=held,
        )
    )
    return result


def merge_in(state: MemberLedger | None, step: MemberMergedAway) -> Result:
    """The survivor's step: each of the victim's lots is credited (a deficit is debited). A
    survivor who is not a member yet keeps the step parked with their purchases, applied when
    they enrol: the victim's points wait for them, and the enrolment stays theirs to make. A
    survivor merged away since passes the step on to its own survivor."""
    if state is None:
        return purchases.park(step)
    if state.status == "UNKNOWN":
        return purchases.park_more(state, step)
    if state.status == "MERGED" and state.merged_into is not None:
        return purchases.pass_on(state, step, "merge")
    if step.event_id in state.steps_applied:
        return Result(state, note="merge already applied")
    state.steps_applied.append(step.event_id)
    for held in step.held:
        # The victim's purchases are not the survivor's: keep the hold apart by its origin.
        state.holds.append(
            Hold(
                program_id=held.program_id,
                category=held.category,
                points=held.points,
                expires_at=held.expires_at,
                release_at=held.release_at,
                transaction_id=f"{step.victim_member_id}/{held.transaction_id}",
            )
        )
    result = Result(state)
    draft = Draft(
        state,
        LedgerEventType.MERGE_CUSTOMER,
        cause_event_id=step.event_id,
        occurred_at=step.occurred_at,
        source=step.source,
        related_member_id=step.victim_member_id,
    )
    for account in step.accounts:
        if account.program_id not in state.programs:
            state.programs.append(account.program_id)
        key = account_key(account.program_id, account.category)
        state.accounts.setdefault(key, ())
        for lot in account.lots:
            if lot.points > 0:
                draft.credit(
                    account.program_id,
                    account.category,
                    EntryKind.MERGE,
                    lot.points,
                    lot.expires_at,
                )
            elif lot.points < 0:
                draft.debit(account.program_id, account.category, EntryKind.MERGE, -lot.points)
    emit(result, draft)
    return result
