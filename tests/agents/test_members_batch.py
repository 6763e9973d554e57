"""The batch protocol around the member rules: order of effects, what is saved, and what a
failing rule or a failing send leaves behind."""

from __future__ import annotations

import asyncio
import time

import pytest

from processors.agents.members import Members
from processors.contract.common import PointsCategory
from processors.contract.deadletter import DeadLettered, DeadLetterReason
from processors.contract.ledger import LedgerEventRecorded
from processors.rules import member as rules
from processors.rules.ledger.state import MemberLedger
from processors.rules.member import Config
from processors.runtime.batch import StateCache
from tests.agents.harness import CHANGELOG, Harness, record
from tests.rules.given import bought, enrolled, programs


def harness() -> Harness:
    return Harness(Members(Config(dict(programs()))))


def ledger(h: Harness, member: str = "m1") -> MemberLedger:
    raw = h.table.get(member)
    assert raw is not None
    state = rules.load_state(member, raw).ledger
    assert state is not None
    return state


async def test_outputs_are_sent_before_the_changed_states_are_saved():
    h = harness()
    await h.run(record(enrolled("m1"), 0), record(bought("m1", "T1", cents=1000), 1))
    topics = [topic for topic, *_ in h.sent()]
    # The enrolment is answered too (ADR 28).
    assert topics == ["loyalty.ledger.v1", "loyalty.outcomes.v1", "loyalty.ledger.v1", CHANGELOG]
    assert ledger(h).balance("CA_MAIN", PointsCategory.REGULAR) == 10


async def test_an_input_already_applied_sends_and_saves_nothing():
    h = harness()
    await h.run(record(enrolled("m1"), 0), record(bought("m1", "T1", cents=1000), 1))
    h.sent()
    report = await h.run(record(bought("m1", "T1", cents=1000), 1))
    assert (report.saved, h.sent()) == (0, [])


async def test_a_rule_that_fails_dead_letters_its_input_and_the_batch_goes_on(monkeypatch):
    h = harness()
    await h.run(record(enrolled("m1"), 0))
    real = rules.handle

    def failing(state, message, config):  # type: ignore[no-untyped-def]
        if getattr(message, "transaction_id", None) == "BAD":
            state.ledger.sequence = 999  # a half-done change that must not be saved
            raise RuntimeError("bug in the rules")
        return real(state, message, config)

    monkeypatch.setattr(rules, "handle", failing)
    h.outputs()
    await h.run(
        record(bought("m1", "T1", cents=1000), 4),
        record(bought("m1", "BAD", cents=1000), 5),
        record(bought("m1", "T2", cents=2000), 6),
    )
    sent = h.outputs()
    dead = [e for e in sent if isinstance(e, DeadLettered)]
    assert [(d.reason, d.original_offset, d.event_type) for d in dead] == [
        (DeadLetterReason.PROCESSING_FAILED, 5, "TransactionCompleted")
    ]
    assert "RuntimeError: bug in the rules" in dead[0].error
    booked = [(e.transaction_id, e.sequence) for e in sent if isinstance(e, LedgerEventRecorded)]
    # T1 decided before the failure is kept (the state is rebuilt by deciding it again).
    assert booked == [("T1", 2), ("T2", 3)]
    assert (ledger(h).sequence, ledger(h).balance("CA_MAIN", PointsCategory.REGULAR)) == (3, 30)


async def test_a_state_is_parsed_once_while_the_table_keeps_the_bytes_it_was_saved_as(monkeypatch):
    h = harness()
    parsed = []
    real = rules.load_state
    monkeypatch.setattr(rules, "load_state", lambda m, raw: parsed.append(m) or real(m, raw))
    await h.run(record(enrolled("m1"), 0))
    for n in range(1, 4):
        await h.run(record(bought("m1", f"T{n}", cents=1000), n))
    assert parsed == []
    assert ledger(h).balance("CA_MAIN", PointsCategory.REGULAR) == 30


