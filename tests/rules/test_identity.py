"""One id means one event (ADR 19): the places the member rules keep an identity and tell a
repeat from a conflict, including inputs parked before the enrolment."""

from __future__ import annotations

import pytest

from processors.contract.ledger import LedgerEventRecorded
from processors.contract.outcomes import RequestAccepted
from processors.rules import identity
from processors.rules.identity import ConflictError
from processors.rules.ledger.purchases import PARKED_MAX
from processors.rules.refusals import InputRefused
from tests.rules.given import PROGRAM, Ledgers, bought, enrolled, programs, redeem, returned


def ledgers() -> Ledgers:
    return Ledgers(programs())


def test_an_enrolment_resent_with_other_programmes_opens_nothing_and_is_a_conflict():
    book = ledgers()
    book.apply(enrolled("m1"))
    before = book.states["m1"].model_dump()
    with pytest.raises(ConflictError) as raised:
        book.apply(enrolled("m1", programs=[PROGRAM, "CA_FUEL"]))
    assert raised.value.kind == "enrolment"
    assert raised.value.identity == "enrol-m1"
    assert raised.value.first != raised.value.second
    assert book.states["m1"].model_dump() == before


def test_an_enrolment_redelivered_as_it_was_is_a_repeat_answered_as_the_first_time():
    book = ledgers()
    *_, answer = book.apply(enrolled("m1"))
    assert isinstance(answer, RequestAccepted)
    assert book.apply(enrolled("m1")) == [answer]


def test_a_purchase_resent_under_a_new_event_id_with_the_same_body_is_a_repeat():
    book = ledgers()
    book.apply(enrolled("m1"))
    book.apply(bought("m1", "T1", cents=1000))
    resent = bought("m1", "T1", cents=1000).model_copy(update={"event_id": "other"})
    assert book.apply(resent) == []
    assert book.balance("m1") == 10


def test_a_purchase_resent_with_another_amount_is_a_conflict():
    book = ledgers()
    book.apply(enrolled("m1"))
    book.apply(bought("m1", "T1", cents=1000))
    with pytest.raises(ConflictError, match="transaction_id 'T1'"):
        book.apply(bought("m1", "T1", cents=9000))
    assert book.balance("m1") == 10


def test_a_parked_purchase_resent_with_another_amount_is_a_conflict_and_parks_once():
    book = ledgers()
    book.apply(bought("m1", "T1", cents=1000))  # before the enrolment: parked
    book.apply(bought("m1", "T1", cents=1000).model_copy(update={"event_id": "again"}))
    with pytest.raises(ConflictError, match="transaction_id 'T1'"):
        book.apply(bought("m1", "T1", cents=5000))
    events = book.apply(enrolled("m1"))
    assert len([e for e in events if isinstance(e, LedgerEventRecorded)]) == 2  # join + T1
    assert book.balance("m1") == 10


def test_a_return_resent_with_another_amount_is_a_conflict():
    book = ledgers()
    book.apply(enrolled("m1"))
    book.apply(bought("m1", "T1", cents=1000))
    book.apply(returned("m1", "T1", "R1", ("1", 500)))
    with pytest.raises(ConflictError, match="return_id 'R1'"):
        book.apply(returned("m1", "T1", "R1", ("1", 1000)))
    assert book.balance("m1") == 5


def test_a_request_retried_later_with_the_same_parameters_is_a_repeat_not_a_conflict():
    book = ledgers()
    book.apply(enrolled("m1"))
    book.apply(bought("m1", "T1", cents=1000))
    first = book.apply(redeem("m1", 4, "c1"))
    later = redeem("m1", 4, "c1").model_copy(update={"occurred_at": first[-1].occurred_at})
    assert book.apply(later.model_copy(update={"event_id": "retry"})) == first[-1:]


def test_a_digest_leaves_out_the_envelope_only():
    purchase = bought("m1", "T1", cents=1000)
    assert identity.digest(purchase) == identity.digest(
        purchase.model_copy(update={"event_id": "x"})
    )
    moved = purchase.model_copy(update={"occurred_at": purchase.occurred_at.replace(year=2027)})
    assert identity.digest(purchase) != identity.digest(moved)
    assert identity.digest(purchase, identity.REQUEST) == identity.digest(moved, identity.REQUEST)


def test_beyond_the_parked_limit_a_purchase_is_refused_whole_not_dropped():
    # Found reading the code: the 101st purchase of a member not yet enrolled was dropped in
    # silence ("parked"), and its points never paid once they enrolled.
    book = ledgers()
    for n in range(PARKED_MAX):
        book.apply(bought("m1", f"T{n}", cents=100))
    with pytest.raises(InputRefused, match="100 inputs of member m1") as refused:
        book.apply(bought("m1", "T-late", cents=5000))
    assert refused.value.reason == "parked_limit"
    assert book.apply(bought("m1", "T0", cents=100)) == []  # one already parked is a repeat
    book.apply(enrolled("m1"))
    assert book.balance("m1") == PARKED_MAX  # each parked purchase paid, the refused one not
    book.apply(bought("m1", "T-late", cents=5000))  # replayed from its dead letter
    assert book.balance("m1") == PARKED_MAX + 50
