"""What each input means for one member's ledger: the single entry point of the ledger rules.

`handle(state, message, programs)` returns the member's next state and the events to emit.
It never reads a clock: every time comes from the message. Each input type has a natural
idempotency key kept in the state (transaction id, return id, command id, step id, business
date), so a redelivered input changes nothing; a repeated command re-emits its outcome.

Processors must emit the outputs before they save the new state: a crash in between then
redelivers the input against the old state, which yields the same outputs with the same ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from processors.contract.activities import ActivityRecorded
from processors.contract.base import Event
from processors.contract.clock import DayStarted
from processors.contract.common import PointsCategory, Source
from processors.contract.config import ProgramConfigured
from processors.contract.enrolments import MemberEnrolled, MembersMerged
from processors.contract.internal import (
    HeldPoints,
    LotPoints,
    MemberMergedAway,
    PointsTransferBounced,
    PointsTransferDebited,
)
from processors.contract.ledger import AccountBalance, EntryKind, LedgerEventType
from processors.contract.ledger import Lot as LotOut
from processors.contract.outcomes import RejectionReason, RequestAccepted, RequestRejected
from processors.contract.redemptions import PointsRedemptionRequested, PointsTransferRequested
from processors.contract.transactions import TransactionCompleted, TransactionReturned
from processors.rules.arithmetic import derived_id, round_half_up
from processors.rules.ledger import lots, policy
from processors.rules.ledger.draft import Draft
from processors.rules.ledger.lots import Lot, Move
from processors.rules.ledger.state import (
    Hold,
    MemberLedger,
    Purchase,
    PurchasedLine,
    Redeemed,
    account_key,
    moves_as_pairs,
)

Programs = Mapping[str, ProgramConfigured]
LedgerInput = (
    MemberEnrolled
    | TransactionCompleted
    | TransactionReturned
    | PointsRedemptionRequested
    | PointsTransferRequested
    | MembersMerged
    | ActivityRecorded
    | DayStarted
    | PointsTransferDebited
    | PointsTransferBounced
    | MemberMergedAway
)
PARKED_MAX = 100


@dataclass
class Result:
    """The member's next state (None: still unknown) and what to emit, in order."""

    state: MemberLedger | None
    emitted: list[Event] = field(default_factory=list)
    note: str = ""  # why nothing happened, for the processor's log and metrics


def handle(state: MemberLedger | None, message: LedgerInput, programs: Programs) -> Result:
    """Apply one input to one member's ledger.

    Takes ownership of `state` and returns it changed (copying a member's whole state for
    every event cost more than all the rules together): a caller that needs the state as it
    was keeps its own copy, e.g. the serialised bytes it loaded it from.
    """
    working = state
    match message:
        case MemberEnrolled():
            return _enrol(working, message, programs)
        case TransactionCompleted() | TransactionReturned() if working is None:
            return _park(message)
        case TransactionCompleted():
            return _earn(_required(working), message, programs)
        case TransactionReturned():
            return _return(_required(working), message, programs)
        case PointsRedemptionRequested():
            return _redeem(working, message, programs)
        case PointsTransferRequested():
            return _transfer_out(working, message)
        case PointsTransferDebited():
            return _transfer_in(working, message)
        case PointsTransferBounced():
            return _transfer_back(working, message)
        case MembersMerged():
            return _merge_away(working, message)
        case MemberMergedAway():
            return _merge_in(working, message)
        case ActivityRecorded():
            return _release_on_activity(working, message, programs)
        case DayStarted():
            return _start_day(working, message, programs)
    raise TypeError(f"the ledger does not handle {type(message).__name__}")


def _required(state: MemberLedger | None) -> MemberLedger:
    assert state is not None
    return state


def _park(message: TransactionCompleted | TransactionReturned) -> Result:
    # Topics are not ordered with each other: a first purchase can overtake its enrolment.
    # The processor keeps parked inputs in the member's state (see `parked_state`).
    parked = MemberLedger(member_id=message.partition_key(), status="UNKNOWN", parked=[message])
    return Result(parked, note="parked until the member enrols")


def _emit(result: Result, draft: Draft) -> None:
    event = draft.seal()
    if event is not None:
        result.emitted.append(event)


# --- enrolment ---------------------------------------------------------------------------