async def test_a_cached_state_is_not_used_once_the_table_holds_other_bytes():
    # Another worker moved the member on meanwhile; the table caught up from the changelog.
    h, elsewhere = harness(), harness()
    await h.run(record(enrolled("m1"), 0), record(bought("m1", "T1", cents=1000), 1))
    await elsewhere.run(record(enrolled("m1"), 0), record(bought("m1", "T1", cents=1000), 1),
                        record(bought("m1", "T2", cents=5000), 2))  # fmt: skip
    raw = elsewhere.table.get("m1")
    assert raw is not None
    h.table.load(0, [(b"m1", raw)])  # what recovering from the changelog does
    await h.run(record(bought("m1", "T3", cents=2000), 3))
    assert (ledger(h).balance("CA_MAIN", PointsCategory.REGULAR), ledger(h).sequence) == (80, 4)


async def test_a_batch_whose_send_fails_leaves_no_changed_state_behind():
    h = harness()
    await h.run(record(enrolled("m1"), 0), record(bought("m1", "T1", cents=1000), 1))
    real = h.producer.send

    async def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ConnectionError("broker gone")

    h.producer.send = broken  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        await h.run(record(bought("m1", "T2", cents=2000), 2))
    h.producer.send = real  # type: ignore[method-assign]
    h.outputs()
    # Redelivered: the outputs the failed batch could not send, against the state last saved.
    await h.run(record(bought("m1", "T2", cents=2000), 2))
    assert [(e.transaction_id, e.sequence) for e in h.outputs()] == [("T2", 3)]
    assert (ledger(h).balance("CA_MAIN", PointsCategory.REGULAR), ledger(h).sequence) == (30, 3)


def test_the_cache_keeps_the_most_recently_used_keys():
    cache = StateCache(max_entries=2)
    states = {m: rules.MemberState(m) for m in ("a", "b", "c")}
    for m in ("a", "b"):
        cache.put(m, m.encode(), states[m])
    assert cache.take("a", b"a") is states["a"]  # taken out while in use
    cache.put("a", b"a", states["a"])
    cache.put("c", b"c", states["c"])  # "b" is now the least recently used
    assert cache.take("b", b"b") is None
    assert cache.take("c", b"other bytes") is None
    assert cache.take("a", b"a") is states["a"]


async def test_an_output_that_does_not_encode_dead_letters_its_input_not_the_batch(monkeypatch):
    h = harness()
    await h.run(record(enrolled("m1"), 0))
    inputs = (record(bought("m1", "BAD", cents=1000), 5), record(bought("m1", "T2", cents=2000), 6))
    real = h.batches.codec.encode

    def encode(event):  # type: ignore[no-untyped-def]
        if isinstance(event, LedgerEventRecorded) and event.transaction_id == "BAD":
            raise ValueError("out of the schema's range")
        return real(event)

    monkeypatch.setattr(h.batches.codec, "encode", encode)
    h.outputs()
    await h.run(*inputs)
    sent = h.outputs()
    dead = [e for e in sent if isinstance(e, DeadLettered)]
    assert [(d.original_offset, d.reason) for d in dead] == [
        (5, DeadLetterReason.PROCESSING_FAILED)
    ]
    booked = [(e.transaction_id, e.sequence) for e in sent if isinstance(e, LedgerEventRecorded)]
    assert booked == [("T2", 2)]  # as if BAD never came: its state change is undone too


def _ledger_and_saves(h: Harness) -> list[tuple[str, str | None]]:
    """(topic, key) of what was sent since the last look, answers left out."""
    return [(topic, key.decode() if key else None) for topic, _, key, _ in h.sent()
            if topic != "loyalty.outcomes.v1"]  # fmt: skip


