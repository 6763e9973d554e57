"""Referral awards: seed 001's "Points award on Referral" and "Return of Referral points"
(ADR 12).

A referral is a two-member operation (DESIGN.md §2). The referred member's partition decides:
when one of its purchases is recorded and is its first qualifying purchase in a programme with
a referral policy, it remembers the referral as paid (`MemberLedger.referrals`, so neither a
redelivery nor a second purchase pays again) and emits a `ReferralQualified` step keyed by the
referrer. If a return then leaves that purchase no longer qualifying, it emits
`ReferralReturned`. The referrer's partition applies each step once (`steps_applied`): a
REFERRAL credit into the programme's REGULAR account, or a REFERRAL debit that may overdraw,
like a return. A step the referrer cannot take (not a member, merged, not in the programme) is
dropped with a note: unlike a transfer, there are no points to give back.
"""

from __future__ import annotations

from processors.contract.base import Event
from processors.contract.common import PointsCategory
from processors.contract.internal import ReferralQualified, ReferralReturned
from processors.contract.ledger import EntryKind, LedgerEventType
from processors.contract.transactions import TransactionCompleted, TransactionReturned
from processors.rules.arithmetic import derived_id
from processors.rules.ledger import policy
from processors.rules.ledger.draft import Draft
from processors.rules.ledger.result import Programs, Result, emit
from processors.rules.ledger.state import MemberLedger, Purchase, Referral


def qualify(
    state: MemberLedger, purchase: TransactionCompleted, record: Purchase, programs: Programs
) -> list[Event]:
    """The referral steps a purchase just recorded (as `record`) pays, at most one per
    programme it earned in, and only while none was paid there before."""
    if state.referrer_member_id is None:
        return []
    steps: list[Event] = []
    for program_id in record.earned:
        program = programs.get(program_id)
        rule = program.referral if program is not None else None
        if program is None or rule is None or program_id in state.referrals:
            continue
        spend = policy.eligible_spend_cents(program, purchase.lines, purchase.store.province)
        if spend <= 0 or spend < rule.first_purchase_min_cents:
            continue
        step = ReferralQualified(
            event_id=derived_id(
                "STEP", state.member_id, purchase.transaction_id, program_id, "referral"
            ),
            occurred_at=purchase.occurred_at,
            member_id=state.referrer_member_id,
            referred_member_id=state.member_id,
            program_id=program_id,
            points=rule.referrer_points,
            transaction_id=purchase.transaction_id,
            purchase_event_id=purchase.event_id,
            source=purchase.source,
        )
        state.referrals[program_id] = Referral(
            transaction_id=purchase.transaction_id,
            points=rule.referrer_points,
            spend_min_cents=rule.first_purchase_min_cents,
            step_id=step.event_id,
        )
        steps.append(step)
    return steps


def on_return(
    state: MemberLedger, record: Purchase, returned: TransactionReturned, programs: Programs
) -> list[Event]:
    """The referral returns a return just applied to `record` causes: for each referral that
    purchase paid, once the eligible spend it keeps no longer meets the threshold the referral
    was paid under (with no threshold: once it is fully returned)."""
    if state.referrer_member_id is None:
        return []
    steps: list[Event] = []
    for program_id, referral in state.referrals.items():
        if referral.transaction_id != record.transaction_id or referral.returned:
            continue
        program = programs.get(program_id)
        excluded = (
            policy.excluded_skus(program, record.province, record.lines) if program else frozenset()
        )
        kept = sum(
            line.amount_cents - line.returned_cents
            for line in record.lines
            if line.sku not in excluded
        )
        if kept > 0 and kept >= referral.spend_min_cents:
            continue
        referral.returned = True
        steps.append(
            ReferralReturned(
                event_id=derived_id("STEP", referral.step_id, "return"),
                occurred_at=returned.occurred_at,
                member_id=state.referrer_member_id,
                referred_member_id=state.member_id,
                program_id=program_id,
                points=referral.points,
                qualified_event_id=referral.step_id,
                return_id=returned.return_id,
                return_event_id=returned.event_id,
                source=returned.source,
            )
        )
    return steps


def _cannot_hold(state: MemberLedger | None, program_id: str) -> str | None:
    if state is None or state.status == "UNKNOWN":
        return "referrer is not a member"
    if state.status == "MERGED":
        return f"referrer merged into {state.merged_into}"
    if program_id not in state.programs:
        return f"referrer is not in programme {program_id}"
    return None


def credit_referrer(
    state: MemberLedger | None, step: ReferralQualified, programs: Programs
) -> Result:
    """The referrer's step: one REFERRAL credit into the programme's REGULAR account, in a lot
    expiring by the programme's policy from the qualifying purchase."""
    if state is not None and step.event_id in state.steps_applied:
        return Result(state, note="referral already credited")
    problem = _cannot_hold(state, step.program_id)
    if problem is not None:
        return Result(state, note=f"referral dropped: {problem}")
    assert state is not None
    state.steps_applied.append(step.event_id)
    program = programs.get(step.program_id)
    draft = Draft(
        state,
        LedgerEventType.REFERRAL,
        cause_event_id=step.event_id,
        occurred_at=step.occurred_at,
        source=step.source,
        related_member_id=step.referred_member_id,
    )
    expiry = policy.expires_at(program, step.occurred_at) if program is not None else None
    draft.credit(step.program_id, PointsCategory.REGULAR, EntryKind.REFERRAL, step.points, expiry)
    result = Result(state)
    emit(result, draft)
    return result


def debit_referrer(state: MemberLedger | None, step: ReferralReturned) -> Result:
    """The referrer's side of a referral return: a REFERRAL debit of the points the referral
    credited, earliest expiry first, possibly below zero (like a return, DESIGN.md §5.14).
    Only a referrer that took the referral is debited."""
    if state is not None and step.event_id in state.steps_applied:
        return Result(state, note="referral return already debited")
    problem = _cannot_hold(state, step.program_id)
    if state is not None and problem is None and step.qualified_event_id not in state.steps_applied:
        problem = "the referral was never credited"
    if problem is not None:
        return Result(state, note=f"referral return dropped: {problem}")
    assert state is not None
    state.steps_applied.append(step.event_id)
    draft = Draft(
        state,
        LedgerEventType.REFERRAL,
        cause_event_id=step.event_id,
        occurred_at=step.occurred_at,
        source=step.source,
        related_member_id=step.referred_member_id,
    )
    draft.debit(step.program_id, PointsCategory.REGULAR, EntryKind.REFERRAL, step.points)
    result = Result(state)
    emit(result, draft)
    return result