def _enrol(state: MemberLedger | None, enrolled: MemberEnrolled, programs: Programs) -> Result:
    parked: list[TransactionCompleted | TransactionReturned] = []
    if state is None or state.status == "UNKNOWN":
        parked = list(state.parked) if state is not None else []
        state = MemberLedger(member_id=enrolled.member_id)
    result = Result(state)
    draft = Draft(
        state,
        LedgerEventType.CUSTOMER_REGISTRATION,
        cause_event_id=enrolled.event_id,
        occurred_at=enrolled.occurred_at,
        source=enrolled.source,
        store_id=enrolled.store_id,
    )
    imported = {(b.program_id, b.category): b for b in enrolled.imported_balances}
    for program_id in enrolled.program_ids:
        program = programs.get(program_id)
        categories = program.categories if program is not None else [PointsCategory.REGULAR]
        if program_id not in state.programs:
            state.programs.append(program_id)
        for category in categories:
            if state.has_account(program_id, category):
                continue  # already open: a redelivered or repeated enrolment
            carried = imported.get((program_id, category))
            expiry = None
            if carried is not None and carried.points > 0:
                expiry = carried.expires_at or (
                    policy.expires_at(program, enrolled.occurred_at) if program else None
                )
            draft.open_account(program_id, category, carried.points if carried else 0, expiry)
    _emit(result, draft)
    for message in parked:
        replayed = handle(result.state, message, programs)
        result.state = replayed.state
        result.emitted += replayed.emitted
    return result


# --- purchases and returns ----------------------------------------------------------------


def _earn(state: MemberLedger, purchase: TransactionCompleted, programs: Programs) -> Result:
    result = Result(state)
    if state.status == "MERGED":
        result.note = f"member merged into {state.merged_into}; purchase not credited here"
        return result
    if state.status == "UNKNOWN":
        return _park_more(state, purchase)
    if purchase.transaction_id in state.purchases:
        result.note = "purchase already credited"
        return result
    record = Purchase(
        transaction_id=purchase.transaction_id,
        province=purchase.store.province,
        lines=[
            PurchasedLine(line_id=line.line_id, sku=line.sku, amount_cents=line.amount_cents)
            for line in purchase.lines
        ],
    )
    state.purchases[purchase.transaction_id] = record
    draft = Draft(
        state,
        LedgerEventType.TRANSACTION_ADD,
        cause_event_id=purchase.event_id,
        occurred_at=purchase.occurred_at,
        source=purchase.source,
        store_id=purchase.store.store_id,
        till_id=purchase.till_id,
        transaction_id=purchase.transaction_id,
        transaction_number=purchase.transaction_number,
    )
    for program_id in state.programs:
        program = programs.get(program_id)
        if program is None or program.market != purchase.market:
            continue
        spend = policy.eligible_spend_cents(program, purchase.lines, purchase.store.province)
        points = policy.base_points(program, spend)
        category = policy.earn_category(program)
        expiry = policy.expires_at(program, purchase.occurred_at)
        record.earned[program_id] = points
        record.category[program_id] = category
        draft.credit(program_id, category, EntryKind.ALLOCATION, points, expiry)
        if category is not PointsCategory.REGULAR and points > 0:
            state.holds.append(
                Hold(
                    program_id=program_id,
                    category=category,
                    transaction_id=purchase.transaction_id,
                    points=points,
                    expires_at=expiry,
                    release_at=policy.release_at(program, purchase.occurred_at),
                )
            )
    _emit(result, draft)
    return result


def _park_more(state: MemberLedger, message: TransactionCompleted | TransactionReturned) -> Result:
    if len(state.parked) < PARKED_MAX and message not in state.parked:
        state.parked.append(message)
    return Result(state, note="parked until the member enrols")


