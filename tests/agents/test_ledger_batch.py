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
from processors.rules import member as rules
from processors.rules.ledger.state import MemberLedger
from processors.rules.member import Config
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


def ledger_of(raw: bytes) -> MemberLedger:
    ledger = rules.load_state("?", raw).ledger
    assert ledger is not None
    return ledger


def record(event, offset: int) -> Delivered:
    return Delivered(event.topic, 0, offset, event.partition_key().encode(), CODEC.encode(event), 0)


async def run(batch_records, saved: dict[str, bytes]) -> tuple[ledger_batch.BatchResult, Recorder]:
    recorder = Recorder()
    door = FrontDoor(CODEC, recorder)  # type: ignore[arg-type]
    batch = LedgerBatch(
        CODEC, door, lambda t, v, k: recorder.send(t, v, k), Config(dict(programs()))
    )
    result = await batch.run(batch_records, saved.get, lambda _p: [])
    return result, recorder


async def test_outputs_are_sent_and_only_changed_states_are_returned_for_saving():
    result, recorder = await run(
        [record(enrolled("m1"), 0), record(bought("m1", "T1", cents=1000), 1)], {}
    )
    kinds = [type(CODEC.decode(value)).__name__ for _, value, _ in recorder.sent]
    assert kinds == ["LedgerEventRecorded", "LedgerEventRecorded"]
    state = ledger_of(result.states["m1"])
    assert state.balance("CA_MAIN", PointsCategory.REGULAR) == 10


async def test_an_input_already_applied_changes_no_saved_state():
    first, _ = await run([record(enrolled("m1"), 0), record(bought("m1", "T1", cents=1000), 1)], {})
    again, recorder = await run([record(bought("m1", "T1", cents=1000), 1)], dict(first.states))
    assert again.states == {}
    assert recorder.sent == []


async def test_a_rule_that_fails_dead_letters_the_input_and_leaves_the_state_as_it_was(monkeypatch):
    first, _ = await run([record(enrolled("m1"), 0)], {})
    real_handle = rules.handle

    def failing(state, message, config):
        if getattr(message, "transaction_id", None) == "BAD":
            state.ledger.sequence = 999  # a half-done change that must not be saved
            raise RuntimeError("bug in the rules")
        return real_handle(state, message, config)

    monkeypatch.setattr(rules, "handle", failing)
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
    assert rules.load_state("m1", result.states["m1"]).ledger.sequence == 2


class Counting:
    """Counts how often states are parsed from their saved bytes."""

    def __init__(self, monkeypatch) -> None:
        self.parsed = 0
        real = rules.load_state

        def counted(member, raw):
            self.parsed += 1
            return real(member, raw)

        monkeypatch.setattr(rules, "load_state", counted)


def batch_over(recorder: Recorder) -> LedgerBatch:
    door = FrontDoor(CODEC, recorder)  # type: ignore[arg-type]
    return LedgerBatch(
        CODEC, door, lambda t, v, k: recorder.send(t, v, k), Config(dict(programs()))
    )


async def test_a_state_is_parsed_once_while_the_table_keeps_the_bytes_it_was_saved_as(monkeypatch):
    counting = Counting(monkeypatch)
    batch = batch_over(Recorder())
    table: dict[str, bytes] = {}
    batches = [[record(enrolled("m1"), 0)]] + [
        [record(bought("m1", f"T{n}", cents=1000), n)] for n in range(1, 4)
    ]
    for records in batches:
        result = await batch.run(records, table.get, lambda _p: [])
        table.update(result.states)
    assert counting.parsed == 0
    state = ledger_of(table["m1"])
    assert state.balance("CA_MAIN", PointsCategory.REGULAR) == 30


