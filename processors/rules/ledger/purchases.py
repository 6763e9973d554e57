"""Enrolment, purchases and returns: opening accounts, base earn, and re-evaluating a
purchase when goods come back (DESIGN.md §5.3, 5.13–14, 5.21–22, 5.24)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from processors.contract.activities import ActivityRecorded
from processors.contract.base import Event
from processors.contract.common import PointsCategory
from processors.contract.config import ProgramConfigured
from processors.contract.enrolments import MemberEnrolled
from processors.contract.internal import (
    ForwardedEntry,
    MemberMergedAway,
    PurchaseForwarded,
    ReturnForwarded,
)
from processors.contract.ledger import EntryKind, EntryType, LedgerEventRecorded, LedgerEventType
from processors.contract.outcomes import RejectionReason, RequestAccepted, RequestRejected
from processors.contract.redemptions import RequestType
from processors.contract.transactions import TransactionCompleted, TransactionReturned
from processors.rules import identity, outcomes
from processors.rules.arithmetic import derived_id, round_half_up
from processors.rules.ledger import policy, referrals
from processors.rules.ledger.awards import OfferDebit
from processors.rules.ledger.draft import Draft
from processors.rules.ledger.lots import Lot, Move
from processors.rules.ledger.result import Programs, Result, emit
from processors.rules.ledger.state import (
    ExpiredLot,
    Hold,
    MemberLedger,
    Parked,
    Purchase,
    PurchasedLine,
    Redeemed,
)
from processors.rules.refusals import InputRefused
from processors.rules.selection import hierarchy_of

PARKED_MAX = 100
"""Purchases, returns and activities kept for a member who has not enrolled. Beyond, each is
refused whole
(a `REFUSED` dead letter, `parked_limit`, to replay once they enrol) rather than kept in a
state that would grow without end or dropped in silence. A merge's step is always kept."""


def park(message: Parked) -> Result:
    # Topics are not ordered with each other: a first purchase can overtake its enrolment.
    # The processor keeps parked inputs in the member's state (see `parked_state`).
    parked = MemberLedger(member_id=message.partition_key(), status="UNKNOWN", parked=[message])
    return Result(parked, note="parked until the member enrols")


@dataclass(frozen=True)
class EnrolmentRequest:
    """An enrolment as the request it is (`rules.outcomes.Request`): its event_id is its
    command id, so the enrolment is answered on loyalty.outcomes.v1 like any request."""

    event_id: str
    occurred_at: datetime
    member_id: str
    request_type: RequestType = RequestType.ENROLMENT

    @property
    def command_id(self) -> str:
        return self.event_id

    @classmethod
    def of(cls, enrolled: MemberEnrolled) -> EnrolmentRequest:
        return cls(enrolled.event_id, enrolled.occurred_at, enrolled.member_id)


def enrolment_refusal(
    state: MemberLedger | None, enrolled: MemberEnrolled, programs: Programs
) -> tuple[RejectionReason, str] | None:
    """Why an enrolment opens nothing, or None. In order: the member was merged away; a
    programme named is not configured, is another market's or is closed; the member is in
    every programme named already. Such an account is never opened silently."""
    if state is not None and state.status == "MERGED":
        return RejectionReason.member_merged, f"merged into {state.merged_into}"
    for program_id in enrolled.program_ids:
        program = programs.get(program_id)
        if program is None:
            return RejectionReason.unknown_programme, f"no programme {program_id} is configured"
        if program.market != enrolled.market:
            return (
                RejectionReason.market_mismatch,
                f"programme {program_id} is {program.market}'s, the member is {enrolled.market}",
            )
        if not program.enrolment_open:
            return RejectionReason.programme_disabled, f"programme {program_id} is not open"
    joined = state.programs if state is not None and state.status == "ACTIVE" else []
    if all(program_id in joined for program_id in enrolled.program_ids):
        return RejectionReason.already_enrolled, f"already in {', '.join(enrolled.program_ids)}"
    return None


