"""Expiry and promised points, driven by clock events (DESIGN.md §5.12–13)."""

from datetime import UTC, date, datetime, timedelta

from processors.contract.activities import ActivityKind
from processors.contract.common import PointsCategory
from processors.contract.ledger import EntryKind, EntryType, LedgerEventRecorded, LedgerEventType
from processors.contract.outcomes import RequestAccepted
from tests.rules.given import (
    T0,
    Ledgers,
    activity,
    bought,
    day,
    enrolled,
    expiring_after,
    line,
    only,
    program,
    programs,
    promised_for,
    promised_until,
    redeem,
    returned,
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


def test_a_return_after_its_points_expired_does_not_take_them_again():
    # Found by a user's trial: earned 100, all expired, then the return took 100 more (-100).
    ledgers = Ledgers(programs(program(expiry=expiring_after(30))))
    ledgers.apply(enrolled("m1"), bought("m1", "T1", cents=10000))  # 100, good through April 1
    ledgers.apply(day(date(2026, 4, 2)))  # all 100 expire
    out = ledgers.apply(returned("m1", "T1", "R1", ("1", 10000), at=T0 + timedelta(days=40)))
    (answer,) = [e for e in out if isinstance(e, RequestAccepted)]
    assert ledgers.balance("m1") == 0
    assert answer.points_debited == 0
    assert answer.detail == (
        "100.00 returned of purchase T1; 100 of its points had expired and are not taken again"
    )


def test_of_a_lots_expired_points_returns_take_back_only_what_was_spent():
    # Two purchases in one lot (same day), 100 of their 200 points spent, 100 expire: whatever
    # the order and split of the returns, the member gives back the 100 spent, once.
    ledgers = Ledgers(programs(program(expiry=expiring_after(30))))
    ledgers.apply(enrolled("m1"))
    ledgers.apply(bought("m1", "T1", line("1", 10000)), bought("m1", "T2", line("1", 10000)))
    ledgers.apply(redeem("m1", 100))
    ledgers.apply(day(date(2026, 4, 2)))  # the other 100 expire
    assert ledgers.balance("m1") == 0
    later = T0 + timedelta(days=40)
    ledgers.apply(returned("m1", "T1", "R1", ("1", 5000), at=later))  # half of T1: 50
    ledgers.apply(returned("m1", "T2", "R2", ("1", 10000), at=later))  # all of T2: 100
    ledgers.apply(returned("m1", "T1", "R3", ("1", 5000), at=later))  # the rest of T1: 50
    assert ledgers.balance("m1") == -100  # the 100 spent, once; the 100 expired, never
    assert ledgers.states["m1"].expired == []  # used up


def test_expired_lots_are_forgotten_with_the_purchases_they_could_serve():
    ledgers = Ledgers(programs(program(expiry=expiring_after(30))))
    ledgers.apply(enrolled("m1"), bought("m1", "T1", cents=10000))
    ledgers.apply(day(date(2026, 4, 2)))
    assert [lot.points for lot in ledgers.states["m1"].expired] == [100]
    ledgers.apply(day(date(2027, 4, 3)))  # a year on: T1 past the returns window
    assert ledgers.states["m1"].expired == []
