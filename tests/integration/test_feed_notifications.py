"""The feeds kept in each API process learn of a change when the projector commits it, not when
a timer says so: the anonymous feed of its market's offers (migration 0020, `Wakeups.follow`),
a member's feed of a change of the member's rows or of any offer (migration 0031, ADR 25's
third addendum), each table written here as the projection's writers write it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from psycopg import sql
from psycopg.types.json import Jsonb

from projections.api.app import create_app
from projections.api.auth import Role, issue_token
from projections.api.offer_feed import MarketFeeds, MemberFeeds
from projections.api.wakeups import Wakeups
from projections.writers.feed import FeedItem
from tests.feed_given import AT, PROGRAM, item
from tests.integration.test_worker_runtime import until

pytestmark = pytest.mark.integration

MINUTE = 60.0
DAY = timedelta(days=1)
ACCUMULATE = [{"kind": "SPEND", "spend_min_cents": 5000, "accumulation": "ACCUMULATED"}]
LISTED = {"kind": "AUDIENCE_LIST", "timing": "STATIC", "audience_id": "VIP"}
STORE = {"reward_store_id": "STORE", "points_cost": 500}

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


# --- members' feeds kept in the API (ADR 25, third addendum; migration 0031) ---------------

SECRET = "integration-secret-for-the-member-feed-cache"
MEMBER = "CACHED_1"
_ITEM_COLUMNS = [name for name in FeedItem.__dataclass_fields__ if name != "visible_until"]


def _write_item(conn: psycopg.Connection, written: FeedItem) -> None:
    values = {**asdict(written), "copy": Jsonb(written.copy), "details": Jsonb(written.details)}
    conn.execute(
        sql.SQL("INSERT INTO offer_feed_items ({}) VALUES ({}) ON CONFLICT (offer_id) DO UPDATE"
                " SET ({}) = ROW({})").format(
            sql.SQL(", ").join(map(sql.Identifier, _ITEM_COLUMNS)),
            sql.SQL(", ").join(map(sql.Placeholder, _ITEM_COLUMNS)),
            sql.SQL(", ").join(map(sql.Identifier, _ITEM_COLUMNS)),
            sql.SQL(", ").join(sql.SQL("excluded.{}").format(sql.Identifier(c))
                               for c in _ITEM_COLUMNS),
        ),
        values,
    )  # fmt: skip


def _given(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "INSERT INTO members (member_id, market, enrolled_at, status, updated_at,"
            " program_ids) VALUES (%s, 'CA', %s, 'ACTIVE', %s, %s)",
            (MEMBER, AT - DAY, AT - DAY, [PROGRAM]),
        )
        for written in (
            item("SPEND_50", behaviours=ACCUMULATE, rank=2,
                 activation={"kind": "LOAD_TO_CARD"}, usage={"uses_per_member_max": 2}),
            item("VIP", targeting=LISTED, rank=1),
            item("BOUGHT", reward_store=STORE, rank=3),
        ):  # fmt: skip
            _write_item(conn, written)


def _sql(dsn: str, statement: str, *params: object) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute(statement, params)  # type: ignore[arg-type]


def _unnotified(dsn: str, table: str, trigger: str, statement: str, *params: object) -> None:
    """`statement` with `table`'s notifying `trigger` off: a change nobody is told of."""
    with psycopg.connect(dsn) as conn:
        conn.execute(sql.SQL("ALTER TABLE {} DISABLE TRIGGER {}").format(
            sql.Identifier(table), sql.Identifier(trigger)))  # fmt: skip
        conn.execute(statement, params)  # type: ignore[arg-type]
        conn.execute(sql.SQL("ALTER TABLE {} ENABLE TRIGGER {}").format(
            sql.Identifier(table), sql.Identifier(trigger)))  # fmt: skip


@asynccontextmanager
async def _listening_api(dsn: str) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    """The app over `dsn`, its clock fixed at AT, once its listener listens."""
    app = create_app(dsn=dsn, api_secret=SECRET, clock=lambda: AT)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            assert await until(lambda: _true(app.state.wakeups.listening), 20)
            yield http, app


async def _true(value: bool) -> bool:
    return value


