"""The SQL behind the ledger and balance endpoints: every statement parameterised.

Statements are composed only from the constant fragments below; values (member id, filters,
cursor) always travel as bind parameters, never as SQL text (DESIGN.md §7). Every statement is
scoped to one member id, so one member's request can never read another's rows. A page costs
three statements whatever its size (member, events, entries): no per-event queries.

Till concept events: the engine has no till→programme mapping, so a *till concept event* for
programme P is a group redemption recorded at a till (`till_id` set, `POINTS_REDEMPTION`)
whose entries span several programmes, P among them. Filtering on P shows only P's entries of
it; `includeTillConceptEvents=true` shows the whole redemption, every programme's entries.

Owns SQL and row shapes; never checks tokens, never parses query parameters, never writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from projections.api.views import LedgerView

Row = dict[str, Any]

_EVENT_COLUMNS = sql.SQL(
    "le.event_log_id, le.sequence, le.event_type, le.occurred_at, le.recorded_at, le.source,"
    " le.store_id, le.till_id, le.transaction_id, le.transaction_number,"
    " le.related_member_id, le.points_on_event"
)

# A group redemption at a till that touches programme %(program_id)s and at least one other.
_IS_TILL_CONCEPT_EVENT = sql.SQL(
    "(le.till_id IS NOT NULL AND le.event_type = 'POINTS_REDEMPTION'"
    " AND EXISTS (SELECT 1 FROM ledger_entries p WHERE p.event_log_id = le.event_log_id"
    "   AND p.program_id = %(program_id)s)"
    " AND EXISTS (SELECT 1 FROM ledger_entries o WHERE o.event_log_id = le.event_log_id"
    "   AND o.program_id <> %(program_id)s))"
)


@dataclass(frozen=True)
class Member:
    """What the ledger header shows about a member, and whether the member exists at all."""

    member_id: str
    profile: Row | None
    has_ledger: bool

    @property
    def exists(self) -> bool:
        """Known from its enrolment, or at least from ledger events."""
        return self.profile is not None or self.has_ledger


@dataclass(frozen=True)
class EventPage:
    """Up to `limit` events of a view, with their entries in view, in ledger order."""

    events: list[Row]
    has_more: bool


async def find_member(conn: AsyncConnection[Any], member_id: str) -> Member:
    """The member's profile (None if never enrolled here) and whether it has a ledger."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT m.first_name, m.last_name, m.market, m.status, m.merged_into,"
            " m.member_id IS NOT NULL AS has_profile,"
            " EXISTS (SELECT 1 FROM ledger_events le WHERE le.member_id = q.member_id)"
            "   AS has_ledger"
            " FROM (SELECT %(member_id)s::text AS member_id) q"
            " LEFT JOIN members m ON m.member_id = q.member_id",
            {"member_id": member_id},
        )
        row = await cur.fetchone()
    assert row is not None  # the one-row subquery always yields a row
    has_profile = bool(row.pop("has_profile"))
    has_ledger = bool(row.pop("has_ledger"))
    return Member(member_id, row if has_profile else None, has_ledger)


def _shown_entry(view: LedgerView, *, till_concept: sql.Composable) -> sql.Composable:
    """The condition on entry `e` of event `le` for the entry to be in view."""
    conditions: list[sql.Composable] = [sql.SQL("TRUE")]
    if view.entry_type is not None:
        conditions.append(sql.SQL("e.entry_type = %(entry_type)s"))
    if view.category is not None:
        conditions.append(sql.SQL("e.category = %(category)s"))
    if view.program_id is not None:
        if view.widens_to_till_concept_events:
            conditions.append(sql.SQL("(e.program_id = %(program_id)s OR {})").format(till_concept))
        else:
            conditions.append(sql.SQL("e.program_id = %(program_id)s"))
    return sql.SQL(" AND ").join(conditions)


def _view_where(view: LedgerView, *, after_sequence: int | None) -> sql.Composable:
    """The condition on event `le` for it to be in the member's view (and after the cursor)."""
    conditions: list[sql.Composable] = [
        sql.SQL("le.member_id = %(member_id)s"),
        sql.SQL("le.recorded_at BETWEEN %(recorded_from)s AND %(recorded_to)s"),
    ]
    if view.source is not None:
        conditions.append(sql.SQL("le.source = %(source)s"))
    if view.till_id is not None:
        conditions.append(sql.SQL("le.till_id = %(till_id)s"))
    if after_sequence is not None:
        conditions.append(sql.SQL("le.sequence > %(after_sequence)s"))
    if view.filters_entries:
        shown = _shown_entry(view, till_concept=_IS_TILL_CONCEPT_EVENT)
        conditions.append(
            sql.SQL(
                "EXISTS (SELECT 1 FROM ledger_entries e"
                " WHERE e.event_log_id = le.event_log_id AND {})"
            ).format(shown)
        )
    return sql.SQL(" AND ").join(conditions)


def _params(member_id: str, view: LedgerView, **extra: Any) -> dict[str, Any]:
    return {
        "member_id": member_id,
        "recorded_from": view.recorded_from,
        "recorded_to": view.recorded_to,
        "source": view.source.value if view.source is not None else None,
        "till_id": view.till_id,
        "entry_type": view.entry_type.value if view.entry_type is not None else None,
        "category": view.category.value if view.category is not None else None,
        "program_id": view.program_id,
        **extra,
    }


