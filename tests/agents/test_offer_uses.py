"""The batch protocol around an offer's decision (ADR 14): answers sent before the state is
saved, and a batch redelivered against the old state answers with the same bytes."""

from __future__ import annotations

from processors.agents.offer_uses import OfferUses
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


async def test_a_request_redelivered_after_the_save_gets_its_original_answer_only():
    h = Harness(OfferUses())
    await h.run(request("m1", 0), request("m2", 1))
    first = answers(h)
    await h.run(request("m1", 0))
    assert answers(h) == first[:1]
