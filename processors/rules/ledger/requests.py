"""Members' requests that spend points: redemptions and the sender's side of a transfer.
All or nothing, never below zero; a repeated command_id re-emits its outcome (§5.15, 5.23)."""

from __future__ import annotations

from typing import Any

from processors.contract.common import PointsCategory
from processors.contract.config import ProgramConfigured
from processors.contract.internal import (
    LotPoints,
    PointsTransferDebited,
)
from processors.contract.ledger import EntryKind, LedgerEventType
from processors.contract.outcomes import RejectionReason
from processors.contract.redemptions import (
    IssuedOfferLockRequested,
    IssuedOfferRedeemRequested,
    IssuedOfferUnlockRequested,
    PointsAdjustmentRequested,
    PointsRedemptionRequested,
    PointsTransferRequested,
    PreferencesChangeRequested,
    PromoCodeLinkRequested,
    RewardGrantRecordRequested,
    RewardRedemptionRequested,
    RewardStoreOfferPurchaseRequested,
)
from processors.rules import identity, outcomes
from processors.rules.arithmetic import derived_id
from processors.rules.ledger.draft import Draft
from processors.rules.ledger.result import Programs, Result, required
from processors.rules.ledger.state import (
    InFlight,
    MemberLedger,
    Redeemed,
    moves_as_pairs,
)
from processors.rules.outcomes import Outcome

Request = (
    PointsRedemptionRequested | PointsTransferRequested | PointsAdjustmentRequested
    | RewardRedemptionRequested | RewardStoreOfferPurchaseRequested | IssuedOfferLockRequested
    | IssuedOfferRedeemRequested | IssuedOfferUnlockRequested | PromoCodeLinkRequested
    | PreferencesChangeRequested | RewardGrantRecordRequested
)  # fmt: skip
"""Every request the ledger answers."""


def reply(
    state: MemberLedger | None,
    request: Request,
    *,
    reason: RejectionReason | None = None,
    detail: str = "",
    points: int = 0,
    discount_cents: int | None = 0,
    ledger_event_log_id: str | None = None,
    **accepted: Any,
) -> Outcome:
    """The request's outcome, kept in the member's state (with its body's digest) so a repeat
    of its command_id gets it again."""
    if reason is None:
        outcome = outcomes.answer(
            request,
            points_debited=points,
            discount_cents=discount_cents,
            ledger_event_log_id=ledger_event_log_id,
            detail=detail or None,
            **accepted,
        )
    else:
        outcome = outcomes.answer(request, reason=reason, detail=detail)
    return keep(state, request, outcome)


def keep(state: MemberLedger | None, request: Request, outcome: Outcome) -> Outcome:
    """Remember `outcome`, and the body it answers, in the member's state (when there is
    one), for repeated commands."""
    if state is not None:
        state.outcomes[request.command_id] = outcome
        state.requests[request.command_id] = identity.digest(request, identity.REQUEST)
    return outcome


def repeat(state: MemberLedger | None, request: Request) -> Result | None:
    """A repeated command_id answered with its original outcome, nothing else done; the same
    command_id with another body is a `ConflictError` (rules.identity)."""
    command_id = request.command_id
    earlier = outcomes.repeated(state.outcomes if state is not None else None, command_id)
    if earlier is None:
        return None
    assert state is not None
    identity.check("command_id", command_id, state.requests.get(command_id), request,
                   identity.REQUEST)  # fmt: skip
    return Result(state, [earlier], note="repeated command_id")


Refusal = tuple[RejectionReason, str]


def cannot_spend(
    state: MemberLedger | None,
    spends: list[tuple[str, int]],
    programs: Programs | None = None,
    category: PointsCategory = PointsCategory.REGULAR,
) -> Refusal | None:
    """Why `state` may not spend these (programme, points) from `category`, or None.

    Checks, in order: the member is active; a member of each programme; with `programs`, the
    points are whole redemption blocks; the balance covers them (never below zero).
    """
    if state is None or state.status == "UNKNOWN":
        return RejectionReason.unknown_member, "no such member"
    if state.status == "MERGED":
        return RejectionReason.member_merged, f"merged into {state.merged_into}"
    for program_id, _ in spends:
        if program_id not in state.programs:
            return RejectionReason.not_eligible, f"not a member of programme {program_id}"
    for program_id, points in spends:
        problem = (
            None if programs is None else _redemption_problem(programs.get(program_id), points)
        )
        if problem is not None:
            return RejectionReason.invalid_request, f"{program_id}: {problem}"
    for program_id, points in spends:
        have = state.spendable(program_id, category)
        if have < points:
            held = state.balance(program_id, category) - have
            reserved = f" ({held} reserved for requests in flight)" if held else ""
            return (
                RejectionReason.insufficient_points,
                f"{program_id}{_in(category)}: balance {have}{reserved} < {points} requested",
            )
    return None


def _in(category: PointsCategory) -> str:
    """How a refusal names a category other than the usual REGULAR."""
    return "" if category is PointsCategory.REGULAR else f" {category.value}"


def _reject(
    state: MemberLedger | None,
    request: PointsRedemptionRequested | PointsTransferRequested,
    refusal: Refusal,
) -> Result:
    return Result(state, [reply(state, request, reason=refusal[0], detail=refusal[1])])


def redeem(
    state: MemberLedger | None, request: PointsRedemptionRequested, programs: Programs
) -> Result:
    """Spend points from one or several programmes' REGULAR accounts, all or nothing; never
    below zero (DESIGN.md §5.14–15)."""
    repeated = repeat(state, request)
    if repeated is not None:
        return repeated
    spends = [(a.program_id, a.points) for a in request.allocations]
    refused = cannot_spend(state, spends, programs)
    if refused is not None:
        return _reject(state, request, refused)
    state = required(state)
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
        reply(
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


def transfer_out(state: MemberLedger | None, request: PointsTransferRequested) -> Result:
    """The sender's step: debit (never overdrawing), then hand the points to the recipient's
    partition with their lots (DESIGN.md §2, §5.23). A refusal is answered here; an accepted
    debit is answered once the recipient took the points or gave them back (`steps`)."""
    repeated = repeat(state, request)
    if repeated is not None:
        return repeated
    if state is not None and request.command_id in state.transfers:
        kept = state.requests.get(request.command_id)
        identity.check("command_id", request.command_id, kept, request, identity.REQUEST)
        return Result(state, note="transfer in flight: answered once the recipient decides")
    refused = cannot_spend(state, [(request.program_id, request.points)])
    if refused is not None:
        return _reject(state, request, refused)
    state = required(state)
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
    ]
    # Answered once the recipient's partition took the points or gave them back
    # (`steps.transfer_credited`, `steps.transfer_back`): never accepted, then undone.
    state.transfers[request.command_id] = InFlight(
        event_id=request.event_id, occurred_at=request.occurred_at, member_id=request.member_id,
        command_id=request.command_id, points=request.points,
        ledger_event_log_id=sealed.event_log_id,
    )  # fmt: skip
    state.requests[request.command_id] = identity.digest(request, identity.REQUEST)
    return result
