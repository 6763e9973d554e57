"""A member's stored state (the worker's table value): both parts round-trip, and a bare
ledger saved before the offer rules joined it still reads (ADR 8 addendum)."""

import json

import pytest

from processors.contract.common import PointsCategory
from processors.rules import member
from processors.rules.member import Config, MemberState
from processors.rules.refusals import InputRefused
from tests.rules.given import PROGRAM, Ledgers, bought, enrolled, programs, redeem, returned


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


def _saved_lines(raw: bytes) -> dict[tuple[bytes, str], bytes]:
    """The purchase lines of a stored state: (kind, transaction id) → record JSON."""
    lines = {}
    for line in raw.split(b"\n")[1:]:
        kind, quoted, body = line.split(b"\t", 2)
        lines[(kind, json.loads(quoted))] = body
    return lines


def _member_with_two_purchases() -> tuple[Config, MemberState]:
    config = Config(dict(programs()))
    state = MemberState("m1")
    for event in (enrolled("m1"), bought("m1", "T1", cents=12000), bought("m1", "T2", cents=8000)):
        member.handle(state, event, config)
    return config, state


def test_each_purchase_record_is_a_line_of_its_own_after_the_rest_of_the_state():
    _, state = _member_with_two_purchases()
    raw = member.dump_state(state)

    head = json.loads(raw.split(b"\n")[0])
    assert "purchases" not in head["ledger"]
    assert "purchases" not in head["offers"]
    assert set(_saved_lines(raw)) == {(b"l", "T1"), (b"l", "T2"), (b"o", "T1"), (b"o", "T2")}


def test_a_state_saved_as_one_json_document_reads_the_same():
    _, state = _member_with_two_purchases()
    stored = member._Stored(ledger=state.ledger, offers=state.offers)
    old_bytes = stored.model_dump_json().encode()  # the format before purchases were lines

    again = member.load_state("m1", old_bytes)

    assert again.ledger == state.ledger
    assert again.offers == state.offers
    assert list(again.ledger.purchases) == ["T1", "T2"]  # type: ignore[union-attr]


@pytest.mark.parametrize("verify", [True, False])
def test_a_return_or_a_redemption_rewrites_its_purchase_and_only_it(monkeypatch, verify):
    monkeypatch.setattr(member, "VERIFY_SAVED", verify)
    config, state = _member_with_two_purchases()
    state = member.load_state("m1", member.dump_state(state))
    before = _saved_lines(member.dump_state(state))
    unchanged = state.saved[("o", "T2")][2]

    member.handle(state, returned("m1", "T1", "R1", ("1", 6000)), config)
    member.handle(state, redeem("m1", 100, tx="T2"), config)
    after_bytes = member.dump_state(state)
    after = _saved_lines(after_bytes)

    assert after[(b"l", "T1")] != before[(b"l", "T1")]
    assert after[(b"o", "T1")] != before[(b"o", "T1")]
    assert after[(b"l", "T2")] != before[(b"l", "T2")]
    assert after[(b"o", "T2")] == before[(b"o", "T2")]
    assert state.saved[("o", "T2")][2] is unchanged  # not written again: its bytes reused
    again = member.load_state("m1", after_bytes)
    assert again.ledger == state.ledger
    assert again.offers == state.offers
    assert again.ledger is not None
    assert again.ledger.purchases["T1"].lines[0].returned_cents == 6000
    assert again.ledger.purchases["T1"].return_ids == ["R1"]
    assert len(again.ledger.purchases["T2"].redeemed) == 1


def test_forgotten_purchases_leave_the_stored_state():
    _, state = _member_with_two_purchases()
    member.dump_state(state)
    assert state.ledger is not None
    del state.ledger.purchases["T1"]

    assert set(_saved_lines(member.dump_state(state))) == {(b"l", "T2"), (b"o", "T1"), (b"o", "T2")}
    assert ("l", "T1") not in state.saved


