"""The batch protocol around an offer's decision (ADR 14): answers sent before the state is
saved, and a batch redelivered against the old state answers with the same bytes."""

from __future__ import annotations

from processors.agents.offer_uses import MEMBER, MOVED_AT_ONCE, OfferUses
from processors.contract.config import OfferClosed
from processors.contract.internal import OfferUseRequested
from processors.frontdoor import Delivered
from processors.rules.offers import budget
from tests.agents.harness import CHANGELOG, Harness, record
from tests.rules.given import T0


def request(member: str, offset: int) -> Delivered:
    event = OfferUseRequested(
        event_id=f"req-{member}",
        occurred_at=T0,
        offer_id="FIRST1",
        member_id=member,
        use_number=1,
        program_id="CA_MAIN",
        points_due=100,
        points_requested=100,
        uses_total_max=1,
        cause_event_id=f"tx-{member}",
        completed_event_id=f"done-{member}",
    )
    return record(event, offset)


def answers(h: Harness) -> list[tuple[str, bytes, bytes | None, int | None]]:
    return [sent for sent in h.sent() if sent[0] != CHANGELOG]


async def test_the_first_request_is_granted_the_second_denied_and_the_state_saved():
    h = Harness(OfferUses())
    await h.run(request("m1", 0), request("m2", 1))
    sent = h.sent()
    kinds: list[str] = [type(h.batches.codec.decode(v)).__name__ for t, v, _, _ in sent
                        if t != CHANGELOG]  # fmt: skip
    assert kinds == ["OfferUseGranted", "OfferBudgetExhausted", "OfferClosed", "OfferUseDenied"]
    closed = h.batches.codec.decode(sent[2][1])
    # The closing goes to the config topic, keyed by its own id (ADR 29): every copy of the
    # configuration closes the offer.
    assert sent[2][0].endswith(OfferClosed.topic)
    keys = [key for t, _, key, _ in sent if t != CHANGELOG]
    assert keys == [b"m1", b"FIRST1", closed.event_id.encode(), b"m2"]
    assert sent[-1][0] == CHANGELOG  # saved last
    raw = h.table.get("FIRST1")
    assert raw is not None
    state = budget.OfferUses.model_validate_json(raw)
    assert (state.uses_granted, state.exhausted_by) == (1, "req-m1")


async def test_a_batch_redelivered_against_the_old_state_answers_alike():
    first, again = Harness(OfferUses()), Harness(OfferUses())  # the save never happened
    await first.run(request("m1", 0), request("m2", 1))
    await again.run(request("m1", 0), request("m2", 1))
    assert answers(again) == answers(first)


async def test_a_request_sent_again_after_the_save_gets_its_original_answer_only():
    # The member's agent sends the same request again (its own batch redelivered): a new
    # record, the same request.
    h = Harness(OfferUses())
    await h.run(request("m1", 0), request("m2", 1))
    first = answers(h)
    await h.run(request("m1", 2))
    assert answers(h) == first[:1]


async def test_a_record_redelivered_after_the_save_is_not_decided_again():
    # Its answer was acknowledged before the state was saved (ADR 17, addendum: the inputs
    # a parted state already holds).
    h = Harness(OfferUses())
    await h.run(request("m1", 0), request("m2", 1))
    assert len(answers(h)) == 4  # granted, exhausted, closed, denied
    saved = h.table.parted("FIRST1")
    await h.run(request("m1", 0), request("m2", 1))
    assert h.sent() == []  # no answer, no write
    assert h.table.parted("FIRST1") == saved


async def test_an_offer_stored_whole_moves_its_members_to_parts_a_few_thousand_a_save():
    # Before the parts, the entry held every member's answers: read as it was; at each save a
    # bounded number of them move to parts (one journal with all of them could pass the
    # broker's record size limit, found in review), the rest stay in the entry meanwhile.
    members = {f"m{n:05d}": {1: 100} for n in range(2 * MOVED_AT_ONCE + 500)}
    members["d1"] = {1: 0}
    whole = budget.OfferUses(
        offer_id="FIRST1", uses_granted=len(members) - 1, points_granted=100 * (len(members) - 1),
        decided=members, discounts_granted={"d1|1"},
    )  # fmt: skip
    h = Harness(OfferUses())
    h.table.load(0, [(b"FIRST1", whole.model_dump_json().encode())])
    moved = []
    for offset in range(3):
        h.batches.cache.clear()  # read back from the table each time
        await h.run(request("m00000", offset))  # answered as before, from what is stored
        [granted] = [h.batches.codec.decode(v) for t, v, _, _ in answers(h)]
        assert (type(granted).__name__, granted.points_granted) == ("OfferUseGranted", 100)
        parts = h.table.parts("FIRST1")
        moved.append(sum(1 for name in parts if name.startswith(MEMBER)))
        entry = h.table.get("FIRST1")
        assert entry is not None
        state = OfferUses().load_parted("FIRST1", entry, parts)
        assert state.decided == members  # every answer, wherever it is kept
        assert state.discounts_granted == {"d1|1"}
    assert moved == [MOVED_AT_ONCE, 2 * MOVED_AT_ONCE, len(members)]
    assert budget.OfferUses.model_validate_json(entry).decided == {}  # the entry holds none


async def test_an_offer_writes_only_the_members_whose_answers_changed():
    h = Harness(OfferUses())
    await h.run(*(request(f"m{n}", n) for n in range(5)))
    h.sent()
    await h.run(request("m9", 9))
    written = [key for topic, _, key, _ in h.sent() if topic == CHANGELOG]
    members = [k for k in written if k is not None and b"member:" in k]
    assert members == [b"FIRST1\x1fmember:m9"]