def enrol(
    state: MemberLedger | None,
    enrolled: MemberEnrolled,
    programs: Programs,
    replay: Callable[[MemberLedger | None, Any, Programs], Result],
) -> Result:
    """Open the accounts of the programmes joined and answer the enrolment (`RequestAccepted`
    naming the registration's ledger event, or `RequestRejected` with the reason and nothing
    opened); then apply the inputs parked before it. The same event_id again is a repeat
    (its answer again) or, with another body, a conflict (`ConflictError`)."""
    kept = state.enrolments.get(enrolled.event_id) if state is not None else None
    if kept is not None:
        assert state is not None
        identity.check("enrolment", enrolled.event_id, kept, enrolled)
        earlier = outcomes.repeated(state.outcomes, enrolled.event_id)
        return Result(state, [earlier] if earlier else [], note="enrolment already answered")
    request = EnrolmentRequest.of(enrolled)
    refusal = enrolment_refusal(state, enrolled, programs)
    if refusal is not None:
        reason, detail = refusal
        refused = outcomes.answer(request, reason=reason, detail=detail)
        if state is not None and state.status != "UNKNOWN":  # a stranger's is not kept
            _answered(state, enrolled, refused)
        return Result(state, [refused], note=f"enrolment refused: {reason.value}")
    parked: list[Parked] = []
    if state is None or state.status == "UNKNOWN":
        parked = list(state.parked) if state is not None else []
        # Only the enrolment that makes the member names a referrer: referrals are for new
        # members, so a later enrolment in another programme neither adds nor changes one.
        state = MemberLedger(
            member_id=enrolled.member_id, referrer_member_id=enrolled.referrer_member_id
        )
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
                continue  # already open in a programme joined before
            carried = imported.get((program_id, category))
            expiry = None
            if carried is not None and carried.points > 0:
                expiry = carried.expires_at or (
                    policy.expires_at(program, enrolled.occurred_at) if program else None
                )
            draft.open_account(program_id, category, carried.points if carried else 0, expiry)
    opened = bool(draft.entries)
    emit(result, draft)
    accepted = outcomes.answer(
        request, ledger_event_log_id=draft.event_log_id if opened else None,
        detail=f"joined {', '.join(enrolled.program_ids)}",
    )  # fmt: skip
    _answered(state, enrolled, accepted)
    result.emitted.append(accepted)
    for message in parked:
        replayed = replay(result.state, message, programs)
        result.state = replayed.state
        result.emitted += replayed.emitted
    return result


def _answered(state: MemberLedger, enrolled: MemberEnrolled, outcome: outcomes.Outcome) -> None:
    """Keep the enrolment's digest and its answer, for a repeat of its event_id."""
    state.enrolments[enrolled.event_id] = identity.digest(enrolled)
    state.outcomes[enrolled.event_id] = outcome