def test_the_tests_check_that_a_reused_record_did_not_change_without_its_revision(monkeypatch):
    monkeypatch.setattr(member, "VERIFY_SAVED", True)
    _, state = _member_with_two_purchases()
    member.dump_state(state)
    assert state.ledger is not None
    state.ledger.purchases["T1"].lines[0].returned_cents = 1  # not how the rules change it

    with pytest.raises(AssertionError, match="l T1 changed at revision"):
        member.dump_state(state)


def test_a_loaded_purchase_reads_its_lines_only_when_a_rule_asks_for_them():
    config, state = _member_with_two_purchases()
    expected_offer_ids = set(state.offers.purchases["T1"].offers)  # type: ignore[union-attr]
    again = member.load_state("m1", member.dump_state(state))
    assert again.ledger is not None
    assert again.offers is not None
    ledger_t1, offers_t1 = again.ledger.purchases["T1"], again.offers.purchases["T1"]

    assert "lines" not in ledger_t1.__dict__
    assert "lines" not in offers_t1.__dict__
    assert "offers" not in offers_t1.__dict__
    assert set(offers_t1.offer_ids()) == expected_offer_ids  # from the head, nothing read
    assert "offers" not in offers_t1.__dict__

    member.handle(again, returned("m1", "T1", "R1", ("1", 6000)), config)

    assert ledger_t1.lines[0].returned_cents == 6000
    assert "lines" in offers_t1.__dict__  # the return re-priced the offers it counted towards
    assert "lines" not in again.ledger.purchases["T2"].__dict__  # the other one never read


def test_a_stored_head_and_rest_hold_the_whole_record_and_the_offer_ids():
    _, state = _member_with_two_purchases()
    assert state.ledger is not None
    assert state.offers is not None
    records = [*state.ledger.purchases.values(), *state.offers.purchases.values()]

    for record in records:
        head, rest = (json.loads(part) for part in record.stored())
        keys = head.pop("keys", None)
        assert head | rest == json.loads(record.model_dump_json())
        assert keys == (list(rest["offers"]) if "offers" in rest else None)


def test_a_purchase_whose_lines_were_never_read_is_written_back_with_their_bytes():
    config, state = _member_with_two_purchases()
    again = member.load_state("m1", member.dump_state(state))
    before = _saved_lines(member.dump_state(again))

    member.handle(again, redeem("m1", 100, tx="T2"), config)  # the head changes: `redeemed`
    after = _saved_lines(member.dump_state(again))

    assert again.ledger is not None
    assert "lines" not in again.ledger.purchases["T2"].__dict__
    head_before, rest_before = before[(b"l", "T2")].split(b"\t")
    head_after, rest_after = after[(b"l", "T2")].split(b"\t")
    assert rest_after == rest_before
    assert json.loads(head_after)["redeemed"] != json.loads(head_before)["redeemed"]
    assert member.load_state("m1", member.dump_state(again)).ledger == again.ledger


def test_unread_purchases_compare_and_serialise_as_whole_records(monkeypatch):
    _, state = _member_with_two_purchases()
    raw = member.dump_state(state)
    monkeypatch.setattr(member, "SAVE_AS_LINES", False)
    as_one_document = member.dump_state(state)

    assert member.load_state("m1", raw).offers == state.offers  # equality reads them
    assert member.dump_state(member.load_state("m1", raw)) == as_one_document


def test_a_purchase_line_as_the_first_lines_were_written_reads_at_once(monkeypatch):
    """One JSON object after the transaction id, before heads and rests (ADR 24, addenda)."""
    _, state = _member_with_two_purchases()
    head = member.dump_state(state).split(b"\n")[0]
    assert state.ledger is not None
    assert state.offers is not None
    first = [
        f'{kind}\t"{tid}"\t{record.model_dump_json()}'.encode()
        for kind, records in (("l", state.ledger.purchases), ("o", state.offers.purchases))
        for tid, record in records.items()
    ]

    again = member.load_state("m1", b"\n".join([head, *first]))

    assert again.ledger is not None
    assert "lines" in again.ledger.purchases["T1"].__dict__
    assert again.ledger == state.ledger
    assert again.offers == state.offers
    # Written again in the current layout at the next save (the tests' check included).
    monkeypatch.setattr(member, "VERIFY_SAVED", True)
    assert member.dump_state(again) == member.dump_state(state)


