"""What the offer feed endpoints read and write: one protocol, `FeedStore`, and its Postgres
implementation, so the routes are tested with an in-memory store as the reward routes are.

Owns the SQL of the feed routes (every statement parameterised, DESIGN.md §7): a market's
public offers (`offer_feed_items`), a member (`members`) with the offers of their programmes,
their standings (`member_offer_standings`) and the reward-store offers they bought and have
not used (`member_issued_offers`), and the API's own table of app events
(`offer_feed_events`). Never checks tokens, never decides what a member sees (`offer_feed`
does), never reads the clock: every time is given.

Reads are one statement each, in autocommit (the app's statement pool: one round trip, the
member and their offers in the statement's snapshot); only an offer not yet held at its
version is read in a transaction, with the query again, in one snapshot. App events are
written through the API's small write pool, in autocommit: one statement each, and deleted
past their retention by `prune_events` (a shell command's, outside the app).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from psycopg import Connection, sql
from psycopg.abc import Query
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from projections.api.offer_feed import Issued, Member, Standing
from projections.writers.feed import FeedItem


@dataclass(frozen=True)
class FeedEventRecord:
    """One app event as `offer_feed_events` keeps it."""

    event_id: str
    kind: str
    market: str
    member_id: str | None
    offer_id: str | None
    offer_ids: tuple[str, ...]
    locale: str | None
    received_at: datetime


class FeedStore(Protocol):
    """Where the feed routes read and write (see the module)."""

    async def market_items(self, market: str, at: datetime) -> list[FeedItem]:
        """The market's public offers not over at `at`: displayable, or to be displayed."""
        ...

    async def member_items(
        self, member_id: str, at: datetime
    ) -> tuple[Member, list[tuple[FeedItem, Standing | None]]] | None:
        """The member, and the offers not over at `at` (displayable, or to be displayed: when
        one is, the member's answer changes) that the member may see: the MASS offers of their
        programmes, the offers they hold a targeting of and the reward-store offers they
        bought, each with the member's standing; None for a member never enrolled here."""
        ...

    async def record(self, event: FeedEventRecord) -> bool:
        """Keep the event once: False when its event_id was recorded before."""
        ...


_ITEM_COLUMNS = """i.offer_id, i.program_id, i.market, i.rank, i.display_at, i.starts_at,
    i.ends_at, i.withdrawn_at, i.closed_at, i.audience, i.control_share_percent,
    i.trigger_valid_days, i.activation, i.coupon_code, i.in_reward_store, i.uses_per_member_max,
    i.points_per_member_max, i.copy, i.details, i.published_event_id, i.digest"""

_ITEMS = sql.SQL("SELECT {items} FROM offer_feed_items i WHERE i.offer_id = ANY(%s)").format(
    items=sql.SQL(_ITEM_COLUMNS)
)

_MARKET = """
SELECT i.offer_id, i.digest
FROM offer_feed_items i
WHERE i.market = %(market)s AND i.audience = 'MASS' AND NOT i.in_reward_store
    AND %(at)s < i.visible_until
"""

_STANDING_COLUMNS = """s.in_control_group AS s_in_control_group, s.targeted_at AS s_targeted_at,
    s.last_targeted_at AS s_last_targeted_at,
    cardinality(s.targeting_event_ids) AS s_targetings, s.loaded_at AS s_loaded_at,
    s.uses AS s_uses, s.points_awarded AS s_points_awarded,
    s.progress_use_number AS s_progress_use_number, s.progress AS s_progress"""

