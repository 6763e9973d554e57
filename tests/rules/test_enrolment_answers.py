"""Every enrolment is answered (issue #15, ADR 28): accepted with the registration's ledger
event, or rejected with a stable reason and nothing opened; the answer is kept, so a repeat
of the enrolment's event_id gets it again, even once the configuration has changed."""

from __future__ import annotations

from processors.contract.ledger import LedgerEventRecorded
from processors.contract.outcomes import RequestAccepted, RequestRejected
from processors.contract.redemptions import RequestType
from tests.rules.given import PROGRAM, Ledgers, enrolled, merged, program, programs


def test_an_accepted_enrolment_names_its_registration():
    registration, answer = Ledgers().apply(enrolled("m1"))
    assert isinstance(registration, LedgerEventRecorded)
    assert isinstance(answer, RequestAccepted)
    assert (answer.request_type, answer.command_id) == (RequestType.ENROLMENT, "enrol-m1")
    assert answer.ledger_event_log_id == registration.event_log_id


def test_joining_again_what_the_member_is_in_already_is_rejected_and_opens_nothing():
    book = Ledgers()
    book.apply(enrolled("m1"))
    again = enrolled("m1").model_copy(update={"event_id": "enrol-m1-again"})
    (answer,) = book.apply(again)
    assert isinstance(answer, RequestRejected)
    assert answer.reason.value == "already_enrolled"


def test_joining_one_more_programme_opens_only_that_one():
    book = Ledgers(programs(program(), program("CA_FUEL")))
    book.apply(enrolled("m1"))
    more = enrolled("m1", programs=[PROGRAM, "CA_FUEL"]).model_copy(update={"event_id": "e2"})
    registration, answer = book.apply(more)
    assert isinstance(answer, RequestAccepted)
    assert isinstance(registration, LedgerEventRecorded)
    assert {e.program_id for e in registration.entries} == {"CA_FUEL"}


def test_a_member_merged_away_cannot_enrol_again():
    book = Ledgers()
    book.apply(enrolled("m1"), enrolled("m2"), merged("m1", "m2"))
    later = enrolled("m1").model_copy(update={"event_id": "enrol-m1-later"})
    (answer,) = book.apply(later)
    assert isinstance(answer, RequestRejected)
    assert (answer.reason.value, answer.detail) == ("member_merged", "merged into m2")


def test_a_known_members_refusal_is_kept_so_a_repeat_is_answered_the_same():
    book = Ledgers(programs(program(), program("CA_CLOSED", enrolment_open=False)))
    book.apply(enrolled("m1"))
    closed = enrolled("m1", programs=["CA_CLOSED"]).model_copy(update={"event_id": "e-closed"})
    (first,) = book.apply(closed)
    book.programs = programs(program(), program("CA_CLOSED"))  # opened meanwhile
    assert book.apply(closed) == [first]  # the same answer, same id: nothing opened
    assert isinstance(first, RequestRejected)
    assert first.reason.value == "programme_disabled"
