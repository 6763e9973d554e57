"""A member's stored state (the worker's table value): both parts round-trip, and a bare
ledger saved before the offer rules joined it still reads (ADR 8 addendum)."""

from processors.contract.common import PointsCategory
from processors.rules import member
from processors.rules.member import Config, MemberState
from tests.rules.given import PROGRAM, Ledgers, bought, enrolled, programs


def test_a_member_with_ledger_and_offers_round_trips_through_its_stored_bytes():
    config = Config(dict(programs()))
    state = MemberState("m1")
    member.handle(state, enrolled("m1"), config)
    member.handle(state, bought("m1", "T1", cents=1200), config)

    raw = member.dump_state(state)
    again = member.load_state("m1", raw)

    assert again.ledger == state.ledger
    assert again.offers == state.offers
    assert member.dump_state(again) == raw


def test_a_bare_ledger_saved_before_offers_reads_as_a_member_without_offers_yet():
    ledgers = Ledgers()
    ledgers.apply(enrolled("m1"), bought("m1", "T1", cents=1200))
    old_bytes = ledgers.states["m1"].model_dump_json().encode()  # the format before ADR 10

    state = member.load_state("m1", old_bytes)
    assert state.ledger == ledgers.states["m1"]
    assert state.offers is None

    # It keeps working: the next purchase earns, and offers start from the ledger's programmes.
    result = member.handle(state, bought("m1", "T2", cents=800), Config(dict(programs())))
    assert result.emitted
    assert state.ledger is not None
    assert state.ledger.balance(PROGRAM, PointsCategory.REGULAR) == 20
    assert state.offers is not None
    assert state.offers.programs == [PROGRAM]


def test_nothing_known_is_nothing_to_save():
    assert member.is_empty(MemberState("stranger"))