def _return(state: MemberLedger, returned: TransactionReturned, programs: Programs) -> Result:
    """Re-evaluate the purchase without the returned lines; debit points no longer earned and
    credit back points redeemed on the returned lines, in one event (DESIGN.md §5.14)."""
    result = Result(state)
    if state.status == "UNKNOWN":
        return _park_more(state, returned)
    record = state.purchases.get(returned.transaction_id)
    if record is None:
        result.note = f"return of unknown transaction {returned.transaction_id}"
        return result
    if returned.return_id in record.return_ids:
        result.note = "return already applied"
        return result
    record.return_ids.append(returned.return_id)
    by_line = {line.line_id: line for line in record.lines}
    refunded = 0
    for item in returned.lines:
        line = by_line.get(item.line_id)
        if line is None:
            continue
        amount = min(item.amount_cents, line.amount_cents - line.returned_cents)
        line.returned_cents += amount
        refunded += amount
    original_total = sum(line.amount_cents for line in record.lines)
    draft = Draft(
        state,
        LedgerEventType.TRANSACTION_RETURN,
        cause_event_id=returned.event_id,
        occurred_at=returned.occurred_at,
        source=returned.source,
        store_id=returned.store.store_id,
        till_id=returned.till_id,
        transaction_id=returned.return_id,
    )
    for program_id, earned in record.earned.items():
        program = programs.get(program_id)
        if program is None:
            continue
        kept_lines = [
            line.model_copy(update={"amount_cents": line.amount_cents - line.returned_cents})
            for line in record.lines
        ]
        spend = sum(
            line.amount_cents
            for line in kept_lines
            if line.sku not in policy.excluded_skus(program, record.province)
        )
        now_due = policy.base_points(program, spend)
        to_debit = max(earned - now_due, 0)
        record.earned[program_id] = earned - to_debit
        hold = _take_from_hold(state, record, program_id, to_debit)
        if hold is not None:
            # From the very lot the hold sits in, so the other holds keep their points.
            draft.debit_exactly(
                program_id, hold.category, EntryKind.RETURN, [Move(hold.expires_at, to_debit)]
            )
        else:
            draft.debit(program_id, PointsCategory.REGULAR, EntryKind.RETURN, to_debit)
    for redeemed in record.redeemed:
        share = round_half_up(Decimal(redeemed.points * refunded) / max(original_total, 1))
        give_back = min(share, redeemed.points - redeemed.reversed_points)
        if give_back <= 0:
            continue
        redeemed.reversed_points += give_back
        for expires_at, points in _restore_order(redeemed, give_back):
            draft.credit(
                redeemed.program_id,
                PointsCategory.REGULAR,
                EntryKind.REDEMPTION_REVERSAL,
                points,
                expires_at,
            )
    _emit(result, draft)
    return result


def _take_from_hold(
    state: MemberLedger, record: Purchase, program_id: str, points: int
) -> Hold | None:
    """The purchase's hold, reduced by `points`, if the points are still held there; None
    when they were released already (the return then takes them from REGULAR)."""
    if (
        points <= 0
        or record.category.get(program_id, PointsCategory.REGULAR) is PointsCategory.REGULAR
    ):
        return None
    for hold in state.holds:
        mine = hold.program_id == program_id and hold.transaction_id == record.transaction_id
        if mine and hold.points >= points:
            hold.points -= points
            if hold.points == 0:
                state.holds.remove(hold)
            return hold
    return None


def _restore_order(redeemed: Redeemed, points: int) -> list[tuple[datetime | None, int]]:
    """Give back into the lots the redemption drew from, latest drawn first."""
    out: list[tuple[datetime | None, int]] = []
    remaining = points
    for expires_at, drawn in reversed(redeemed.moves):
        if remaining == 0:
            break
        back = min(drawn, remaining)
        out.append((expires_at, back))
        remaining -= back
    if remaining:
        out.append((None, remaining))
    return out


# --- requests: redemption and transfer ----------------------------------------------------


def _answer(
    state: MemberLedger | None,
    request: PointsRedemptionRequested | PointsTransferRequested,
    *,
    reason: RejectionReason | None = None,
    detail: str = "",
    points: int = 0,
    discount_cents: int = 0,
    ledger_event_log_id: str | None = None,
) -> RequestAccepted | RequestRejected:
    common: dict[str, Any] = {
        "event_id": derived_id("OUT", request.member_id, request.command_id),
        "occurred_at": request.occurred_at,
        "member_id": request.member_id,
        "command_id": request.command_id,
        "request_type": request.request_type,
        "request_event_id": request.event_id,
    }
    outcome: RequestAccepted | RequestRejected
    if reason is None:
        outcome = RequestAccepted(
            **common,
            points_debited=points,
            discount_cents=discount_cents,
            ledger_event_log_id=ledger_event_log_id,
            detail=detail or None,
        )
    else:
        outcome = RequestRejected(**common, reason=reason, detail=detail)
    if state is not None:
        state.outcomes[request.command_id] = outcome
    return outcome