def earn(state: MemberLedger, purchase: TransactionCompleted, programs: Programs) -> Result:
    result = Result(state)
    if state.status == "MERGED" and state.merged_into is not None:
        # The old card still works: the survivor is credited, through their own partition.
        forward = PurchaseForwarded.of(
            purchase,
            state.merged_into,
            derived_id("STEP", purchase.event_id, "forward", state.merged_into),
        )
        return Result(state, [forward], note=f"forwarded to survivor {state.merged_into}")
    if state.status == "UNKNOWN":
        return park_more(state, purchase)
    known = state.purchases.get(purchase.transaction_id)
    if known is not None:
        identity.check("transaction_id", purchase.transaction_id, known.digest, purchase)
        result.note = "purchase already credited"
        return result
    horizon = _returns_horizon(state)
    if horizon is not None and purchase.occurred_at < horizon:
        # Refused before anything changes, so it is never lost in silence: the ledger forgets
        # purchases past the window, so a late one cannot be told from one credited and
        # forgotten, and crediting it could pay twice (ADR 8, addendum).
        raise InputRefused(
            "purchase_too_old",
            f"purchase {purchase.transaction_id} of {purchase.occurred_at.isoformat()} is "
            f"older than the returns window (purchases before {horizon.isoformat()}): it may "
            "have been credited and forgotten; credit it by a points adjustment if it never was",
        )
    record = Purchase(
        transaction_id=purchase.transaction_id,
        digest=identity.digest(purchase),
        occurred_at=purchase.occurred_at,
        province=purchase.store.province,
        lines=[
            PurchasedLine(
                line_id=line.line_id,
                sku=line.sku,
                amount_cents=line.amount_cents,
                **hierarchy_of(line),
            )
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
        if points == 0:  # booked all the same: the member's ledger shows every purchase
            draft.zero_entry(program_id, category, EntryKind.ALLOCATION)
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
    emit(result, draft)
    result.emitted += referrals.qualify(state, purchase, record, programs)
    return result


def park_more(state: MemberLedger, message: Parked) -> Result:
    kind, same = _identity(message)
    for parked in state.parked:
        if type(parked) is type(message) and _identity(parked)[1] == same:
            # A merge's step is the engine's own: the same id from an older engine may carry
            # fewer fields, and is the same step (`steps.merge_in` applies it once by its id).
            if not isinstance(message, MemberMergedAway):
                identity.check(kind, same, identity.digest(parked), message)
            return Result(state, note="already parked until the member enrols")
    if len(state.parked) >= PARKED_MAX and not isinstance(message, MemberMergedAway):
        raise InputRefused(
            "parked_limit",
            f"{len(state.parked)} inputs of member {state.member_id} already wait "
            "for their enrolment; replay this one from the dead letters once they enrol",
        )
    state.parked.append(message)
    return Result(state, note="parked until the member enrols")


def _identity(message: Parked) -> tuple[str, str]:
    if isinstance(message, TransactionReturned):
        return "return_id", message.return_id
    if isinstance(message, MemberMergedAway | ActivityRecorded | ReturnForwarded):
        return "event_id", message.event_id
    return "transaction_id", message.transaction_id


@dataclass(frozen=True)
class ReturnRequest:
    """A member's return as the request it is (`rules.outcomes.Request`): its return_id is its
    command id, so every return is answered on loyalty.outcomes.v1, one that changes nothing
    too (docs/adr/0043-every-return-answered.md)."""

    event_id: str
    occurred_at: datetime
    member_id: str
    command_id: str
    request_type: RequestType = RequestType.RETURN

    @classmethod
    def of(cls, returned: TransactionReturned, member_id: str) -> ReturnRequest:
        return cls(returned.event_id, returned.occurred_at, member_id, returned.return_id)


def return_purchase(
    state: MemberLedger,
    returned: TransactionReturned,
    programs: Programs,
    offer_debits: Sequence[OfferDebit] = (),
) -> Result:
    """Re-evaluate the purchase without the returned lines; debit points no longer earned,
    the offer awards that no longer hold (`offer_debits`, decided by the offer rules), and
    credit back points redeemed on the returned lines, in one event (DESIGN.md §5.14).
    Answered: `RequestAccepted` when applied (with the ledger event, if any points moved),
    `RequestRejected` `unknown_transaction` or `nothing_to_return` when it changes nothing.

    On a member merged away the purchase's record is here but the points are the survivor's:
    the return is decided here and booked there (`ReturnForwarded`)."""
    if state.status == "UNKNOWN":
        return park_more(state, returned)
    if state.status == "MERGED" and state.merged_into is not None:
        return _forward_return(state, returned, programs, offer_debits)
    request = ReturnRequest.of(returned, state.member_id)
    record = state.purchases.get(returned.transaction_id)
    if record is not None and returned.return_id in record.return_ids:
        kept = record.return_digests.get(returned.return_id)
        identity.check("return_id", returned.return_id, kept, returned)
        earlier = outcomes.repeated(state.outcomes, returned.return_id)
        return Result(state, [earlier] if earlier else [], note="return already applied")
    refusal = _return_refusal(record, returned)
    if record is None or (refusal is not None and not offer_debits):
        assert refusal is not None, "an unknown purchase is always refused"
        reason, detail = refusal
        # Not kept: the purchase may yet arrive, and the same return_id sent again then
        # applies. Its id is this delivery's, so that answer cannot collide with this one.
        event_id = derived_id("OUT", state.member_id, returned.return_id, returned.event_id)
        refused = outcomes.answer(request, reason=reason, detail=detail, event_id=event_id)
        return Result(state, [refused], note=f"return refused: {reason.value}")
    result = Result(state)
    record.return_ids.append(returned.return_id)
    record.return_digests[returned.return_id] = identity.digest(returned)
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
    expired_points = 0
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
        excluded = policy.excluded_skus(program, record.province, kept_lines)
        spend = sum(line.amount_cents for line in kept_lines if line.sku not in excluded)
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
            expired_points += _take_back(draft, program, record.occurred_at, to_debit)
    returned_so_far = sum(line.returned_cents for line in record.lines)
    for redeemed in record.redeemed:
        # The share of all the returns so far, rounded once, less what earlier returns gave
        # back: a purchase returned in parts gives back what it would in one go.
        due = round_half_up(Decimal(redeemed.points * returned_so_far) / max(original_total, 1))
        give_back = min(due, redeemed.points) - redeemed.reversed_points
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
    for debit in offer_debits:
        program = programs.get(debit.program_id)
        if program is None:  # no policy to name its lot: taken back whole
            draft.debit(debit.program_id, PointsCategory.REGULAR, EntryKind.RETURN,
                        debit.points, offer_id=debit.offer_id)  # fmt: skip
            continue
        expired_points += _take_back(draft, program, debit.awarded_at, debit.points,
                                     debit.offer_id)  # fmt: skip
    debited = sum(e.points for e in draft.entries if e.entry_type is EntryType.DEBIT)
    moved = bool(draft.entries)
    emit(result, draft)
    detail = f"{refunded / 100:.2f} returned of purchase {returned.transaction_id}"
    if expired_points:
        detail += f"; {expired_points} of its points had expired and are not taken again"
    accepted = outcomes.answer(
        request, points_debited=debited, ledger_event_log_id=draft.event_log_id if moved else None,
        detail=detail,
    )  # fmt: skip
    state.outcomes[returned.return_id] = accepted
    result.emitted.append(accepted)
    result.emitted += referrals.on_return(state, record, returned, programs)
    return result


def _return_refusal(
    record: Purchase | None, returned: TransactionReturned
) -> tuple[RejectionReason, str] | None:
    """Why a return changes nothing, or None: its purchase is not known here, or none of its
    lines takes anything back (unknown to the purchase, returned in full already, or asking
    no amount). The amount refunded decides, not the quantity: points follow money."""
    if record is None:
        return RejectionReason.unknown_transaction, (
            f"no purchase {returned.transaction_id} is known for this member: never received, "
            "or older than the returns window"
        )
    by_line = {line.line_id: line for line in record.lines}
    unknown: list[str] = []
    spent: list[str] = []
    empty: list[str] = []
    for item in returned.lines:
        line = by_line.get(item.line_id)
        if line is None:
            unknown.append(item.line_id)
        elif line.amount_cents > 0 and line.returned_cents >= line.amount_cents:
            spent.append(item.line_id)
        elif item.amount_cents > 0 and line.returned_cents < line.amount_cents:
            return None  # this line takes something back
        else:
            empty.append(item.line_id)
    why: list[str] = []
    if unknown:
        why.append(f"no line {', '.join(unknown)} in purchase {returned.transaction_id}")
    if spent:
        why.append(f"line {', '.join(spent)} returned in full already")
    if empty:
        why.append(f"line {', '.join(empty)} returns no amount")
    return RejectionReason.nothing_to_return, "; ".join(why)


def _forward_return(
    state: MemberLedger,
    returned: TransactionReturned,
    programs: Programs,
    offer_debits: Sequence[OfferDebit],
) -> Result:
    """Decide the return on a scratch copy of the merged member (whose accounts ended with
    the merge), keep the purchase record's changes (so a redelivery changes nothing), and
    forward the entries decided to the survivor."""
    assert state.merged_into is not None
    scratch = state.model_copy(deep=True)
    scratch.status = "ACTIVE"
    # The scratch stands for the survivor's accounts, which hold the points now, not for the
    # victim's emptied ones: with a never-expiring lot beyond any return, its debits never
    # overdraw, so its credits repay no deficit of its own and keep their lot's expiry (a
    # redemption given back goes to the lots it drew from). The survivor takes the debits
    # from its own lots (`return_in`).
    for key in scratch.accounts:
        scratch.accounts[key] = (Lot(expires_at=None, points=_BEYOND_ANY_RETURN),)
    decided = return_purchase(scratch, returned, programs, offer_debits)
    if returned.transaction_id in scratch.purchases:
        state.purchases[returned.transaction_id] = scratch.purchases[returned.transaction_id]
    state.expired = scratch.expired  # expired points set against this return are used up
    events = [e for e in decided.emitted if isinstance(e, LedgerEventRecorded)]
    answered = [e for e in decided.emitted if isinstance(e, RequestAccepted | RequestRejected)]
    if not events:  # refused, a repeat (answered as before), or no points to move
        for kept in answered:
            if isinstance(kept, RequestAccepted):
                state.outcomes[kept.command_id] = kept
        return Result(state, list(answered), note=decided.note or "return changes nothing")
    answers: list[Event] = [_forwarded_answer(state, e) for e in answered]
    step = ReturnForwarded(
        event_id=derived_id("STEP", returned.event_id, "return", state.merged_into),
        occurred_at=returned.occurred_at,
        member_id=state.merged_into,
        victim_member_id=state.member_id,
        return_event_id=returned.event_id,
        return_id=returned.return_id,
        transaction_id=returned.transaction_id,
        source=returned.source,
        store_id=returned.store.store_id,
        till_id=returned.till_id,
        entries=[
            ForwardedEntry(
                program_id=entry.program_id,
                category=entry.category,
                entry_type=entry.entry_type,
                kind=entry.kind,
                points=entry.points,
                expires_at=entry.expires_at,
                offer_id=entry.offer_id,
            )
            for entry in events[0].entries
        ],
    )
    return Result(state, [*answers, step], note=f"return forwarded to survivor {state.merged_into}")


def pass_on(state: MemberLedger, step: ReturnForwarded | MemberMergedAway, what: str) -> Result:
    """A step for a survivor merged away since it was sent (the merges' steps travel on
    different partitions): on to its own survivor, who holds the points now, under an id
    derived from the step's, so that a redelivery is still applied once."""
    assert state.merged_into is not None
    onward = step.model_copy(
        update={
            "event_id": derived_id("STEP", step.event_id, what, state.merged_into),
            "member_id": state.merged_into,
        }
    )
    return Result(state, [onward], note=f"{what} passed on to survivor {state.merged_into}")


_BEYOND_ANY_RETURN = 10**12 // 2
"""More points than a return takes back or gives back, and room for either within the
contract's bound on a balance (10^12 points)."""


def _forwarded_answer(state: MemberLedger, decided: outcomes.Outcome) -> outcomes.Outcome:
    """The answer a merged member's new return gets: the points are booked on the survivor,
    by its own ledger event, so the answer names no event of this member's."""
    if isinstance(decided, RequestRejected):
        return decided
    answer = decided.model_copy(
        update={"ledger_event_log_id": None,
                "detail": f"{decided.detail}; booked to {state.merged_into}, who this member "
                          "was merged into"}
    )  # fmt: skip
    state.outcomes[decided.command_id] = answer
    return answer


def return_in(state: MemberLedger | None, step: ReturnForwarded) -> Result:
    """The survivor's side of a return forwarded from a member merged into it: one
    TRANSACTION_RETURN with the entries decided there. Points still held for the victim's
    purchase are taken from that hold first (holds move with the merge). A survivor merged
    away since passes it on to its own survivor, who holds the points now; one not enrolled
    yet keeps it for its enrolment, after the merge that waits there too."""
    if state is None:
        return park(step)
    if state.status == "UNKNOWN":
        return park_more(state, step)
    if state.status == "MERGED" and state.merged_into is not None:
        return pass_on(state, step, "return")
    if state.status != "ACTIVE":
        return Result(state, note="return forwarded to a member who cannot take it")
    if step.event_id in state.steps_applied:
        return Result(state, note="forwarded return already applied")
    state.steps_applied.append(step.event_id)
    result = Result(state)
    draft = Draft(
        state,
        LedgerEventType.TRANSACTION_RETURN,
        cause_event_id=step.event_id,
        occurred_at=step.occurred_at,
        source=step.source,
        store_id=step.store_id,
        till_id=step.till_id,
        transaction_id=step.return_id,
        related_member_id=step.victim_member_id,
    )
    origin = f"{step.victim_member_id}/{step.transaction_id}"
    for entry in step.entries:
        if entry.entry_type is EntryType.CREDIT:
            draft.credit(entry.program_id, entry.category, entry.kind, entry.points,
                         entry.expires_at, offer_id=entry.offer_id)  # fmt: skip
            continue
        hold = next(
            (h for h in state.holds if h.transaction_id == origin
             and h.program_id == entry.program_id and h.points >= entry.points),
            None,
        ) if entry.offer_id is None else None  # fmt: skip
        if hold is not None:
            hold.points -= entry.points
            if hold.points == 0:
                state.holds.remove(hold)
            draft.debit_exactly(
                entry.program_id, hold.category, entry.kind, [Move(hold.expires_at, entry.points)]
            )
        else:
            draft.debit(entry.program_id, entry.category, entry.kind, entry.points,
                        offer_id=entry.offer_id)  # fmt: skip
    emit(result, draft)
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


def _returns_horizon(state: MemberLedger) -> datetime | None:
    """The oldest purchase time still returnable, judged by the member's last daily run (never
    by a clock): None before the first run."""
    if not state.expiry_days:
        return None
    return policy.returns_horizon(max(state.expiry_days.values()))


def forget_old_purchases(state: MemberLedger) -> None:
    """Drop purchases past the returns window (their returns are no longer accepted), and the
    expired lots only such purchases could have had points in (a lot expiring before the
    horizon holds points earned before it)."""
    horizon = _returns_horizon(state)
    if horizon is None:
        return
    for transaction_id, record in list(state.purchases.items()):
        if record.occurred_at is not None and record.occurred_at < horizon:
            del state.purchases[transaction_id]
    state.expired = [lot for lot in state.expired if lot.expires_at >= horizon]


def note_expired(state: MemberLedger, program_id: str, moves: Sequence[Move]) -> None:
    """Keep what the daily run expired, lot by lot, for the returns to come (`ExpiredLot`)."""
    for move in moves:
        if move.expires_at is None or move.points <= 0:
            continue
        kept = next(
            (x for x in state.expired
             if x.program_id == program_id and x.expires_at == move.expires_at),
            None,
        )  # fmt: skip
        if kept is not None:
            kept.points += move.points
        else:
            state.expired.append(
                ExpiredLot(program_id=program_id, expires_at=move.expires_at, points=move.points)
            )


def _take_back(
    draft: Draft,
    program: ProgramConfigured,
    earned_at: datetime | None,
    points: int,
    offer_id: str | None = None,
) -> int:
    """Debit what a return takes back of `points` earned at `earned_at` (base points, or an
    award), less those already expired (`_expired_already`), which it returns. May overdraw:
    the next credit repays the deficit."""
    gone = _expired_already(draft.state, program, earned_at, points)
    draft.debit(program.program_id, PointsCategory.REGULAR, EntryKind.RETURN, points - gone,
                offer_id=offer_id)  # fmt: skip
    return gone


def _expired_already(
    state: MemberLedger, program: ProgramConfigured, earned_at: datetime | None, points: int
) -> int:
    """Of the `points` a return takes back that were earned at `earned_at` (the purchase's
    base points, or an award it paid), those that expired already: the expired points of
    that time's lot not yet set against a return, used up here."""
    if earned_at is None or points <= 0:
        return 0
    expires_at = policy.expires_at(program, earned_at)
    for lot in state.expired:
        if lot.program_id == program.program_id and lot.expires_at == expires_at:
            gone = min(lot.points, points)
            lot.points -= gone
            if lot.points == 0:
                state.expired.remove(lot)
            return gone
    return 0
