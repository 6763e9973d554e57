"""How a waiting request races its two paths (`projections/api/answers.py`, `wakeups.py`):
an answer heard from Kafka is judged without reading Postgres; what nobody registered for is
not kept; the map of waiters is bounded; without an answer from Kafka, Postgres answers."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from processors.contract.base import Event
from processors.contract.outcomes import RejectionReason, RequestAccepted, RequestRejected
from processors.contract.redemptions import RequestType
from processors.contract.rewards import RewardGranted, RewardGrantReason
from projections.api.answers import Answers, grants_key, keys_of, outcome_key
from projections.api.routes_redemptions import expected_answers, heard_decision
from projections.api.wakeups import Wakeups, member_key

T0 = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
MINUTE = 60.0


def accepted(member: str, command: str, grants: Sequence[str] = ()) -> RequestAccepted:
    return RequestAccepted(
        event_id=f"out-{command}", occurred_at=T0, member_id=member, command_id=command,
        request_type=RequestType.REWARD_REDEMPTION, request_event_id=f"req-{command}",
        points_debited=100, granted_reward_ids=list(grants),
    )  # fmt: skip


def granted(member: str, command: str, grant: str) -> RewardGranted:
    return RewardGranted(
        event_id=f"ev-{grant}", occurred_at=T0, member_id=member, granted_reward_id=grant,
        reward_id="R1", reason=RewardGrantReason.REDEMPTION, program_id="P1", points_spent=100,
        redemption_token=grant, cause_event_id=f"req-{command}", command_id=command,
    )  # fmt: skip


class NothingProjected:
    """A waiter's look in Postgres that finds nothing, counting how often it was asked."""

    def __init__(self) -> None:
        self.looks = 0

    async def __call__(self) -> str | None:
        self.looks += 1
        return None


def reader() -> Answers:
    return Answers("127.0.0.1:1", {"t": 1})


def test_an_outcome_and_a_redemptions_grants_are_known_by_member_kind_and_command():
    assert keys_of(accepted("m1", "c1")) == (
        outcome_key("m1", RequestType.REWARD_REDEMPTION, "c1"),
    )
    assert keys_of(granted("m1", "c1", "g1")) == (grants_key("m1", "c1"),)
    assert set(expected_answers("m1", "c1")) == {
        outcome_key("m1", RequestType.REWARD_REDEMPTION, "c1"), grants_key("m1", "c1"),
    }  # fmt: skip


def test_a_redemption_is_decided_once_its_outcome_and_every_grant_are_heard_in_any_order():
    grant = granted("m1", "c1", "g1")
    assert heard_decision([grant]) is None
    assert heard_decision([accepted("m1", "c1", ["g1", "g2"]), grant]) is None
    decided = heard_decision([grant, accepted("m1", "c1", ["g1"])])
    assert decided is not None
    assert decided.outcome.accepted
    assert [g.granted_reward_id for g in decided.grants or ()] == ["g1"]
    rejected = RequestRejected(
        event_id="out-c2", occurred_at=T0, member_id="m1", command_id="c2",
        request_type=RequestType.REWARD_REDEMPTION, request_event_id="req-c2",
        reason=RejectionReason.insufficient_points, detail="balance 0 < 100",
    )  # fmt: skip
    refused = heard_decision([rejected])
    assert refused is not None
    assert (refused.outcome.accepted, refused.outcome.reason) == (False, "insufficient_points")


async def test_an_answer_heard_from_kafka_answers_without_reading_postgres_again():
    answers = reader()
    wakeups = Wakeups(None, poll=MINUTE, recheck=MINUTE, answers=answers)
    look = NothingProjected()

    def judge(events: Sequence[Event]) -> str | None:
        return "heard" if any(isinstance(e, RequestAccepted) for e in events) else None

    with wakeups.expecting(outcome_key("m1", RequestType.REWARD_REDEMPTION, "c1")) as heard:
        waiting = asyncio.create_task(
            wakeups.until(member_key("m1"), look, wait=MINUTE, heard=heard, judge=judge)
        )
        await asyncio.sleep(0)  # it looked once, found nothing, waits
        answers.deliver(accepted("m2", "c1"))  # another member's answer
        answers.deliver(accepted("m1", "c1"))
        assert await asyncio.wait_for(waiting, timeout=MINUTE) == "heard"
    assert look.looks == 1
    assert answers.waiting() == 0  # unregistered when the block ended


