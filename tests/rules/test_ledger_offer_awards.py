"""Offer awards booked in the ledger (ADR 10): OFFER_AWARD credits, RETURN debits naming the
offer. What is due is the offer rules' business; these tests give the ledger the decision."""

from datetime import UTC, datetime, timedelta

from processors.contract.common import PointsCategory, Source
from processors.contract.ledger import EntryKind, EntryType, LedgerEventRecorded, LedgerEventType
from processors.rules.ledger import purchases
from processors.rules.ledger.awards import OfferCredit, OfferDebit, credit_offer_award
from tests.rules.given import (
    PROGRAM,
    T0,
    Ledgers,
    bought,
    enrolled,
    expiring_after,
    line,
    merged,
    only,
    program,
    programs,
    returned,
)


def award(points: int, offer: str = "SPEND10", program_id: str = PROGRAM) -> OfferCredit:
    return OfferCredit(
        offer_id=offer,
        program_id=program_id,
        points=points,
        completed_event_id=f"OC-{offer}-1",
        occurred_at=T0,
        source=Source.INSTORE,
        store_id="S1",
        till_id="T1",
        transaction_id="t1",
        transaction_number="Nt1",
    )


def test_an_award_is_one_offer_award_event_crediting_regular_and_naming_the_offer():
    config = programs(program(expiry=expiring_after(30)))
    ledgers = Ledgers(config)
    ledgers.apply(enrolled("m1"), bought("m1", "t1", cents=1200))

    result = credit_offer_award(ledgers.states["m1"], award(100), config)

    event = only(result.emitted, LedgerEventRecorded)
    assert event.event_type is LedgerEventType.OFFER_AWARD
    assert event.cause_event_id == "OC-SPEND10-1"
    assert (event.transaction_id, event.store_id, event.till_id) == ("t1", "S1", "T1")
    assert [(e.entry_type, e.kind, e.category, e.points, e.offer_id) for e in event.entries] == [
        (EntryType.CREDIT, EntryKind.ALLOCATION, PointsCategory.REGULAR, 100, "SPEND10")
    ]
    # 30 days after 2026-03-02 in Toronto: the lot ends at local midnight of April 2.
    assert event.entries[0].expires_at == datetime(2026, 4, 2, 4, tzinfo=UTC)
    assert event.points_on_event == 100
    assert ledgers.states["m1"].balance(PROGRAM, PointsCategory.REGULAR) == 112


def test_the_same_award_always_gets_the_same_ledger_event_id():
    first, second = Ledgers(), Ledgers()
    for ledgers in (first, second):
        ledgers.apply(enrolled("m1"))
    a = only(credit_offer_award(first.states["m1"], award(50), first.programs).emitted, object)
    b = only(credit_offer_award(second.states["m1"], award(50), second.programs).emitted, object)
    assert a.event_log_id == b.event_log_id


def test_a_member_merged_away_or_outside_the_programme_is_not_credited():
    ledgers = Ledgers()
    ledgers.apply(enrolled("m1"), enrolled("m2"), merged("m1", "m2"))

    gone = credit_offer_award(ledgers.states["m1"], award(100), ledgers.programs)
    stranger = credit_offer_award(ledgers.states["m2"], award(100, program_id="OTHER"), {})

    assert gone.emitted == []
    assert "cannot hold" in gone.note
    assert stranger.emitted == []


def test_a_return_takes_back_base_points_and_lost_offer_awards_in_one_event():
    ledgers = Ledgers()
    ledgers.apply(enrolled("m1"), bought("m1", "t1", line("1", 800), line("2", 400)))
    credit_offer_award(ledgers.states["m1"], award(100), ledgers.programs)

    result = purchases.return_purchase(
        ledgers.states["m1"],
        returned("m1", "t1", "r1", ("2", 400), at=T0 + timedelta(days=1)),
        ledgers.programs,
        [OfferDebit("SPEND10", PROGRAM, 100)],
    )

    event = only(result.emitted, LedgerEventRecorded)
    assert event.event_type is LedgerEventType.TRANSACTION_RETURN
    assert [(e.entry_type, e.kind, e.points, e.offer_id) for e in event.entries] == [
        (EntryType.DEBIT, EntryKind.RETURN, 4, None),
        (EntryType.DEBIT, EntryKind.RETURN, 100, "SPEND10"),
    ]
    assert event.points_on_event == -104
    assert ledgers.states["m1"].balance(PROGRAM, PointsCategory.REGULAR) == 8