# One round trip: the member (no row: never enrolled), the mass offers of their programmes
# (few, and the same for every member of them) as one text column, `mass` (each offer's id and
# digest, space separated: neither holds a space), and one row for each offer the member has a
# row of their own for: a standing on a mass offer (loaded, progressed on, used), a targeting,
# a reward-store offer they bought and have not used (each offer's instances in one JSON
# array). Index scans only, never one probe per offer of the catalogue; `mass` aggregated once
# (MATERIALIZED: not again for each row); a member with no row of their own is one row of nulls
# beside `mass`. Offers not displayed yet are read too: their display dates bound how long the
# member's answer is kept (`MemberFeeds`); `offer_feed.sees` leaves them out of the answer.
_MEMBER_ITEMS = sql.SQL("""
WITH m AS MATERIALIZED (
    SELECT member_id, status, merged_into, program_ids, preferred_locale,
        (SELECT string_agg(i.offer_id || ' ' || i.digest, ' ' ORDER BY i.offer_id)
         FROM offer_feed_items i
         WHERE i.program_id = ANY(members.program_ids) AND i.audience = 'MASS'
            AND NOT i.in_reward_store AND %(at)s < i.visible_until) AS mass
    FROM members WHERE member_id = %(member_id)s
)
SELECT m.member_id, m.status, m.merged_into, m.program_ids, m.preferred_locale, m.mass, x.*
FROM m
LEFT JOIN LATERAL (
    SELECT i.offer_id, i.digest, {standing}, NULL::json AS issued
    FROM member_offer_standings s
    JOIN offer_feed_items i ON i.offer_id = s.offer_id
    WHERE s.member_id = m.member_id AND (i.audience = 'MASS' OR s.targeted_at IS NOT NULL)
        AND i.program_id = ANY(m.program_ids) AND NOT i.in_reward_store
        AND %(at)s < i.visible_until
    UNION ALL
    SELECT i.offer_id, i.digest, {standing}, b.issued
    FROM (
        SELECT offer_id, json_agg(json_build_object('issued_offer_id', issued_offer_id,
                'status', status, 'reward_store_id', reward_store_id,
                'points_spent', points_spent, 'issued_at', issued_at,
                'locked_until', locked_until)
            ORDER BY issued_at NULLS LAST, issued_offer_id) AS issued
        FROM member_issued_offers
        WHERE member_id = m.member_id AND status <> 'USED' AND offer_id IS NOT NULL
        GROUP BY offer_id
    ) b
    JOIN offer_feed_items i ON i.offer_id = b.offer_id
    LEFT JOIN member_offer_standings s ON s.member_id = m.member_id AND s.offer_id = i.offer_id
    WHERE i.in_reward_store AND i.program_id = ANY(m.program_ids)
        AND %(at)s < i.visible_until
) x ON true
""").format(standing=sql.SQL(_STANDING_COLUMNS))
_MEMBER_ITEMS_TEXT = _MEMBER_ITEMS.as_string(None)
"""Rendered once: a composed query is rendered again on every execute (~15 µs here)."""

_RECORD = """
INSERT INTO offer_feed_events (event_id, kind, market, member_id, offer_id, offer_ids, locale,
    received_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (event_id) DO NOTHING
RETURNING 1
"""

_ITEM_FIELDS = tuple(FeedItem.__dataclass_fields__)


Row = dict[str, Any]


def _digests(rows: list[Row]) -> list[tuple[str, str]]:
    """The offers named by a feed query's rows, with their digests (a member's row of nulls
    names none), and those of the member's programmes' mass offers (`_mass`)."""
    named = [(row["offer_id"], row["digest"]) for row in rows if row["offer_id"] is not None]
    return named + _mass(rows[0]) if rows and "mass" in rows[0] else named


def _mass(row: Row) -> list[tuple[str, str]]:
    """The mass offers of a member's row (`_MEMBER_ITEMS`'s `mass`): (offer_id, digest)."""
    words = (row["mass"] or "").split()
    return list(zip(words[::2], words[1::2], strict=True))


def _item(row: dict[str, Any]) -> FeedItem:
    return FeedItem(**{name: row[name] for name in _ITEM_FIELDS})


