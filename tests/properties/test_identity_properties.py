"""One id means one event (issue #11, ADR 19), through the member agent's batches: for every
input type the engine deduplicates, redelivering its id with a changed body changes nothing
(no output, the stored state byte for byte) and yields exactly one CONFLICT dead letter with
both digests; the same body again (under a new event_id, and for a request at a new moment)
is a repeat: nothing new, a request's outcome again."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.agents.members import Members
from processors.contract.activities import ActivityKind
from processors.contract.base import Event
from processors.contract.common import Source
from processors.contract.deadletter import DeadLettered, DeadLetterReason
from processors.contract.outcomes import RequestAccepted, RequestRejected
from processors.contract.redemptions import (
    OfferLoadRequested,
    PointsAdjustmentKind,
    PointsAdjustmentRequested,
    RewardRedemptionRequested,
)
from processors.rules.member import Config
from tests.agents.harness import Harness, record
from tests.rules.given import (
    PROGRAM,
    T0,
    activity,
    bought,
    enrolled,
    programs,
    redeem,
    returned,
    transfer,
)

Change = Callable[[Any, int], Event]
"""A changed body under the same id: the original and a drawn number (never 0) → the event."""


def adjustment(points: int = 40) -> PointsAdjustmentRequested:
    return PointsAdjustmentRequested(
        event_id="adj-a1", occurred_at=T0, command_id="a1", member_id="m1", program_id=PROGRAM,
        kind=PointsAdjustmentKind.BULK_AWARD, points=points, source=Source.BACK_OFFICE,
    )  # fmt: skip


def reward(reward_id: str = "R1") -> RewardRedemptionRequested:
    return RewardRedemptionRequested(
        event_id="rew-c9", occurred_at=T0, command_id="c9", member_id="m1", reward_id=reward_id,
        program_id=PROGRAM, source=Source.APP,
    )  # fmt: skip


def load(offer_id: str = "OFF_1") -> OfferLoadRequested:
    return OfferLoadRequested(
        event_id="load-l1", occurred_at=T0, command_id="l1", member_id="m1", offer_id=offer_id,
        source=Source.APP,
    )  # fmt: skip


def _with(event: Event, **changes: Any) -> Event:
    return type(event).model_validate({**event.model_dump(), **changes})


# Each input type: its original (sent after m1 and m2 enrolled and m1 bought T1 for $50), and
# changes to its body that keep its id.
CASES: dict[str, tuple[Event, list[Change]]] = {
    "enrolment": (
        enrolled("m1"),
        [
            lambda e, n: _with(e, program_ids=[PROGRAM, f"OTHER{n}"]),
            lambda e, n: _with(e, occurred_at=e.occurred_at + timedelta(milliseconds=n)),
        ],
    ),
    "purchase": (
        bought("m1", "T2", cents=2000),
        [
            lambda e, n: bought("m1", "T2", cents=2000 + n),
            lambda e, n: _with(e, till_id=f"TILL{n}"),
            lambda e, n: _with(e, occurred_at=e.occurred_at + timedelta(milliseconds=n)),
        ],
    ),
    "return": (
        returned("m1", "T1", "R1", ("1", 1000)),
        [lambda e, n: returned("m1", "T1", "R1", ("1", 1000 + n))],
    ),
    "activity": (
        activity("m1", ActivityKind.LOGIN),
        [
            lambda e, n: _with(e, occurred_at=e.occurred_at + timedelta(milliseconds=n)),
            lambda e, n: _with(e, source=Source.WEBSITE),
        ],
    ),
    "redemption": (redeem("m1", 10, "c1"), [lambda e, n: redeem("m1", 10 + n, "c1")]),
    "transfer": (transfer("m1", "m2", 10, "t1"), [lambda e, n: transfer("m1", "m2", 10 + n, "t1")]),
    "adjustment": (adjustment(), [lambda e, n: adjustment(40 + n)]),
    "unsupported request": (reward(), [lambda e, n: reward(f"R{n + 1}")]),
    "offer load": (load(), [lambda e, n: load(f"OFF_{n + 1}")]),
}
REQUESTS = {"redemption", "transfer", "adjustment", "unsupported request", "offer load"}


async def _member_with_history() -> tuple[Harness, int]:
    h = Harness(Members(Config(dict(programs()))))
    setup = [enrolled("m1"), enrolled("m2"), bought("m1", "T1", cents=5000)]
    await h.run(*(record(event, offset) for offset, event in enumerate(setup)))
    h.outputs()
    return h, len(setup)


def _stored(h: Harness) -> dict[str, bytes | None]:
    return {member: h.table.get(member) for member in ("m1", "m2")}


@settings(max_examples=60, deadline=None)
@given(
    case=st.sampled_from(sorted(CASES)),
    pick=st.integers(min_value=0, max_value=2),
    n=st.integers(min_value=1, max_value=10_000),
    same_batch=st.booleans(),
)
def test_a_changed_body_under_a_known_id_changes_nothing_and_is_one_conflict(
    case: str, pick: int, n: int, same_batch: bool
) -> None:
    original, changes = CASES[case]
    changed = changes[pick % len(changes)](original, n)
    assert changed != original

    async def scenario() -> None:
        h, offset = await _member_with_history()
        if same_batch:
            await h.run(record(original, offset), record(changed, offset + 1))
            outputs = h.outputs()
            reference, _ = await _member_with_history()
            await reference.run(record(original, offset))
            expected, state = [*reference.outputs()], _stored(reference)
        else:
            await h.run(record(original, offset))
            expected, state = h.outputs(), _stored(h)
            report = await h.run(record(changed, offset + 1))
            assert report.dead_lettered == 1
            outputs = h.outputs()
        dead = [e for e in outputs if isinstance(e, DeadLettered)]
        assert [e for e in outputs if not isinstance(e, DeadLettered)] == (
            expected if same_batch else []
        )
        assert len(dead) == 1
        assert dead[0].reason is DeadLetterReason.CONFLICT
        assert (dead[0].original_offset, dead[0].event_type) == (
            offset + 1,
            type(changed).__name__,
        )
        assert "first digest" in dead[0].error
        assert "this one" in dead[0].error
        assert _stored(h) == state

    asyncio.run(scenario())


@settings(max_examples=30, deadline=None)
@given(case=st.sampled_from(sorted(CASES)), later=st.integers(min_value=1, max_value=10**9))
def test_the_same_body_under_a_new_event_id_is_a_repeat(case: str, later: int) -> None:
    original, _ = CASES[case]
    again: dict[str, Any] = {"event_id": f"{original.event_id}-resent"}
    if case in REQUESTS:  # a client's retry: the API stamps the moment it is made
        again["occurred_at"] = original.occurred_at + timedelta(milliseconds=later)
    if case in ("enrolment", "activity"):  # identified by their event_id: resent as they were
        again = {}
    resent = _with(original, **again)

    async def scenario() -> None:
        h, offset = await _member_with_history()
        await h.run(record(original, offset))
        first, state = h.outputs(), _stored(h)
        report = await h.run(record(resent, offset + 1))
        outputs = h.outputs()
        assert report.dead_lettered == 0
        outcomes = [e for e in first if isinstance(e, RequestAccepted | RequestRejected)]
        # An enrolment is answered (ADR 28), and a return (ADR 43).
        answered = case in REQUESTS or case in ("enrolment", "return")
        assert outputs == (outcomes if answered else [])
        assert _stored(h) == state

    asyncio.run(scenario())