async def test_without_an_answer_from_kafka_the_projection_answers():
    answers = reader()
    # No listener here: the waiter looks in Postgres every `poll` (with one: on each NOTIFY).
    wakeups = Wakeups(None, poll=0.01, answers=answers)
    projected: list[str] = []

    async def look() -> str | None:
        return projected[0] if projected else None

    with wakeups.expecting(outcome_key("m1", RequestType.REWARD_REDEMPTION, "c1")) as heard:
        waiting = asyncio.create_task(
            wakeups.until(member_key("m1"), look, wait=MINUTE, heard=heard, judge=lambda _: None)
        )
        await asyncio.sleep(0)
        projected.append("from postgres")
        assert await asyncio.wait_for(waiting, timeout=MINUTE) == "from postgres"


def test_what_nobody_waits_for_is_not_kept_and_the_waiters_are_bounded():
    answers = Answers("127.0.0.1:1", {"t": 1}, waiters_max=1)
    answers.read(b"\xc3\x01" + b"\x00" * 8 + b"not an answer")  # skipped, nobody waits
    with answers.expect(outcome_key("m1", RequestType.ENROLMENT, "c1")) as first:
        with answers.expect(outcome_key("m2", RequestType.ENROLMENT, "c2")) as second:
            assert answers.waiting() == 1  # the second found no room: Postgres answers it
            answers.read(b"\xc3\x01" + b"\x00" * 8 + b"unknown schema")  # skipped, undecoded
            answers.deliver(accepted("m2", "c2"))
            assert second.events == []
        assert first.events == []
    assert answers.waiting() == 0


async def test_a_reader_that_fails_for_any_reason_starts_again(monkeypatch):
    """Not only a Kafka or socket error: a reader that died on anything else would leave every
    waiting request to the projector's commit, unnoticed."""
    from projections.api import answers

    starts: list[int] = []

    class Breaking:
        def __init__(self, **_: object) -> None:
            pass

        async def start(self) -> None:
            starts.append(len(starts))
            raise ValueError("a bug in the reader")

        async def stop(self) -> None:
            pass

    monkeypatch.setattr(answers, "AIOKafkaConsumer", Breaking)
    monkeypatch.setattr(answers.asyncio, "sleep", _no_wait)
    reader = Answers("127.0.0.1:1", {"loyalty.outcomes.v1": 1})
    task = asyncio.create_task(reader.run())
    while len(starts) < 3 and not task.done():
        await asyncio.sleep(0)
    died = task.done()
    task.cancel()
    assert not died, "the reader stopped for good"
    assert len(starts) >= 3


_REAL_SLEEP = asyncio.sleep


async def _no_wait(_: float) -> None:
    await _REAL_SLEEP(0)


async def _settle() -> None:
    """Let the waiting task run until it waits again (`wait_for` takes a few loop turns)."""
    for _ in range(20):
        await asyncio.sleep(0)


async def _notified_looks(*, reading: bool, room: int, new: bool = True) -> int:
    """How often a waiter heard from Kafka reads Postgres when its key is notified 3 times
    (no recheck within the test), the reader reading or not, its map with `room`."""
    answers = Answers("127.0.0.1:1", {"t": 1}, waiters_max=room)
    if reading:
        answers.reading.set()
    wakeups = Wakeups(None, poll=MINUTE, recheck=MINUTE, answers=answers)
    wakeups.listening = True  # as if a listener ran: waiters wait for notifications
    look = NothingProjected()

    def judge(events: Sequence[Event]) -> str | None:
        return "heard" if events else None

    with (
        answers.expect(outcome_key("m0", RequestType.ENROLMENT, "c0")),  # fills a room of 1
        wakeups.expecting(outcome_key("m1", RequestType.REWARD_REDEMPTION, "c1")) as heard,
    ):
        waiting = asyncio.create_task(
            wakeups.until(
                member_key("m1"), look, wait=MINUTE, heard=heard, judge=judge,
                look_first=not new,
            )
        )  # fmt: skip
        for _ in range(3):
            await _settle()
            wakeups._wake(member_key("m1"))  # the projector committed a row of the key
        await _settle()
        answers.deliver(accepted("m1", "c1"))
        heard.hear(accepted("m1", "c1"))  # unregistered (no room): as the projection would
        assert await asyncio.wait_for(waiting, timeout=MINUTE) == "heard"
    return look.looks


async def test_a_waiter_the_reader_hears_does_not_read_postgres_when_its_key_is_notified():
    assert await _notified_looks(reading=True, room=10) == 0


async def test_without_a_reading_reader_or_room_in_its_map_a_notified_waiter_reads_postgres():
    assert await _notified_looks(reading=False, room=10) == 3
    assert await _notified_looks(reading=True, room=1) == 3


async def test_a_request_that_may_be_a_repeat_reads_postgres_when_notified_reader_or_not():
    # Its answer may have passed on Kafka before it registered: only Postgres has it then.
    assert await _notified_looks(reading=True, room=10, new=False) == 1 + 3