def _feed(http: httpx.AsyncClient, more: dict[str, str] | None = None) -> Awaitable[httpx.Response]:
    """The member's feed, with their token (and `more` headers)."""
    token = issue_token(SECRET, MEMBER, Role.MEMBER, now=datetime.now(UTC))
    headers = {"Authorization": f"Bearer {token}", **(more or {})}
    return http.get(f"/v1/members/{MEMBER}/offers", headers=headers)


async def test_a_members_feed_is_kept_until_a_change_of_what_it_shows_is_committed(
    own_database_url,
):
    dsn = own_database_url
    await asyncio.to_thread(_given, dsn)
    async with _listening_api(dsn) as (http, app):
        feeds: MemberFeeds = app.state.member_feeds

        async def shown() -> dict[str, dict[str, Any]]:
            return {o["offer_id"]: o for o in (await _feed(http)).json()["offers"]}

        first = await _feed(http)
        assert list(await shown()) == ["SPEND_50"]
        assert len(feeds) == 1

        # Loaded while the trigger is off: nobody is told, the answer is served from memory.
        await asyncio.to_thread(
            _unnotified, dsn, "member_offer_standings", "member_offer_standings_inserted",
            "INSERT INTO member_offer_standings (member_id, offer_id, loaded_at)"
            " VALUES (%s, 'SPEND_50', %s)", MEMBER, AT - DAY,
        )  # fmt: skip
        again = await _feed(http)
        revalidated = await _feed(http, {"If-None-Match": first.headers["ETag"]})
        assert (again.content, revalidated.status_code) == (first.content, 304)

        # Each change below is notified, and shows: the change, then what it must show.
        changes: list[tuple[str, tuple[Any, ...], Callable[[dict[str, dict[str, Any]]], bool]]] = [
            (  # progress (member_offer_standings, updated): 3200 of 5000, with the load
                "UPDATE member_offer_standings SET progress_use_number = 1, progress = %s"
                " WHERE member_id = %s AND offer_id = 'SPEND_50'",
                (Jsonb([{"behaviour_index": 0, "progress": "3200"}]), MEMBER),
                lambda o: o["SPEND_50"]["behaviours"][0]["progress"] == "3200"
                and o["SPEND_50"]["activation"]["state"] == "loaded",
            ),
            (  # a use counted under the caps
                "UPDATE member_offer_standings SET uses = 1, points_awarded = 500"
                " WHERE member_id = %s AND offer_id = 'SPEND_50'",
                (MEMBER,),
                lambda o: o["SPEND_50"]["usage"]["uses_left"] == 1,
            ),
            (  # targeted (member_offer_standings, inserted)
                "INSERT INTO member_offer_standings (member_id, offer_id, in_control_group,"
                " targeted_at, last_targeted_at, targeting_event_ids)"
                " VALUES (%s, 'VIP', false, %s, %s, '{t-1}')",
                (MEMBER, AT - DAY, AT - DAY),
                lambda o: list(o) == ["VIP", "SPEND_50"],
            ),
            (  # bought in a reward store (member_issued_offers, inserted)
                "INSERT INTO member_issued_offers (issued_offer_id, member_id, offer_id,"
                " reward_store_id, points_spent, issued_at, status, status_at, status_event_id)"
                " VALUES ('I-1', %s, 'BOUGHT', 'STORE', 500, %s, 'ISSUED', %s, 'e-1')",
                (MEMBER, AT - DAY, AT - DAY),
                lambda o: "BOUGHT" in o and o["BOUGHT"]["issued"][0]["state"] == "ready",
            ),
            (  # ... then locked to a basket (updated)
                "UPDATE member_issued_offers SET status = 'LOCKED', locked_until = %s"
                " WHERE issued_offer_id = 'I-1'",
                (AT + DAY,),
                lambda o: o["BOUGHT"]["issued"][0]["state"] == "locked",
            ),
            (  # an offer republished (offer_feed_items: feed:<market>), ranked last now
                "UPDATE offer_feed_items SET rank = 9, digest = 'republished'"
                " WHERE offer_id = 'SPEND_50'",
                (),
                lambda o: list(o) == ["VIP", "BOUGHT", "SPEND_50"],
            ),
            (  # the member's preferred language (members)
                "UPDATE members SET preferred_locale = 'fr' WHERE member_id = %s",
                (MEMBER,),
                lambda o: o["VIP"]["copy"]["locale"] == "fr",
            ),
        ]  # fmt: skip
        for statement, params, shows in changes:
            await asyncio.to_thread(_sql, dsn, statement, *params)

            async def changed(shows=shows) -> bool:  # type: ignore[no-untyped-def]
                return bool(shows(await shown()))

            assert await until(changed, 20), statement

        # merged into another member: the feed is the survivor's, and nothing is kept
        await asyncio.to_thread(_sql, dsn, "UPDATE members SET status = 'MERGED',"
                                " merged_into = 'OTHER' WHERE member_id = %s", MEMBER)  # fmt: skip

        async def merged() -> bool:
            return (await _feed(http)).status_code == 409

        assert await until(merged, 20)
        assert len(feeds) == 0