def _instant(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _issued(row: dict[str, Any]) -> tuple[Issued, ...]:
    return tuple(
        Issued(
            issued_offer_id=held["issued_offer_id"],
            status=held["status"],
            reward_store_id=held["reward_store_id"],
            points_spent=held["points_spent"],
            issued_at=_instant(held["issued_at"]),
            locked_until=_instant(held["locked_until"]),
        )
        for held in row["issued"] or ()
    )


def _standing(row: dict[str, Any]) -> Standing | None:
    if row["s_uses"] is None and row["issued"] is None:  # a mass offer the member never touched
        return None
    if row["s_uses"] is None:  # bought, never targeted, loaded or progressed on
        return Standing(issued=_issued(row))
    return Standing(
        in_control_group=row["s_in_control_group"],
        targeted_at=row["s_targeted_at"],
        last_targeted_at=row["s_last_targeted_at"],
        targetings=row["s_targetings"],
        loaded_at=row["s_loaded_at"],
        uses=row["s_uses"],
        points_awarded=row["s_points_awarded"],
        progress_use_number=row["s_progress_use_number"],
        progress=row["s_progress"],
        issued=_issued(row),
    )


class PostgresFeedStore:
    """`FeedStore` over the feed tables (`read`, the app's read-only pool) and the API's app
    events table (`write`).

    Items are kept by offer and digest: a query names the offers it finds with their digests,
    and only an offer not held at that digest is read whole (its copy and details decoded),
    in the same snapshot. A republished, extended or withdrawn offer has a new digest, so
    nothing stale is served; the cache holds at most one version of each offer.
    """

    def __init__(self, read: AsyncConnectionPool[Any], write: AsyncConnectionPool[Any]) -> None:
        self.read = read
        self.write = write
        self._items: dict[str, FeedItem] = {}

    def _missing(self, found: list[tuple[str, str]]) -> list[str]:
        """The offers of `found` (offer_id, digest) not held at that digest."""
        return [
            oid for oid, digest in found if getattr(self._items.get(oid), "digest", None) != digest
        ]

    async def _read(self, query: Query, params: dict[str, Any]) -> list[Row]:
        """The rows of `query`, every offer they name (`_digests`) held at the digest read.

        Usually one statement in autocommit, one round trip: the offers are held. An offer not
        held at its digest (new, or a new version) is read whole in the same snapshot as the
        query, so the query runs again inside a transaction (`read` opens it repeatable read)."""
        async with self.read.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query, params)
            rows: list[Row] = await cur.fetchall()
            if not self._missing(_digests(rows)):
                return rows
            async with conn.transaction():
                await cur.execute(query, params)
                rows = await cur.fetchall()
                missing = self._missing(_digests(rows))
                if missing:
                    await cur.execute(_ITEMS, (missing,))
                    for row in await cur.fetchall():
                        self._items[row["offer_id"]] = _item(row)
        return rows

    async def market_items(self, market: str, at: datetime) -> list[FeedItem]:
        rows = await self._read(_MARKET, {"market": market, "at": at})
        return [self._items[row["offer_id"]] for row in rows]

    async def member_items(
        self, member_id: str, at: datetime
    ) -> tuple[Member, list[tuple[FeedItem, Standing | None]]] | None:
        rows = await self._read(_MEMBER_ITEMS_TEXT, {"member_id": member_id, "at": at})
        if not rows:
            return None
        own = {row["offer_id"]: row for row in rows if row["offer_id"] is not None}
        first = rows[0]
        member = Member(
            member_id=first["member_id"],
            status=first["status"],
            merged_into=first["merged_into"],
            program_ids=tuple(first["program_ids"] or ()),
            preferred_locale=first["preferred_locale"],
        )
        # The member's own rows, then the mass offers they have none for: as the rows of a
        # join of the mass offers to the member's standings, one query fewer rows.
        untouched = [(self._items[oid], None) for oid, _ in _mass(first) if oid not in own]
        return member, [
            *((self._items[oid], _standing(row)) for oid, row in own.items()),
            *untouched,
        ]

    async def record(self, event: FeedEventRecord) -> bool:
        async with self.write.connection() as conn:
            inserted = await (
                await conn.execute(
                    _RECORD,
                    (
                        event.event_id,
                        event.kind,
                        event.market,
                        event.member_id,
                        event.offer_id,
                        list(event.offer_ids),
                        event.locale,
                        event.received_at,
                    ),
                )
            ).fetchone()
        return inserted is not None


# Oldest first, a batch at a time (offer_feed_events_by_time, migration 0021): each batch is
# its own short transaction, so the API keeps writing events while old ones go.
_PRUNE = """
DELETE FROM offer_feed_events
WHERE event_id IN (
    SELECT event_id FROM offer_feed_events
    WHERE received_at < %s
    ORDER BY received_at
    LIMIT %s
)
"""


def prune_events(conn: Connection[Any], before: datetime, *, batch: int = 10_000) -> int:
    """Delete the app events received before `before`, `batch` rows per transaction; how many
    were deleted. `conn` in autocommit."""
    deleted = 0
    while True:
        count = conn.execute(_PRUNE, (before, batch)).rowcount
        deleted += count
        if count < batch:
            return deleted