def test_a_deferred_field_set_before_it_was_read_is_what_is_stored():
    _, state = _member_with_two_purchases()
    again = member.load_state("m1", member.dump_state(state))
    assert again.ledger is not None
    assert again.offers is not None
    ledger_t1, offers_t1 = again.ledger.purchases["T1"], again.offers.purchases["T1"]

    ledger_t1.lines = []
    offers_t1.offers = {}
    copied = again.ledger.purchases["T2"].model_copy(update={"lines": []})

    assert json.loads(ledger_t1.stored()[1]) == {"lines": []}
    assert json.loads(copied.stored()[1]) == {"lines": []}
    assert list(offers_t1.offer_ids()) == []
    assert json.loads(offers_t1.stored()[0])["keys"] == []
    assert json.loads(offers_t1.stored()[1])["offers"] == {}
    assert offers_t1.lines == state.offers.purchases["T1"].lines  # type: ignore[union-attr]


def test_an_unread_purchase_says_so_in_its_repr():
    _, state = _member_with_two_purchases()
    again = member.load_state("m1", member.dump_state(state))
    assert again.ledger is not None

    assert "lines='<unread>'" in repr(again.ledger.purchases["T1"])
    assert "lines='<unread>'" not in repr(state.ledger.purchases["T1"])  # type: ignore[union-attr]


def _with_ledger_line(raw: bytes, transaction_id: str, change) -> bytes:
    return b"\n".join(
        change(line) if line.startswith(f'l\t"{transaction_id}"'.encode()) else line
        for line in raw.split(b"\n")
    )


@pytest.mark.parametrize(
    ("rest", "says"),
    [
        (b'{"lines": 7}', "Input should be a valid array"),
        (b"{}", "Field required"),
        (b"\xff", "Invalid JSON"),
    ],
)
def test_a_damaged_rest_is_refused_when_first_read_naming_the_member_and_line(rest, says):
    _, state = _member_with_two_purchases()
    raw = member.dump_state(state)
    damaged = _with_ledger_line(raw, "T1", lambda line: line.rsplit(b"\t", 1)[0] + b"\t" + rest)
    again = member.load_state("m1", damaged)  # only heads are read here
    assert again.ledger is not None

    with pytest.raises(
        ValueError, match="member m1's stored state, line 2: a stored Purchase's lines"
    ) as refused:
        _ = again.ledger.purchases["T1"].lines
    assert says in str(refused.value)


def test_an_offers_head_whose_keys_are_not_its_offers_is_refused_when_read():
    _, state = _member_with_two_purchases()
    head, *lines = member.dump_state(state).split(b"\n")
    for n, line in enumerate(lines):
        if line.startswith(b'o\t"T1"'):
            kind, quoted, record_head, rest = line.split(b"\t")
            keys = json.loads(record_head)
            keys["keys"] = [*keys["keys"], "ghost"]
            lines[n] = b"\t".join((kind, quoted, json.dumps(keys).encode(), rest))
    again = member.load_state("m1", b"\n".join([head, *lines]))
    assert again.offers is not None

    assert "ghost" in again.offers.purchases["T1"].offer_ids()
    with pytest.raises(
        ValueError, match="line 4: a stored PurchaseRecord's lines, offers: its head's keys"
    ):
        _ = again.offers.purchases["T1"].lines


def test_a_first_layout_record_without_its_lines_is_refused_at_the_load():
    _, state = _member_with_two_purchases()
    raw = member.dump_state(state)
    no_lines = _with_ledger_line(
        raw, "T1", lambda line: b'l\t"T1"\t{"transaction_id":"T1","province":"ON"}'
    )

    with pytest.raises(ValueError, match="line 2: 1 validation error for Purchase") as refused:
        member.load_state("m1", no_lines)
    assert "lines\n  Field required" in str(refused.value)


