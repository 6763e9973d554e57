"""The batch adapter around an offer's decision (ADR 14): answers sent before states are handed
back for saving, and a batch redelivered against the old states answers with the same bytes.

No broker here: `send` records what would be produced (the real broker is exercised by
tests/integration/test_offer_total_cap.py).
"""

from processors.agents import offer_uses
from processors.agents.offer_uses import OfferUsesBatch
from processors.codec.avro import AvroCodec
from processors.contract.internal import OfferUseRequested
from processors.frontdoor import Delivered, FrontDoor
from tests.agents.test_ledger_batch import Recorder
from tests.rules.given import T0

CODEC = AvroCodec()


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
    return Delivered(event.topic, 0, offset, b"FIRST1", CODEC.encode(event), 0)


async def run(records: list[Delivered], saved: dict[str, bytes]):  # type: ignore[no-untyped-def]
    recorder = Recorder()
    door = FrontDoor(CODEC, recorder)  # type: ignore[arg-type]
    batch = OfferUsesBatch(CODEC, door, lambda t, v, k: recorder.send(t, v, k))
    return await batch.run(records, saved.get), recorder


async def test_the_first_request_is_granted_the_second_denied_and_the_state_returned():
    result, recorder = await run([request("m1", 0), request("m2", 1)], {})
    kinds = [type(CODEC.decode(value)).__name__ for _, value, _ in recorder.sent]
    assert kinds == ["OfferUseGranted", "OfferBudgetExhausted", "OfferUseDenied"]
    assert [key for _, _, key in recorder.sent] == [b"m1", b"FIRST1", b"m2"]
    state = offer_uses.load(result.states["FIRST1"])
    assert (state.uses_granted, state.exhausted_by) == (1, "req-m1")


async def test_a_batch_redelivered_against_the_old_state_answers_alike():
    _, first = await run([request("m1", 0), request("m2", 1)], {})
    _, again = await run([request("m1", 0), request("m2", 1)], {})  # the save never happened
    assert again.sent == first.sent


async def test_a_request_redelivered_after_the_save_gets_its_original_answer_only():
    saved, first = await run([request("m1", 0), request("m2", 1)], {})
    _, again = await run([request("m1", 0)], dict(saved.states))
    assert again.sent == first.sent[:1]