def _repeat(state: MemberLedger | None, command_id: str) -> Result | None:
    if state is not None and command_id in state.outcomes:
        return Result(state, [state.outcomes[command_id]], note="repeated command_id")
    return None


def _not_active(state: MemberLedger | None) -> tuple[RejectionReason, str] | None:
    if state is None or state.status == "UNKNOWN":
        return RejectionReason.unknown_member, "no such member"
    if state.status == "MERGED":
        return RejectionReason.member_merged, f"merged into {state.merged_into}"
    return None


def _redeem(
    state: MemberLedger | None, request: PointsRedemptionRequested, programs: Programs
) -> Result:
    """Spend points from one or several programmes' REGULAR accounts, all or nothing; never
    below zero (DESIGN.md §5.14–15)."""
    repeated = _repeat(state, request.command_id)
    if repeated is not None:
        return repeated
    refused = _not_active(state)
    if refused is not None:
        return Result(state, [_answer(state, request, reason=refused[0], detail=refused[1])])
    state = _required(state)
    for allocation in request.allocations:
        have = state.balance(allocation.program_id, PointsCategory.REGULAR)
        if allocation.program_id not in state.programs:
            detail = f"not a member of programme {allocation.program_id}"
            return Result(
                state, [_answer(state, request, reason=RejectionReason.not_eligible, detail=detail)]
            )
        problem = _redemption_problem(programs.get(allocation.program_id), allocation.points)
        if problem is not None:
            detail = f"{allocation.program_id}: {problem}"
            return Result(
                state,
                [_answer(state, request, reason=RejectionReason.invalid_request, detail=detail)],
            )
        if have < allocation.points:
            detail = f"{allocation.program_id}: balance {have} < {allocation.points} requested"
            return Result(
                state,
                [
                    _answer(
                        state, request, reason=RejectionReason.insufficient_points, detail=detail
                    )
                ],
            )
    result = Result(state)
    draft = Draft(
        state,
        LedgerEventType.POINTS_REDEMPTION,
        cause_event_id=request.event_id,
        occurred_at=request.occurred_at,
        source=request.source,
        store_id=request.store_id,
        till_id=request.till_id,
        transaction_id=request.transaction_id,
    )
    total = 0
    discount = 0
    for allocation in request.allocations:
        moves = draft.debit(
            allocation.program_id, PointsCategory.REGULAR, EntryKind.REDEMPTION, allocation.points
        )
        total += allocation.points
        discount += _discount_cents(programs.get(allocation.program_id), allocation.points)
        purchase = state.purchases.get(request.transaction_id or "")
        if purchase is not None:
            purchase.redeemed.append(
                Redeemed(
                    program_id=allocation.program_id,
                    points=allocation.points,
                    moves=moves_as_pairs(moves),
                )
            )
    sealed = draft.seal()
    if sealed is not None:
        result.emitted.append(sealed)
    result.emitted.append(
        _answer(
            state,
            request,
            points=total,
            discount_cents=discount,
            ledger_event_log_id=sealed.event_log_id if sealed else None,
        )
    )
    return result


def _discount_cents(program: ProgramConfigured | None, points: int) -> int:
    """The discount `points` buy: whole blocks only (checked by `_redemption_problem`)."""
    rule = program.points_redemption if program is not None else None
    if rule is None:
        return 0
    return points // rule.points_per_block * rule.cents_per_block


def _redemption_problem(program: ProgramConfigured | None, points: int) -> str | None:
    rule = program.points_redemption if program is not None else None
    if program is None or rule is None:
        return "the programme does not offer points for a discount"
    if points % rule.points_per_block:
        return f"points must be whole blocks of {rule.points_per_block}"
    if points // rule.points_per_block < rule.blocks_min:
        return f"at least {rule.blocks_min} block(s) of {rule.points_per_block} points"
    return None