async def test_a_cached_state_is_not_used_once_the_table_holds_other_bytes():
    # Another worker (after a rebalance) moved the member on; the table was recovered from its
    # changelog. The cache must not answer with the state this worker saw last.
    batch = batch_over(Recorder())
    table: dict[str, bytes] = {}
    for records in ([record(enrolled("m1"), 0)], [record(bought("m1", "T1", cents=1000), 1)]):
        table.update((await batch.run(records, table.get, lambda _p: [])).states)
    elsewhere, _ = await run(
        [record(enrolled("m1"), 0), record(bought("m1", "T1", cents=1000), 1),
         record(bought("m1", "T2", cents=5000), 2)],
        {},
    )  # fmt: skip
    table["m1"] = elsewhere.states["m1"]
    result = await batch.run([record(bought("m1", "T3", cents=2000), 3)], table.get, lambda _p: [])
    state = ledger_of(result.states["m1"])
    assert state.balance("CA_MAIN", PointsCategory.REGULAR) == 80
    assert state.sequence == 4


async def test_a_batch_that_fails_leaves_no_changed_state_behind_in_the_cache():
    recorder = Recorder()
    batch = batch_over(recorder)
    table: dict[str, bytes] = {}
    for records in ([record(enrolled("m1"), 0)], [record(bought("m1", "T1", cents=1000), 1)]):
        table.update((await batch.run(records, table.get, lambda _p: [])).states)

    async def broken(topic: str, value: bytes, key: bytes | None = None) -> asyncio.Future:
        raise ConnectionError("broker gone")

    batch.send = lambda t, v, k: broken(t, v, k)
    try:
        await batch.run([record(bought("m1", "T2", cents=2000), 2)], table.get, lambda _p: [])
    except ConnectionError:
        pass
    else:
        raise AssertionError("the send failure must reach the caller")
    batch.send = lambda t, v, k: recorder.send(t, v, k)
    recorder.sent.clear()
    # Redelivered: the outputs the failed batch could not send, against the state last saved.
    result = await batch.run([record(bought("m1", "T2", cents=2000), 2)], table.get, lambda _p: [])
    sent = [CODEC.decode(value) for _, value, _ in recorder.sent]
    assert [(e.transaction_id, e.sequence) for e in sent] == [("T2", 3)]
    state = ledger_of(result.states["m1"])
    assert state.balance("CA_MAIN", PointsCategory.REGULAR) == 30
    assert state.sequence == 3


def test_the_cache_keeps_the_most_recently_used_members():
    cache = ledger_batch.StateCache(max_members=2)
    states = {m: rules.MemberState(m) for m in ("a", "b", "c")}
    for m in ("a", "b"):
        cache.put(m, m.encode(), states[m])
    assert cache.take("a", b"a") is states["a"]  # taken out while in use
    cache.put("a", b"a", states["a"])
    cache.put("c", b"c", states["c"])  # "b" is now the least recently used
    assert cache.take("b", b"b") is None
    assert cache.take("c", b"other bytes") is None
    assert cache.take("a", b"a") is states["a"]


async def test_a_rule_that_fails_after_an_earlier_input_of_the_batch_keeps_that_input(monkeypatch):
    first, _ = await run([record(enrolled("m1"), 0)], {})
    real_handle = rules.handle

    def failing(state, message, config):
        if getattr(message, "transaction_id", None) == "BAD":
            state.ledger.sequence = 999
            raise RuntimeError("bug in the rules")
        return real_handle(state, message, config)

    monkeypatch.setattr(rules, "handle", failing)
    records = [
        record(bought("m1", "T1", cents=1000), 4),
        record(bought("m1", "BAD", cents=1000), 5),
        record(bought("m1", "T2", cents=2000), 6),
    ]
    result, recorder = await run(records, dict(first.states))
    ledger = [
        e for _, v, _ in recorder.sent if isinstance(e := CODEC.decode(v), LedgerEventRecorded)
    ]
    assert [(e.transaction_id, e.sequence) for e in ledger] == [("T1", 2), ("T2", 3)]
    state = ledger_of(result.states["m1"])
    assert (state.sequence, state.balance("CA_MAIN", PointsCategory.REGULAR)) == (3, 30)