def test_damaged_lines_are_refused_when_first_read_naming_the_record():
    _, state = _member_with_two_purchases()
    raw = member.dump_state(state)
    damaged = b"\n".join(
        line.rsplit(b"\t", 1)[0] + b'\t{"lines": 7}' if line.startswith(b"l\t") else line
        for line in raw.split(b"\n")
    )
    again = member.load_state("m1", damaged)  # only heads are read here
    assert again.ledger is not None

    with pytest.raises(ValueError, match="a stored Purchase's lines: 1 validation error"):
        _ = again.ledger.purchases["T1"].lines


def test_a_stored_purchase_of_an_unknown_kind_is_refused():
    _, state = _member_with_two_purchases()
    raw = member.dump_state(state) + b'\nx\t"T9"\t{}'

    with pytest.raises(ValueError, match="unknown kind"):
        member.load_state("m1", raw)


def test_with_the_lines_switched_off_a_state_is_saved_as_one_document(monkeypatch):
    """For an upgrade that may be rolled back, or runs workers older than the lines beside
    newer ones: they read a state only as one JSON document (ADR 24, addendum)."""
    monkeypatch.setattr(member, "SAVE_AS_LINES", False)
    _, state = _member_with_two_purchases()

    raw = member.dump_state(state)

    assert b"\n" not in raw
    as_before = member._Stored.model_validate_json(raw)  # how the older workers read it
    assert as_before.ledger == state.ledger
    assert as_before.offers == state.offers
    assert member.load_state("m1", raw).ledger == state.ledger


@pytest.mark.parametrize(
    ("line", "says"),
    [
        (b"l T9 {}", "not a purchase line"),
        (b'l\t"T1"\t{}', "stored twice"),
        (b"l\t9\t{}", "not a transaction id"),
        (b'l\t"T9"\tnot json', "validation error for Purchase"),
        (b'l\t"T9"\tnot json\t{}', "Expecting value"),
        (b'l\t"T9"\t[]\t{}', "not a Purchase's head"),
        (b'l\t"T9"\t{"transaction_id":"T9","lines":[]}\t{}', "not a Purchase's head"),
        (b'o\t"T9"\t{"at":"2026-03-02T15:00:00Z","keys":"O1"}\t{}', "head with keys 'O1'"),
    ],
)
def test_a_damaged_purchase_line_is_refused_naming_the_member_and_the_line(line, says):
    _, state = _member_with_two_purchases()
    raw = member.dump_state(state) + b"\n" + line

    with pytest.raises(ValueError, match=f"member m1's stored state, line 6: .*{says}"):
        member.load_state("m1", raw)


def test_a_ledger_purchase_on_the_line_of_another_is_refused():
    _, state = _member_with_two_purchases()
    head, *lines = member.dump_state(state).split(b"\n")
    swapped = [line.replace(b'l\t"T1"', b'l\t"T7"') for line in lines]

    with pytest.raises(ValueError, match="ledger purchase 'T1' on the line of 'T7'"):
        member.load_state("m1", b"\n".join([head, *swapped]))


def test_a_purchase_or_return_in_another_currency_than_its_markets_programmes_is_refused():
    # Found by a user's trial: a CA purchase in USD earned at the CAD programme's rate.
    config = Config(dict(programs()))
    state = MemberState("m1")
    member.handle(state, enrolled("m1"), config)
    usd = bought("m1", "T1", cents=3000).model_copy(update={"currency": "USD"})
    with pytest.raises(InputRefused, match="amounts in USD; the programmes of market CA keep CAD"):
        member.handle(state, usd, config)
    stranger = bought("m9", "T9", cents=3000).model_copy(update={"currency": "USD"})
    with pytest.raises(InputRefused, match="currency_mismatch"):  # not parked for later either
        member.handle(MemberState("m9"), stranger, config)
    back = returned("m1", "T1", "R1", ("1", 3000)).model_copy(update={"currency": "USD"})
    with pytest.raises(InputRefused, match="currency_mismatch"):
        member.handle(state, back, config)
    assert state.ledger is not None
    assert state.ledger.purchases == {}  # nothing of it kept
