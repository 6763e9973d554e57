"""Back-office adjustments: bulk awards and imported points, redemptions and expiries (seed 001,
ADR 12). Credits repay a deficit first; imported debits are history and may overdraw; a
repeated command_id books nothing twice."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from processors.contract.common import PointsCategory, Source
from processors.contract.ledger import EntryKind, EntryType, LedgerEventRecorded, LedgerEventType
from processors.contract.outcomes import RejectionReason, RequestAccepted, RequestRejected
from processors.contract.redemptions import (
    PointsAdjustmentKind,
    PointsAdjustmentRequested,
    RequestType,
)
from processors.rules import member
from processors.rules.identity import ConflictError
from processors.rules.ledger.handle import handle
from tests.rules.given import (
    PROGRAM,
    T0,
    Ledgers,
    bought,
    enrolled,
    expiring_after,
    merged,
    only,
    program,
    programs,
    redeem,
    returned,
)

BULK = PointsAdjustmentKind.BULK_AWARD
IMPORTED = PointsAdjustmentKind.IMPORTED_POINTS
IMPORTED_REDEMPTION = PointsAdjustmentKind.IMPORTED_REDEMPTION
IMPORTED_EXPIRY = PointsAdjustmentKind.IMPORTED_EXPIRY
LATER = datetime(2026, 3, 4, 9, tzinfo=UTC)
IN_A_YEAR = datetime(2027, 3, 3, 5, tzinfo=UTC)  # T0's lot under a 365-day policy
JUNE = datetime(2026, 6, 30, 4, tzinfo=UTC)


def adjustment(
    member_id: str,
    kind: PointsAdjustmentKind,
    points: int,
    command: str = "a1",
    *,
    at: datetime = T0,
    **fields: Any,
) -> PointsAdjustmentRequested:
    return PointsAdjustmentRequested(
        event_id=f"adj-{command}",
        occurred_at=at,
        command_id=command,
        member_id=member_id,
        program_id=fields.pop("program_id", PROGRAM),
        kind=kind,
        points=points,
        source=Source.BACK_OFFICE,
        **fields,
    )


def member_with(points: int) -> Ledgers:
    """m1 enrolled with `points` earned at T0 (1 point per dollar), lots lasting a year."""
    ledgers = Ledgers(programs(program(expiry=expiring_after(365))))
    ledgers.apply(enrolled("m1"))
    if points:
        ledgers.apply(bought("m1", "T0", cents=points * 100))
    return ledgers


def entries(event: LedgerEventRecorded) -> list[tuple[EntryType, EntryKind, int, Any]]:
    return [(e.entry_type, e.kind, e.points, e.expires_at) for e in event.entries]


def test_a_bulk_award_credits_an_allocation_expiring_by_the_programme_policy():
    ledgers = member_with(100)
    events = ledgers.apply(
        adjustment("m1", BULK, 500, campaign_id="SPRING", reason="spring campaign")
    )
    event = only(events, LedgerEventRecorded)
    assert event.event_type is LedgerEventType.BULK_AWARD
    assert event.cause_event_id == "adj-a1"
    assert event.source is Source.BACK_OFFICE
    assert entries(event) == [(EntryType.CREDIT, EntryKind.ALLOCATION, 500, IN_A_YEAR)]
    assert event.points_on_event == 500
    assert [(lot.expires_at, lot.points) for lot in event.balances_after[0].lots] == [
        (IN_A_YEAR, 600)
    ]
    accepted = only(events, RequestAccepted)
    assert accepted.request_type is RequestType.POINTS_ADJUSTMENT
    assert (accepted.points_debited, accepted.ledger_event_log_id) == (0, event.event_log_id)
    assert accepted.detail == "BULK_AWARD: 500 points credited; balance 600"
    assert ledgers.balance("m1") == 600


def test_a_bulk_award_with_its_own_expiry_adds_a_lot_of_that_expiry():
    ledgers = member_with(100)
    event = only(ledgers.apply(adjustment("m1", BULK, 250, expires_at=JUNE)), LedgerEventRecorded)
    assert entries(event) == [(EntryType.CREDIT, EntryKind.ALLOCATION, 250, JUNE)]
    assert [(lot.expires_at, lot.points) for lot in event.balances_after[0].lots] == [
        (JUNE, 250),
        (IN_A_YEAR, 100),
    ]


def test_imported_points_are_a_points_import_with_an_import_entry():
    ledgers = member_with(0)
    events = ledgers.apply(adjustment("m1", IMPORTED, 2350, expires_at=JUNE))
    event = only(events, LedgerEventRecorded)
    assert event.event_type is LedgerEventType.POINTS_IMPORT
    assert entries(event) == [(EntryType.CREDIT, EntryKind.IMPORT, 2350, JUNE)]
    assert event.points_on_event == 2350
    assert only(events, RequestAccepted).points_debited == 0
    assert ledgers.balance("m1") == 2350


def test_an_imported_redemption_debits_the_earliest_expiring_lots_first():
    ledgers = member_with(100)
    ledgers.apply(adjustment("m1", IMPORTED, 300, "a0", expires_at=JUNE))
    events = ledgers.apply(adjustment("m1", IMPORTED_REDEMPTION, 350))
    event = only(events, LedgerEventRecorded)
    assert event.event_type is LedgerEventType.POINTS_IMPORT
    assert entries(event) == [
        (EntryType.DEBIT, EntryKind.REDEMPTION, 300, JUNE),
        (EntryType.DEBIT, EntryKind.REDEMPTION, 50, IN_A_YEAR),
    ]
    assert event.points_on_event == -350
    accepted = only(events, RequestAccepted)
    assert accepted.points_debited == 350
    assert accepted.detail == "IMPORTED_REDEMPTION: 350 points debited; balance 50"
    assert ledgers.balance("m1") == 50


def test_an_imported_expiry_is_recorded_whole_even_below_zero():
    ledgers = member_with(100)
    events = ledgers.apply(adjustment("m1", IMPORTED_EXPIRY, 150))
    event = only(events, LedgerEventRecorded)
    assert entries(event) == [
        (EntryType.DEBIT, EntryKind.EXPIRY, 100, IN_A_YEAR),
        (EntryType.DEBIT, EntryKind.EXPIRY, 50, None),
    ]
    assert event.points_on_event == -150
    assert [(lot.expires_at, lot.points) for lot in event.balances_after[0].lots] == [(None, -50)]
    assert only(events, RequestAccepted).points_debited == 150
    assert ledgers.balance("m1") == -50


def test_the_next_credit_repays_the_deficit_an_import_left():
    ledgers = member_with(100)
    ledgers.apply(adjustment("m1", IMPORTED_EXPIRY, 150, "a1"))
    event = only(ledgers.apply(adjustment("m1", BULK, 80, "a2")), LedgerEventRecorded)
    assert entries(event) == [
        (EntryType.CREDIT, EntryKind.ALLOCATION, 50, None),
        (EntryType.CREDIT, EntryKind.ALLOCATION, 30, IN_A_YEAR),
    ]
    assert event.points_on_event == 80
    assert ledgers.balance("m1") == 30


def test_a_redemption_cannot_spend_a_deficit_left_by_an_import():
    ledgers = member_with(100)
    ledgers.apply(adjustment("m1", IMPORTED_REDEMPTION, 150))
    rejected = only(ledgers.apply(redeem("m1", 100, "r1")), RequestRejected)
    assert rejected.reason is RejectionReason.insufficient_points
    assert ledgers.balance("m1") == -50


def test_a_repeated_command_id_re_emits_the_original_outcome_and_books_once():
    ledgers = member_with(100)
    first = ledgers.apply(adjustment("m1", BULK, 500, "same"))
    # A re-run of the bulk job: same command_id and body, another event_id and moment.
    request = adjustment("m1", BULK, 500, "same")
    again = ledgers.apply(request.model_copy(update={"event_id": "x", "occurred_at": LATER}))
    assert again == [only(first, RequestAccepted)]
    assert len(ledgers.ledger("m1")) == 3  # registration, purchase, the award once
    assert ledgers.balance("m1") == 600


def test_the_same_command_id_with_another_amount_is_a_conflict_that_changes_nothing():
    ledgers = member_with(100)
    ledgers.apply(adjustment("m1", BULK, 500, "same"))
    before = ledgers.states["m1"].model_dump()
    with pytest.raises(ConflictError, match="command_id 'same' already names another body"):
        ledgers.apply(adjustment("m1", BULK, 700, "same"))
    assert ledgers.states["m1"].model_dump() == before


def test_a_redelivered_adjustment_changes_nothing():
    ledgers = member_with(100)
    request = adjustment("m1", IMPORTED_EXPIRY, 30)
    first = ledgers.apply(request)
    before = ledgers.states["m1"].model_dump()
    assert ledgers.apply(request) == [only(first, RequestAccepted)]
    assert ledgers.states["m1"].model_dump() == before


def test_an_adjustment_for_an_unknown_member_is_rejected():
    result = handle(None, adjustment("nobody", BULK, 100), programs())
    rejected = only(result.emitted, RequestRejected)
    assert (rejected.reason, rejected.detail) == (RejectionReason.unknown_member, "no such member")
    assert rejected.request_type is RequestType.POINTS_ADJUSTMENT
    assert result.state is None


def test_an_adjustment_for_a_merged_member_is_rejected_naming_the_survivor():
    ledgers = member_with(100)
    ledgers.apply(enrolled("m2"), merged("m1", "m2"))
    events = ledgers.apply(adjustment("m1", BULK, 100))
    rejected = only(events, RequestRejected)
    assert (rejected.reason, rejected.detail) == (RejectionReason.member_merged, "merged into m2")
    assert not [e for e in events if isinstance(e, LedgerEventRecorded)]


@pytest.mark.parametrize(
    ("fields", "reason", "detail"),
    [
        (
            {"program_id": "US_MAIN"},
            RejectionReason.unknown_program,
            "no programme US_MAIN configured",
        ),
        (
            {"program_id": "CA_FUEL"},
            RejectionReason.not_eligible,
            "not a member of programme CA_FUEL",
        ),
        (
            {"category": PointsCategory.PROMISED},
            RejectionReason.invalid_request,
            "adjustments book into REGULAR only, not PROMISED",
        ),
    ],
)
def test_an_adjustment_the_member_cannot_hold_is_rejected_whole(fields, reason, detail):
    ledgers = Ledgers(programs(program(), program("CA_FUEL")))
    ledgers.apply(enrolled("m1"))
    events = ledgers.apply(adjustment("m1", IMPORTED_EXPIRY, 10, **fields))
    rejected = only(events, RequestRejected)
    assert (rejected.reason, rejected.detail) == (reason, detail)
    assert not [e for e in events if isinstance(e, LedgerEventRecorded)]
    assert ledgers.balance("m1") == 0


def test_a_rejection_is_the_answer_to_its_command_id_for_good():
    ledgers = Ledgers(programs(program(), program("CA_FUEL")))
    ledgers.apply(enrolled("m1"))
    request = adjustment("m1", BULK, 10, program_id="CA_FUEL")
    first = ledgers.apply(request)  # not a member of CA_FUEL (yet)
    joined = enrolled("m1", programs=["CA_FUEL"]).model_copy(update={"event_id": "fuel-m1"})
    ledgers.apply(joined)
    assert ledgers.apply(request) == first  # same command_id: the same answer
    assert ledgers.balance("m1", program_id="CA_FUEL") == 0


def test_an_unknown_kind_from_a_newer_producer_is_rejected():
    ledgers = member_with(0)
    request = adjustment("m1", BULK, 10).model_copy(update={"kind": PointsAdjustmentKind.UNKNOWN})
    rejected = only(ledgers.apply(request), RequestRejected)
    assert rejected.reason is RejectionReason.invalid_request


def test_an_import_after_a_return_overdrew_keeps_the_history_whole():
    ledgers = member_with(100)
    ledgers.apply(redeem("m1", 100, "r1", tx=None))
    ledgers.apply(returned("m1", "T0", "R1", ("1", 10_000)))  # balance -100
    event = only(ledgers.apply(adjustment("m1", IMPORTED_EXPIRY, 20)), LedgerEventRecorded)
    assert entries(event) == [(EntryType.DEBIT, EntryKind.EXPIRY, 20, None)]
    assert ledgers.balance("m1") == -120


def test_the_member_composition_sends_adjustments_to_the_ledger():
    config = member.Config(programs=dict(programs()))
    state = member.MemberState("m1")
    member.handle(state, enrolled("m1"), config)
    result = member.handle(state, adjustment("m1", BULK, 40), config)
    assert only(result.emitted, LedgerEventRecorded).event_type is LedgerEventType.BULK_AWARD
    assert state.ledger is not None
    assert state.ledger.balance(PROGRAM, PointsCategory.REGULAR) == 40


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": IMPORTED_EXPIRY, "expires_at": JUNE}, "only for credits"),
        ({"kind": BULK, "expires_at": T0 - timedelta(days=1)}, "after occurred_at"),
        ({"kind": BULK, "points": 0}, "greater than 0"),
    ],
)
def test_the_request_itself_is_checked_by_the_contract(fields, message):
    values: dict[str, Any] = {
        "event_id": "e",
        "occurred_at": T0,
        "command_id": "c",
        "member_id": "m1",
        "program_id": PROGRAM,
        "points": 10,
        "source": Source.BACK_OFFICE,
        **fields,
    }
    with pytest.raises(ValidationError, match=message):
        PointsAdjustmentRequested(**values)
