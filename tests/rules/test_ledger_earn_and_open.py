"""Opening balances and base earn (DESIGN.md §5.2, 5.3, 5.20–22, 5.24)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from processors.contract.common import PointsCategory
from processors.contract.enrolments import ImportedBalance
from processors.contract.ledger import EntryKind, EntryType, LedgerEventRecorded, LedgerEventType
from tests.rules.given import (
    PROGRAM,
    T0,
    Ledgers,
    bought,
    enrolled,
    expiring_after,
    line,
    only,
    program,
    programs,
)


def test_enrolment_opens_a_zero_opening_balance_for_every_configured_category():
    ledgers = Ledgers(
        programs(program(categories=[PointsCategory.REGULAR, PointsCategory.PROMISED]))
    )
    event = only(ledgers.apply(enrolled("m1")), LedgerEventRecorded)
    assert event.event_type is LedgerEventType.CUSTOMER_REGISTRATION
    assert event.sequence == 1
    assert [(e.category, e.kind, e.entry_type, e.points) for e in event.entries] == [
        (PointsCategory.REGULAR, EntryKind.OPENING_BALANCE, EntryType.CREDIT, 0),
        (PointsCategory.PROMISED, EntryKind.OPENING_BALANCE, EntryType.CREDIT, 0),
    ]
    assert event.points_on_event == 0


def test_an_imported_member_opens_with_the_imported_balance():
    expiry = datetime(2027, 6, 30, 4, tzinfo=UTC)
    imported = [
        ImportedBalance(
            program_id=PROGRAM, category=PointsCategory.REGULAR, points=2350, expires_at=expiry
        )
    ]
    ledgers = Ledgers()
    event = only(ledgers.apply(enrolled("m1", imported=imported)), LedgerEventRecorded)
    assert [(e.kind, e.points, e.expires_at) for e in event.entries] == [
        (EntryKind.OPENING_BALANCE, 2350, expiry)
    ]
    assert ledgers.balance("m1") == 2350


def test_a_negative_imported_balance_opens_with_a_debit():
    imported = [ImportedBalance(program_id=PROGRAM, category=PointsCategory.REGULAR, points=-40)]
    ledgers = Ledgers()
    event = only(ledgers.apply(enrolled("m1", imported=imported)), LedgerEventRecorded)
    assert [(e.entry_type, e.points) for e in event.entries] == [(EntryType.DEBIT, 40)]
    assert event.points_on_event == -40


def test_base_earn_is_rounded_once_per_transaction_on_total_eligible_spend():
    ledgers = Ledgers()
    ledgers.apply(enrolled("m1"))
    event = only(
        ledgers.apply(bought("m1", "T1", line("1", 1030), line("2", 1030))), LedgerEventRecorded
    )
    assert event.points_on_event == 21  # 20.60 → 21, not 10 + 10
    assert event.event_type is LedgerEventType.TRANSACTION_ADD
    assert (event.transaction_id, event.transaction_number) == ("T1", "NT1")


def test_fractional_earn_rounds_half_up():
    ledgers = Ledgers(programs(program(points_per_currency_unit=Decimal("1.5"))))
    ledgers.apply(enrolled("m1"))
    assert (
        only(ledgers.apply(bought("m1", "T1", cents=7500)), LedgerEventRecorded).points_on_event
        == 113
    )


def test_global_exclusions_apply_by_the_store_province():
    ledgers = Ledgers()
    ledgers.apply(enrolled("m1"))
    basket = [line("1", 1000), line("2", 5000, sku="LOTTO")]
    in_quebec = only(ledgers.apply(bought("m1", "T1", *basket, province="QC")), LedgerEventRecorded)
    in_ontario = only(
        ledgers.apply(bought("m1", "T2", *basket, province="ON")), LedgerEventRecorded
    )
    assert (in_quebec.points_on_event, in_ontario.points_on_event) == (10, 60)


def test_the_per_transaction_cap_clips_base_points():
    ledgers = Ledgers(programs(program(base_points_per_transaction_max=50)))
    ledgers.apply(enrolled("m1"))
    assert (
        only(ledgers.apply(bought("m1", "T1", cents=20000)), LedgerEventRecorded).points_on_event
        == 50
    )


def test_earned_lots_expire_by_the_programme_policy_in_its_time_zone():
    ledgers = Ledgers(programs(program(expiry=expiring_after(365))))
    ledgers.apply(enrolled("m1"))
    event = only(ledgers.apply(bought("m1", "T1", cents=1000)), LedgerEventRecorded)
    # Earned on 2026-03-02 in Toronto; good through 2027-03-02; expires at the midnight after.
    assert event.entries[0].expires_at == datetime(2027, 3, 3, 5, tzinfo=UTC)
    assert event.balances_after[0].lots[0].expires_at == datetime(2027, 3, 3, 5, tzinfo=UTC)


def test_the_same_purchase_delivered_twice_is_credited_once():
    ledgers = Ledgers()
    ledgers.apply(enrolled("m1"))
    ledgers.apply(bought("m1", "T1", cents=1000))
    assert ledgers.apply(bought("m1", "T1", cents=1000)) == []
    assert ledgers.balance("m1") == 10


def test_a_purchase_that_overtakes_the_enrolment_is_credited_when_the_member_enrols():
    ledgers = Ledgers()
    assert ledgers.apply(bought("m1", "T1", cents=1000, at=T0 + timedelta(minutes=1))) == []
    events = [e for e in ledgers.apply(enrolled("m1")) if isinstance(e, LedgerEventRecorded)]
    assert [e.event_type for e in events] == [
        LedgerEventType.CUSTOMER_REGISTRATION,
        LedgerEventType.TRANSACTION_ADD,
    ]
    assert [e.sequence for e in events] == [1, 2]
    assert ledgers.balance("m1") == 10


def test_a_purchase_in_another_market_earns_nothing_here():
    ledgers = Ledgers(programs(program(market="US", currency="USD")))
    ledgers.apply(enrolled("m1"))
    assert ledgers.apply(bought("m1", "T1", cents=1000)) == []


def test_output_ids_derive_from_the_cause_so_a_replay_gives_identical_events():
    first, second = Ledgers(), Ledgers()
    script = [enrolled("m1"), bought("m1", "T1", cents=1234)]
    assert first.apply(*script) == second.apply(*script)
    assert len({e.event_id for e in first.emitted}) == 3  # with the enrolment's answer
