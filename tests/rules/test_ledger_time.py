"""Expiry and promised points, driven by clock events (DESIGN.md §5.12–13)."""

from datetime import UTC, date, datetime

from processors.contract.activities import ActivityKind
from processors.contract.common import PointsCategory
from processors.contract.ledger import EntryKind, EntryType, LedgerEventRecorded, LedgerEventType
from tests.rules.given import (
    Ledgers,
    activity,
    bought,
    day,
    enrolled,
    expiring_after,
    only,
    program,
    programs,
    promised_for,
    promised_until,
)


def test_expiry_debits_lots_whose_date_has_come_at_the_time_the_run_happened():
    ledgers = Ledgers(programs(program(expiry=expiring_after(30))))
    ledgers.apply(enrolled("m1"), bought("m1", "T1", cents=10000))  # earned 2026-03-02
    assert ledgers.apply(day(date(2026, 4, 1))) == []  # still good through April 1
    run_at = datetime(2026, 4, 2, 6, 12, tzinfo=UTC)
    event = only(ledgers.apply(day(date(2026, 4, 2), ran_at=run_at)), LedgerEventRecorded)
    assert event.event_type is LedgerEventType.POINTS_EXPIRY
    assert (event.occurred_at, event.recorded_at) == (run_at, run_at)
    assert [(e.kind, e.entry_type, e.points) for e in event.entries] == [
        (EntryKind.EXPIRY, EntryType.DEBIT, 100)
    ]
    assert ledgers.balance("m1") == 0


def test_the_daily_run_happens_once_per_business_date():
    ledgers = Ledgers(programs(program(expiry=expiring_after(30))))
    ledgers.apply(enrolled("m1"), bought("m1", "T1", cents=10000))
    ledgers.apply(day(date(2026, 4, 2)))
    assert ledgers.apply(day(date(2026, 4, 2))) == []


def test_promised_points_convert_after_the_hold_in_one_event_netting_zero():
    ledgers = Ledgers(
        programs(
            program(
                categories=[PointsCategory.REGULAR, PointsCategory.PROMISED],
                promised_points=promised_for(30),
            )
        )
    )
    ledgers.apply(enrolled("m1"), bought("m1", "T1", cents=10000))
    assert ledgers.balance("m1", PointsCategory.PROMISED) == 100
    assert ledgers.apply(day(date(2026, 4, 1))) == []
    event = only(ledgers.apply(day(date(2026, 4, 2))), LedgerEventRecorded)
    assert event.event_type is LedgerEventType.PROMISED_POINTS_CONVERSION
    assert [(e.category, e.entry_type, e.points) for e in event.entries] == [
        (PointsCategory.PROMISED, EntryType.DEBIT, 100),
        (PointsCategory.REGULAR, EntryType.CREDIT, 100),
    ]
    assert event.points_on_event == 0
    assert ledgers.balance("m1") == 100


def test_a_return_inside_the_hold_takes_the_points_back_from_promised():
    ledgers = Ledgers(
        programs(
            program(
                categories=[PointsCategory.REGULAR, PointsCategory.PROMISED],
                promised_points=promised_for(30),
            )
        )
    )
    from tests.rules.given import returned

    ledgers.apply(enrolled("m1"), bought("m1", "T1", cents=10000))
    event = only(ledgers.apply(returned("m1", "T1", "R1", ("1", 10000))), LedgerEventRecorded)
    assert [(e.category, e.points) for e in event.entries] == [(PointsCategory.PROMISED, 100)]
    assert ledgers.apply(day(date(2026, 4, 2))) == []  # nothing left to convert


def test_trigger_held_points_convert_when_the_member_does_the_activity():
    ledgers = Ledgers(
        programs(
            program(
                categories=[PointsCategory.REGULAR, PointsCategory.TRIGGER],
                promised_points=promised_until(ActivityKind.APP_DOWNLOAD),
            )
        )
    )
    ledgers.apply(enrolled("m1"), bought("m1", "T1", cents=10000))
    assert ledgers.balance("m1", PointsCategory.TRIGGER) == 100
    assert ledgers.apply(activity("m1", ActivityKind.FIRST_LOGIN)) == []
    event = only(ledgers.apply(activity("m1", ActivityKind.APP_DOWNLOAD)), LedgerEventRecorded)
    assert [(e.category, e.entry_type) for e in event.entries] == [
        (PointsCategory.TRIGGER, EntryType.DEBIT),
        (PointsCategory.REGULAR, EntryType.CREDIT),
    ]
    assert (ledgers.balance("m1"), ledgers.balance("m1", PointsCategory.TRIGGER)) == (100, 0)


def test_points_still_held_at_a_merge_convert_on_the_survivors_side():
    from tests.rules.given import merged

    ledgers = Ledgers(
        programs(
            program(
                categories=[PointsCategory.REGULAR, PointsCategory.PROMISED],
                promised_points=promised_for(30),
            )
        )
    )
    ledgers.apply(enrolled("m1"), enrolled("m2"), bought("m1", "T1", cents=10000))
    ledgers.apply(merged("m1", "m2"))
    assert ledgers.balance("m2", PointsCategory.PROMISED) == 100
    event = only(ledgers.apply(day(date(2026, 4, 2))), LedgerEventRecorded)
    assert event.member_id == "m2"
    assert event.event_type is LedgerEventType.PROMISED_POINTS_CONVERSION
    assert (ledgers.balance("m2"), ledgers.balance("m2", PointsCategory.PROMISED)) == (100, 0)
