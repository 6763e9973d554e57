"""What a batch of events becomes in the projection tables, before any database is involved."""

from datetime import timedelta

from processors.codec.avro import AvroCodec
from processors.contract.base import Event
from processors.contract.catalogue import events_on
from processors.contract.enrolments import MemberProfile, MemberProfileUpdated, MembersMerged
from processors.contract.ledger import LedgerEventRecorded
from projections.projection import TRUSTED_TOPICS
from projections.writers import ledger, members
from tests.builders import T0, LedgerBook, credit, debit, enrolled

SOON = T0 + timedelta(days=30)
LATER = T0 + timedelta(days=90)
CODEC = AvroCodec()


def decoded(*events: LedgerEventRecorded) -> list[ledger.LedgerData]:
    """The events as the projector reads them from the ledger topic: Avro data, unvalidated."""
    return [CODEC.decode_data(CODEC.encode(event)).data for event in events]


def test_an_event_becomes_one_row_with_its_entries_in_order_and_its_balances_after():
    book = LedgerBook("M1")
    given = book.record(credit(100, expires_at=SOON), credit(7, category="PROMISED"))

    rows = ledger.rows_of(decoded(given))

    assert [row[0] for row in rows.events] == ["M1:1"]
    assert [(entry[0], entry[4], entry[6], entry[9]) for entry in rows.entries] == [
        ("M1:1:0", 0, "REGULAR", 100),
        ("M1:1:1", 1, "PROMISED", 7),
    ]
    assert sorted(rows.event_balances) == [
        ("M1", 1, "M1:1", "CA_REWARDS", "PROMISED", 7),
        ("M1", 1, "M1:1", "CA_REWARDS", "REGULAR", 100),
    ]


def test_a_batch_keeps_only_the_newest_state_of_each_account():
    book = LedgerBook("M1")
    given = [
        book.record(credit(100, expires_at=SOON)),
        book.record(credit(50, expires_at=LATER)),
        book.record(debit(30, expires_at=SOON)),
    ]

    rows = ledger.rows_of(decoded(*given))

    assert rows.balances() == [("M1", "CA_REWARDS", "REGULAR", 120, 3)]
    assert rows.lots() == [
        ("M1", "CA_REWARDS", "REGULAR", SOON, 70),
        ("M1", "CA_REWARDS", "REGULAR", LATER, 50),
    ]
    assert len(rows.event_balances) == 3  # the history keeps every step


def test_the_newest_state_wins_whatever_order_the_batch_holds_the_events_in():
    book = LedgerBook("M1")
    first, second = book.record(credit(10)), book.record(credit(5))

    rows = ledger.rows_of(decoded(second, first))

    assert rows.balances() == [("M1", "CA_REWARDS", "REGULAR", 15, 2)]


def test_an_event_delivered_twice_in_a_batch_yields_its_rows_once():
    given = LedgerBook("M1").record(credit(10), credit(3))

    rows = ledger.rows_of(decoded(given, given))

    assert (len(rows.events), len(rows.entries), len(rows.event_balances)) == (1, 2, 1)


def test_the_lot_that_never_expires_is_kept_as_none_for_the_writer_to_store_as_infinity():
    rows = ledger.rows_of(decoded(LedgerBook("M1").record(credit(10))))

    assert rows.lots() == [("M1", "CA_REWARDS", "REGULAR", None, 10)]


def test_the_ledger_topics_data_gives_the_rows_its_validated_model_gives():
    # The projector reads the ledger unvalidated (ADR 39); the tables must not tell.
    book = LedgerBook("M1")
    book.record(credit(100, expires_at=SOON), credit(40))
    given = book.record(
        debit(120, expires_at=SOON), credit(5, offer_id="SPRING_5", category="PROMISED"),
        event_type="TRANSACTION_RETURN", till_id="T-9", transaction_id="R1",
        transaction_number="0042", related_member_id="M2", store_id="S7",
    )  # fmt: skip

    from_data, from_model = ledger.rows_of(decoded(given)), ledger.rows_of([given.model_dump()])

    assert from_data == from_model
    assert from_data.events[0][:4] == ("M1:2", "M1", 2, "TRANSACTION_RETURN")
    assert from_data.entries[1][-2:] == (None, "SPRING_5")


def test_member_events_become_their_statements_in_order():
    given = [
        enrolled("M1"),
        MemberProfileUpdated(
            event_id="p1", occurred_at=T0 + timedelta(hours=1), member_id="M1", source="APP",
            profile=MemberProfile(first_name="Ann", email="ann@example.com"),
        ),
        MembersMerged(
            event_id="g1", occurred_at=T0 + timedelta(hours=2), victim_member_id="M1",
            survivor_member_id="M2", source="CALL_CENTER",
        ),
    ]  # fmt: skip

    statements = members.statements_of(given)

    # The enrolment waits for its answer; the update and the merge apply to the member and to
    # an enrolment still waiting.
    assert [sql.split()[0:3] for sql, _ in statements] == [
        ["INSERT", "INTO", "member_enrolments_pending"],
        ["UPDATE", "members", "SET"],
        ["UPDATE", "member_enrolments_pending", "SET"],
        ["UPDATE", "members", "SET"],
        ["UPDATE", "member_enrolments_pending", "SET"],
    ]
    enrol, profile, _, merge, _ = (params for _, params in statements)
    assert (enrol["member_id"], enrol["command_id"], enrol["market"]) == ("M1", "enrol-M1", "CA")
    assert enrol["basics"].obj["first_name"] == "First M1"
    assert (profile["first_name"], profile["email"], profile["province"]) == (
        "Ann",
        "ann@example.com",
        None,
    )
    assert (merge["victim"], merge["survivor"]) == ("M1", "M2")


def test_the_topics_the_projector_trusts_carry_events_keyed_by_their_key_field():
    # The trusted path checks the key against `key_field`: no event there computes its key.
    for topic in TRUSTED_TOPICS:
        for event in events_on(topic):
            assert event.partition_key is Event.partition_key, event.__name__