async def test_a_batch_touching_more_states_than_it_may_hold_saves_each_after_its_outputs():
    h = harness()
    h.batches.keys_max = 2  # as a day's tick over a partition of a million members
    inputs = [record(enrolled(m), n) for n, m in enumerate(("m1", "m2", "m3"))]
    await h.run(*inputs, record(bought("m1", "T1", cents=1000), 3))
    ledger_topic = "loyalty.ledger.v1"
    assert _ledger_and_saves(h) == [
        (ledger_topic, "m1"), (ledger_topic, "m2"), (CHANGELOG, "m1"), (CHANGELOG, "m2"),
        (ledger_topic, "m3"), (ledger_topic, "m1"), (CHANGELOG, "m3"), (CHANGELOG, "m1"),
    ]  # fmt: skip
    assert (ledger(h).balance("CA_MAIN", PointsCategory.REGULAR), ledger(h).sequence) == (10, 2)


async def test_a_batch_that_decides_for_long_saves_what_it_decided_before_going_on():
    h = harness()
    h.batches.decide_seconds = 0.0  # every input after the first comes after a save
    inputs = [record(enrolled(m), n) for n, m in enumerate(("m1", "m2"))]
    await h.run(*inputs, record(bought("m1", "T1", cents=1000), 2))
    ledger_topic = "loyalty.ledger.v1"
    assert _ledger_and_saves(h) == [
        (ledger_topic, "m1"), (CHANGELOG, "m1"), (ledger_topic, "m2"), (CHANGELOG, "m2"),
        (ledger_topic, "m1"), (CHANGELOG, "m1"),
    ]  # fmt: skip
    assert (ledger(h).balance("CA_MAIN", PointsCategory.REGULAR), ledger(h).sequence) == (10, 2)


async def test_a_long_batch_lets_the_event_loop_run_its_other_tasks(monkeypatch):
    """A consumer group's heartbeats run on the worker's event loop: a batch that decided for
    longer than the group's session without awaiting had every group rebalance mid-batch."""
    h = harness()
    h.batches.decide_seconds = 0.05
    real = rules.handle

    beats = 0
    seen: list[int] = []  # the heartbeats counted when each input was decided

    def slow(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(beats)
        time.sleep(0.01)  # a purchase of a member with a long history, on a slow host
        return real(*args, **kwargs)

    monkeypatch.setattr(rules, "handle", slow)

    async def heartbeat() -> None:
        nonlocal beats
        while True:
            await asyncio.sleep(0)
            beats += 1

    beating = asyncio.create_task(heartbeat())
    members = [f"m{n}" for n in range(30)]
    await h.run(*(record(enrolled(m), n) for n, m in enumerate(members)))  # ~0.3 s of deciding
    beating.cancel()

    assert seen[-1] - seen[0] >= 3  # other tasks ran while the batch was deciding
    assert [ledger(h, m).sequence for m in members] == [1] * 30


async def test_a_batch_failing_after_saving_part_of_its_states_runs_again_without_doubling():
    h = harness()
    h.batches.keys_max = 1
    inputs = [record(enrolled("m1"), 0), record(bought("m1", "T1", cents=1000), 1),
              record(enrolled("m2"), 2), record(bought("m2", "T2", cents=2000), 3)]  # fmt: skip
    real, calls = h.producer.send, 0

    async def failing_later(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls > 4:  # m1's three outputs and its state went through; m2's outputs do not
            raise ConnectionError("broker gone")
        return await real(*args, **kwargs)

    h.producer.send = failing_later  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        await h.run(*inputs)
    h.producer.send = real  # type: ignore[method-assign]
    h.outputs()
    await h.run(*inputs)  # the runner runs the whole batch again
    # m1's inputs are held already: its enrolment is answered again (a repeat), nothing booked.
    assert [e.member_id for e in h.outputs()] == ["m1"] + ["m2"] * 3
    assert ledger(h, "m1").balance("CA_MAIN", PointsCategory.REGULAR) == 10
    assert ledger(h, "m2").balance("CA_MAIN", PointsCategory.REGULAR) == 20