async def test_a_members_feed_is_forgotten_when_the_listener_is_lost(own_database_url):
    dsn = own_database_url
    await asyncio.to_thread(_given, dsn)
    async with _listening_api(dsn) as (http, app):
        first = await _feed(http)
        await asyncio.to_thread(
            _unnotified, dsn, "members", "members_updated",
            "UPDATE members SET preferred_locale = 'fr' WHERE member_id = %s", MEMBER,
        )  # fmt: skip
        assert (await _feed(http)).content == first.content  # nobody was told

        # The listener's connection ends; the app listens again on a new one.
        [lost] = await asyncio.to_thread(_listeners, dsn)
        await asyncio.to_thread(_sql, dsn, "SELECT pg_terminate_backend(%s)", lost)

        async def listening_again() -> bool:
            again = await asyncio.to_thread(_listeners, dsn)
            return bool(again) and lost not in again and app.state.wakeups.listening

        assert await until(listening_again, 20)
        # What was notified while nobody listened is unknown: the member's feed is read again.
        assert (await _feed(http)).json()["locale"] == "fr"


def _listeners(dsn: str) -> list[int]:
    """The backends of this database listening for decisions (the app's listener)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND query = 'LISTEN loyalty_decided'"
        ).fetchall()
    return [pid for (pid,) in rows]


def test_a_statement_notifies_each_member_whose_rows_it_changed_and_no_other(own_database_url):
    with (
        psycopg.connect(own_database_url, autocommit=True) as listening,
        psycopg.connect(own_database_url, autocommit=True) as conn,
    ):
        listening.execute("LISTEN loyalty_decided")

        def told(statement: str) -> set[str]:
            """What `statement` notified: read up to a marker notified after it."""
            conn.execute(statement)  # type: ignore[arg-type]
            conn.execute("SELECT pg_notify('loyalty_decided', 'marker')")
            payloads: set[str] = set()
            for notice in listening.notifies(timeout=20.0):
                if notice.payload == "marker":
                    return payloads
                payloads.add(notice.payload)
            raise AssertionError(f"no marker after {statement!r}: {payloads}")

        assert told(
            "INSERT INTO members (member_id, market, enrolled_at, status, updated_at) VALUES"
            " ('A', 'CA', now(), 'ACTIVE', now()), ('B', 'CA', now(), 'ACTIVE', now())"
        ) == {"member:A", "member:B"}
        assert told("UPDATE members SET status = status") == set()  # nothing changed
        assert told("UPDATE members SET preferred_locale = 'fr' WHERE member_id = 'B'") == {
            "member:B"
        }
        assert told(
            "INSERT INTO member_offer_standings (member_id, offer_id, loaded_at) VALUES"
            " ('A', 'O1', now()), ('A', 'O2', now())"
        ) == {"member:A"}
        # A merge moves a row: the member it was of, and the one it is of now.
        assert told("UPDATE member_offer_standings SET member_id = 'B' WHERE offer_id = 'O1'") == {
            "member:A",
            "member:B",
        }
        assert told(
            "INSERT INTO member_issued_offers (issued_offer_id, member_id, status, status_at,"
            " status_event_id) VALUES ('I-1', 'A', 'ISSUED', now(), 'e-1')"
        ) == {"member:A"}
        assert told("DELETE FROM member_issued_offers") == {"member:A"}
