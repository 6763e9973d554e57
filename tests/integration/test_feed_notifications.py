"""The anonymous feed kept in each API process learns of a change of its market's offers when
the projector commits it (migration 0020, `Wakeups.follow`), not when a timer says so."""

from __future__ import annotations

import asyncio
import contextlib

import psycopg
import pytest

from projections.api.offer_feed import MarketFeeds
from projections.api.wakeups import Wakeups

pytestmark = pytest.mark.integration

MINUTE = 60.0

_ROW = """
INSERT INTO offer_feed_items (offer_id, program_id, market, rank, display_at, starts_at,
    ends_at, audience, control_share_percent, activation, in_reward_store, copy, details,
    digest, published_event_id)
VALUES (%s, 'MAIN', %s, 1, now(), now(), 'infinity', 'MASS', 0, 'AUTOMATIC', false, '{}',
    '{}', %s, 'published')
ON CONFLICT (offer_id) DO UPDATE SET market = excluded.market, digest = excluded.digest
"""


def _write(dsn: str, offer_id: str, market: str, digest: str) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute(_ROW, (offer_id, market, digest))


async def test_a_markets_offers_written_notify_the_market_they_were_and_are_in(database_url):
    wakeups = Wakeups(database_url, poll=MINUTE, recheck=MINUTE)
    notified: asyncio.Queue[str | None] = asyncio.Queue()
    wakeups.follow(MarketFeeds.NOTIFIED, notified.put_nowait)
    wakeups.follow("member:", lambda key: None)  # another prefix: never told of feed keys
    listener = asyncio.create_task(wakeups.run())
    try:
        assert await asyncio.wait_for(notified.get(), timeout=20.0) is None  # connected

        await asyncio.to_thread(_write, database_url, "NOTIFIED_1", "FR", "d1")
        assert await asyncio.wait_for(notified.get(), timeout=20.0) == "feed:FR"

        await asyncio.to_thread(_write, database_url, "NOTIFIED_1", "BE", "d2")  # moved
        told = {await asyncio.wait_for(notified.get(), timeout=20.0) for _ in range(2)}
        assert told == {"feed:FR", "feed:BE"}
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
    assert notified.get_nowait() is None  # the listener stopped: anything may change unseen
