"""The batch adapter around the ledger rules: order of effects and failure handling.

No broker here: `send` records what would be produced (the real broker is exercised by
tests/integration/test_worker_ledger.py); this checks the adapter's own decisions.
"""

import asyncio

import processors.agents.ledger_batch as ledger_batch
from processors.agents.ledger_batch import LedgerBatch
from processors.codec.avro import AvroCodec
from processors.contract.common import PointsCategory
from processors.contract.deadletter import DeadLettered, DeadLetterReason
from processors.contract.ledger import LedgerEventRecorded
from processors.frontdoor import Delivered, FrontDoor
from processors.rules.ledger.state import MemberLedger
from tests.rules.given import bought, enrolled, programs

CODEC = AvroCodec()


class Recorder:
    """Stands in for the producer: keeps (topic, value, key) and acknowledges at once."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes | None]] = []

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> asyncio.Future:
        self.sent.append((topic, value, key))
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


def record(event, offset: int) -> Delivered:
    return Delivered(event.topic, 0, offset, event.partition_key().encode(), CODEC.encode(event), 0)


async def run(batch_records, saved: dict[str, bytes]) -> tuple[ledger_batch.BatchResult, Recorder]:
    recorder = Recorder()
    door = FrontDoor(CODEC, recorder)  # type: ignore[arg-type]
    batch = LedgerBatch(CODEC, door, lambda t, v, k: recorder.send(t, v, k), programs())
    result = await batch.run(batch_records, saved.get, lambda _p: [])
    return result, recorder


async def test_outputs_are_sent_and_only_changed_states_are_returned_for_saving():
    result, recorder = await run(
        [record(enrolled("m1"), 0), record(bought("m1", "T1", cents=1000), 1)], {}
    )
    kinds = [type(CODEC.decode(value)).__name__ for _, value, _ in recorder.sent]
    assert kinds == ["LedgerEventRecorded", "LedgerEventRecorded"]
    state = MemberLedger.model_validate_json(result.states["m1"])
    assert state.balance("CA_MAIN", PointsCategory.REGULAR) == 10


async def test_an_input_already_applied_changes_no_saved_state():
    first, _ = await run([record(enrolled("m1"), 0), record(bought("m1", "T1", cents=1000), 1)], {})
    again, recorder = await run([record(bought("m1", "T1", cents=1000), 1)], dict(first.states))
    assert again.states == {}
    assert recorder.sent == []


async def test_a_rule_that_fails_dead_letters_the_input_and_leaves_the_state_as_it_was(monkeypatch):
    first, _ = await run([record(enrolled("m1"), 0)], {})
    real_handle = ledger_batch.handle

    def failing(state, message, configs):
        if getattr(message, "transaction_id", None) == "BAD":
            state.sequence = 999  # a half-done change that must not be saved
            raise RuntimeError("bug in the rules")
        return real_handle(state, message, configs)

    monkeypatch.setattr(ledger_batch, "handle", failing)
    records = [
        record(bought("m1", "BAD", cents=1000), 5),
        record(bought("m1", "T2", cents=2000), 6),
    ]
    result, recorder = await run(records, dict(first.states))

    sent = [CODEC.decode(value) for _, value, _ in recorder.sent]
    dead = [e for e in sent if isinstance(e, DeadLettered)]
    assert [(d.reason, d.original_offset, d.event_type) for d in dead] == [
        (DeadLetterReason.PROCESSING_FAILED, 5, "TransactionCompleted")
    ]
    assert "RuntimeError: bug in the rules" in dead[0].error
    ledger = [e for e in sent if isinstance(e, LedgerEventRecorded)]
    assert [(e.transaction_id, e.sequence) for e in ledger] == [("T2", 2)]
    assert MemberLedger.model_validate_json(result.states["m1"]).sequence == 2