def _transfer_out(state: MemberLedger | None, request: PointsTransferRequested) -> Result:
    """The sender's step: debit (never overdrawing), then hand the points to the recipient's
    partition with their lots (DESIGN.md §2, §5.23)."""
    repeated = _repeat(state, request.command_id)
    if repeated is not None:
        return repeated
    refused = _not_active(state)
    if refused is not None:
        return Result(state, [_answer(state, request, reason=refused[0], detail=refused[1])])
    state = _required(state)
    have = state.balance(request.program_id, PointsCategory.REGULAR)
    if request.program_id not in state.programs:
        detail = f"not a member of programme {request.program_id}"
        return Result(
            state, [_answer(state, request, reason=RejectionReason.not_eligible, detail=detail)]
        )
    if have < request.points:
        detail = f"balance {have} < {request.points} to transfer"
        return Result(
            state,
            [_answer(state, request, reason=RejectionReason.insufficient_points, detail=detail)],
        )
    result = Result(state)
    draft = Draft(
        state,
        LedgerEventType.POINTS_TRANSFER,
        cause_event_id=request.event_id,
        occurred_at=request.occurred_at,
        source=request.source,
        related_member_id=request.recipient_member_id,
    )
    moves = draft.debit(
        request.program_id, PointsCategory.REGULAR, EntryKind.TRANSFER_OUT, request.points
    )
    sealed = draft.seal()
    assert sealed is not None
    result.emitted += [
        sealed,
        PointsTransferDebited(
            event_id=derived_id("STEP", request.member_id, request.command_id, "transfer"),
            occurred_at=request.occurred_at,
            member_id=request.recipient_member_id,
            sender_member_id=request.member_id,
            program_id=request.program_id,
            command_id=request.command_id,
            request_event_id=request.event_id,
            source=request.source,
            lots=[LotPoints(expires_at=m.expires_at, points=m.points) for m in moves],
        ),
        _answer(state, request, points=request.points, ledger_event_log_id=sealed.event_log_id),
    ]
    return result


def _transfer_in(state: MemberLedger | None, step: PointsTransferDebited) -> Result:
    """The recipient's step: credit the points into lots of the same expiry, or bounce them
    back when the recipient cannot hold them."""
    if state is not None and step.event_id in state.steps_applied:
        return Result(state, note="transfer already credited")
    problem = None
    if state is None or state.status == "UNKNOWN":
        problem = "recipient is not a member"
    elif state.status == "MERGED":
        problem = f"recipient merged into {state.merged_into}"
    elif step.program_id not in state.programs:
        problem = f"recipient is not in programme {step.program_id}"
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
        )
        if state is not None:
            state.steps_applied.append(step.event_id)
        return Result(state, [bounce], note=problem)
    state = _required(state)
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
    return _credit_transferred(state, draft, step.program_id, step.lots)


def _credit_transferred(
    state: MemberLedger, draft: Draft, program_id: str, moved: list[LotPoints]
) -> Result:
    """Credit transferred points into REGULAR lots of the expiry they came with."""
    result = Result(state)
    for lot in moved:
        draft.credit(
            program_id, PointsCategory.REGULAR, EntryKind.TRANSFER_IN, lot.points, lot.expires_at
        )
    _emit(result, draft)
    return result


def _transfer_back(state: MemberLedger | None, bounce: PointsTransferBounced) -> Result:
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
    return _credit_transferred(state, draft, bounce.program_id, bounce.lots)


# --- merges ------------------------------------------------------------------------------


def _merge_away(state: MemberLedger | None, merged: MembersMerged) -> Result:
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
    _emit(result, draft)
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


def _merge_in(state: MemberLedger | None, step: MemberMergedAway) -> Result:
    """The survivor's step: each of the victim's lots is credited (a deficit is debited)."""
    if state is None or state.status == "UNKNOWN":
        state = MemberLedger(member_id=step.member_id)
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
    _emit(result, draft)
    return result


# --- time and triggers --------------------------------------------------------------------


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


def _release_on_activity(
    state: MemberLedger | None, activity: ActivityRecorded, programs: Programs
) -> Result:
    if state is None or state.status != "ACTIVE":
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
    _emit(result, draft)
    return result


def _start_day(state: MemberLedger | None, day: DayStarted, programs: Programs) -> Result:
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
        _emit(result, conversion)
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
            for hold in [
                h for h in state.holds if h.program_id == program_id and h.category == category
            ]:
                if hold.expires_at is not None and hold.expires_at <= day.started_at:
                    state.holds.remove(hold)
        _emit(result, expiry)
    return result


def parked_state(state: MemberLedger | None) -> bool:
    """True if `state` only holds inputs waiting for the member's enrolment."""
    return state is not None and state.status == "UNKNOWN"


__all__ = ["LedgerInput", "Lot", "MemberLedger", "Result", "handle", "parked_state"]