async def ledger_page(
    conn: AsyncConnection[Any],
    member_id: str,
    view: LedgerView,
    *,
    after_sequence: int | None,
    limit: int,
) -> EventPage:
    """The next `limit` events of the view after `after_sequence`, each with its entries.

    1. Events: one keyset query in ascending sequence, fetching one extra row to learn
       whether another page follows.
    2. Entries: one query for the whole page, filtered like the view, in entry order.
    """
    till_concept = (
        _IS_TILL_CONCEPT_EVENT if view.widens_to_till_concept_events else sql.SQL("FALSE")
    )
    query = sql.SQL(
        "SELECT {columns}, {till_concept} AS is_till_concept FROM ledger_events le"
        " WHERE {where} ORDER BY le.sequence LIMIT %(rows)s"
    ).format(
        columns=_EVENT_COLUMNS,
        till_concept=till_concept,
        where=_view_where(view, after_sequence=after_sequence),
    )
    params = _params(member_id, view, after_sequence=after_sequence, rows=limit + 1)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        events = await cur.fetchall()
    has_more = len(events) > limit
    events = events[:limit]
    if not events:
        return EventPage(events=[], has_more=False)

    ids = [event["event_log_id"] for event in events]
    till_concept_ids = [event["event_log_id"] for event in events if event["is_till_concept"]]
    entries_query = sql.SQL(
        "SELECT e.event_log_id, e.entry_id, e.program_id, e.category, e.entry_type, e.kind,"
        " e.points, NULLIF(e.expires_at, 'infinity') AS expires_at, e.offer_id"
        " FROM ledger_entries e"
        " WHERE e.member_id = %(member_id)s AND e.event_log_id = ANY(%(ids)s::text[]) AND {shown}"
        " ORDER BY e.sequence, e.position"
    ).format(
        shown=_shown_entry(view, till_concept=sql.SQL("e.event_log_id = ANY(%(tce_ids)s::text[])"))
    )
    entries_params = _params(member_id, view, ids=ids, tce_ids=till_concept_ids)
    entries_by_event: dict[str, list[Row]] = {event_id: [] for event_id in ids}
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(entries_query, entries_params)
        for entry in await cur.fetchall():
            entries_by_event[entry.pop("event_log_id")].append(entry)
    for event in events:
        del event["is_till_concept"]
        event["entries"] = entries_by_event[event["event_log_id"]]
    return EventPage(events=events, has_more=has_more)


async def last_event_of_view(
    conn: AsyncConnection[Any], member_id: str, view: LedgerView
) -> Row | None:
    """The latest event (highest sequence) of the whole view, if it holds any."""
    query = sql.SQL(
        "SELECT le.event_log_id, le.sequence, le.recorded_at FROM ledger_events le"
        " WHERE {where} ORDER BY le.sequence DESC LIMIT 1"
    ).format(where=_view_where(view, after_sequence=None))
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, _params(member_id, view))
        return await cur.fetchone()


async def last_event(conn: AsyncConnection[Any], member_id: str) -> Row | None:
    """The member's latest ledger event, if any."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT event_log_id, sequence, recorded_at FROM ledger_events"
            " WHERE member_id = %(member_id)s ORDER BY sequence DESC LIMIT 1",
            {"member_id": member_id},
        )
        return await cur.fetchone()


async def balances_as_of(
    conn: AsyncConnection[Any],
    member_id: str,
    sequence: int,
    *,
    program_id: str | None,
    category: str | None,
) -> list[Row]:
    """Each account's balance as it stood after the event at `sequence`, optionally narrowed.

    An account's balance after event S is its `ledger_event_balances` row with the highest
    sequence <= S (rows exist only for the events that touched the account). The accounts are
    the member's `member_balances` rows; each is one backward probe of the primary key, so a
    long ledger costs no more than a short one. Accounts opened after S have no such row and
    are left out.
    """
    conditions: list[sql.Composable] = [sql.SQL("b.member_id = %(member_id)s")]
    if program_id is not None:
        conditions.append(sql.SQL("b.program_id = %(program_id)s"))
    if category is not None:
        conditions.append(sql.SQL("b.category = %(category)s"))
    query = sql.SQL(
        "SELECT b.program_id, b.category, at.balance FROM member_balances b"
        " CROSS JOIN LATERAL (SELECT leb.balance FROM ledger_event_balances leb"
        "   WHERE leb.member_id = b.member_id AND leb.program_id = b.program_id"
        "   AND leb.category = b.category AND leb.sequence <= %(sequence)s"
        "   ORDER BY leb.sequence DESC LIMIT 1) at"
        " WHERE {where} ORDER BY b.program_id, b.category"
    ).format(where=sql.SQL(" AND ").join(conditions))
    params = {
        "member_id": member_id,
        "sequence": sequence,
        "program_id": program_id,
        "category": category,
    }
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


async def current_balances(conn: AsyncConnection[Any], member_id: str) -> list[Row]:
    """Every account's current balance, by programme then category."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT program_id, category, balance FROM member_balances"
            " WHERE member_id = %(member_id)s ORDER BY program_id, category",
            {"member_id": member_id},
        )
        return await cur.fetchall()


async def balances_with_lots(conn: AsyncConnection[Any], member_id: str) -> list[Row]:
    """Every account with its lots, one row per lot (lot columns null for an account with none).

    One statement, so balances and lots come from the same snapshot. Lots are earliest expiry
    first; the never-expiring lot ('infinity') comes last, as a null `expires_at`.
    """
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT b.program_id, b.category, b.balance,"
            " NULLIF(l.expires_at, 'infinity') AS expires_at, l.points"
            " FROM member_balances b"
            " LEFT JOIN member_lots l ON l.member_id = b.member_id"
            "   AND l.program_id = b.program_id AND l.category = b.category"
            " WHERE b.member_id = %(member_id)s"
            " ORDER BY b.program_id, b.category, l.expires_at",
            {"member_id": member_id},
        )
        return await cur.fetchall()
