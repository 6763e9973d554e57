"""A request waiting for a decision wakes when the projector commits it (migration 0018,
`projections/api/wakeups.py`), not when a timer says so: the waiters here would look again
only after a minute, and the decision must reach them well inside their wait."""

from __future__ import annotations

import asyncio
import contextlib

import psycopg
import pytest

from projections.api.wakeups import Wakeups, code_key, member_key

pytestmark = pytest.mark.integration

MINUTE = 60.0


def _outcome(dsn: str, member: str, command: str) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "INSERT INTO request_outcomes (member_id, command_id, request_type, outcome_event_id,"
            " request_event_id, accepted, points_debited, granted_reward_ids, decided_at)"
            " VALUES (%s, %s, 'REWARD_REDEMPTION', %s, %s, true, 0, '{}', now())",
            (member, command, f"out-{command}", f"req-{command}"),
        )


def _decided(dsn: str, member: str, command: str) -> bool | None:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT accepted FROM request_outcomes WHERE member_id = %s AND command_id = %s",
            (member, command),
        ).fetchone()
    return None if row is None else bool(row[0])


async def _listening(wakeups: Wakeups) -> None:
    for _ in range(500):
        if wakeups.listening:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the listener never connected")


async def test_a_waiter_wakes_on_its_members_commit_not_on_a_timer(database_url):
    wakeups = Wakeups(database_url, poll=MINUTE, recheck=MINUTE)
    listener = asyncio.create_task(wakeups.run())
    try:
        await _listening(wakeups)

        async def look() -> bool | None:
            return await asyncio.to_thread(_decided, database_url, "m-wake", "c-1")

        waiting = asyncio.create_task(wakeups.until(member_key("m-wake"), look, wait=30.0))
        await asyncio.sleep(0.2)  # it has looked once and found nothing
        assert not waiting.done()
        await asyncio.to_thread(_outcome, database_url, "m-other", "c-9")  # not its key
        await asyncio.sleep(0.2)
        assert not waiting.done()
        await asyncio.to_thread(_outcome, database_url, "m-wake", "c-1")
        assert await asyncio.wait_for(waiting, timeout=20.0) is True
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener


async def test_without_a_listener_waiters_look_on_their_own_and_give_up_in_time(database_url):
    wakeups = Wakeups(None, poll=0.01)
    looks = 0

    async def never() -> None:
        nonlocal looks
        looks += 1
        return None

    assert await wakeups.until(code_key("X"), never, wait=0.1) is None
    assert looks > 1
