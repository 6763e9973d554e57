"""The ledger projection: `LedgerEventRecorded` → ledger_events, ledger_entries,
ledger_event_balances, member_balances and member_lots.

Owns those five tables. It copies what the ledger says (the entries, and `balances_after` for
balances and lots) and never computes a balance or applies a ledger rule: those live in
`processors.rules`. It never commits (the caller's transaction also holds the checkpoint) and
never reads the clock, so a rebuild writes exactly what live projection wrote.

A batch travels by binary COPY (straight into the insert-only tables when nothing there
conflicts, else through temporary staging tables: see `write`) and is idempotent, so
re-applying events changes nothing:
- events, entries and per-event balances are insert-only (`ON CONFLICT DO NOTHING`);
- an account's current balance and lots move only to a newer `sequence` of the member's
  ledger, so an old event applied late never rolls an account back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

TABLES = (
    "ledger_events",
    "ledger_entries",
    "ledger_event_balances",
    "member_balances",
    "member_lots",
)

LedgerData = Mapping[str, Any]
"""A `LedgerEventRecorded` as data: what the front door decodes from the ledger topic, which
it trusts (ADR 39), or a model's `model_dump()`. Enums are their symbols, times aware UTC."""

Account = tuple[str, str, str]
"""(member_id, program_id, category): one points account."""


@dataclass(frozen=True)
class AccountState:
    """An account as it stood after the newest event of a batch that touched it."""

    sequence: int
    balance: int
    lots: tuple[tuple[datetime | None, int], ...]
    """(expires_at, points) by expiry, earliest first; None is the lot that never expires."""


@dataclass
class LedgerRows:
    """The rows a batch of ledger events projects to, before any is written."""

    events: list[tuple[Any, ...]] = field(default_factory=list)
    entries: list[tuple[Any, ...]] = field(default_factory=list)
    event_balances: list[tuple[Any, ...]] = field(default_factory=list)
    accounts: dict[Account, AccountState] = field(default_factory=dict)

    def balances(self) -> list[tuple[Any, ...]]:
        """member_balances rows: the newest balance of each account."""
        return [(*account, s.balance, s.sequence) for account, s in self.accounts.items()]

    def lots(self) -> list[tuple[Any, ...]]:
        """member_lots rows of every account, expires_at None for "never"."""
        return [
            (*account, expires_at, points)
            for account, state in self.accounts.items()
            for expires_at, points in state.lots
        ]


def rows_of(events: Iterable[LedgerData]) -> LedgerRows:
    """Map events to rows. Pure.

    An event seen twice (a producer retry) yields rows once. For each account only the state
    after its highest sequence is kept: the batch's final state is all the current tables need.
    """
    rows = LedgerRows()
    seen: set[str] = set()
    add_event, add_entry = rows.events.append, rows.entries.append
    add_balance, accounts = rows.event_balances.append, rows.accounts
    for event in events:
        log_id = event["event_log_id"]
        if log_id in seen:
            continue
        seen.add(log_id)
        member, sequence = event["member_id"], event["sequence"]
        add_event(
            (
                log_id, member, sequence, event["event_type"], event["occurred_at"],
                event["recorded_at"], event["cause_event_id"], event["source"],
                event["store_id"], event["till_id"], event["transaction_id"],
                event["transaction_number"], event["related_member_id"],
                event["points_on_event"],
            )
        )  # fmt: skip
        for position, entry in enumerate(event["entries"]):
            add_entry(
                (
                    entry["entry_id"], log_id, member, sequence, position, entry["program_id"],
                    entry["category"], entry["entry_type"], entry["kind"], entry["points"],
                    entry["expires_at"], entry["offer_id"],
                )
            )  # fmt: skip
        for after in event["balances_after"]:
            account = (member, after["program_id"], after["category"])
            add_balance((member, sequence, log_id, *account[1:], after["balance"]))
            known = accounts.get(account)
            if known is None or known.sequence < sequence:
                accounts[account] = AccountState(sequence, after["balance"], _lots(after["lots"]))
    return rows


def _lots(lots: Iterable[Mapping[str, Any]]) -> tuple[tuple[datetime | None, int], ...]:
    # One row per expiry (the table's key): two lots with one expiry are one lot.
    by_expiry: dict[datetime | None, int] = {}
    for lot in lots:
        expires_at = lot["expires_at"]
        by_expiry[expires_at] = by_expiry.get(expires_at, 0) + lot["points"]
    return tuple(by_expiry.items())


# Rows travel by binary COPY into session-local staging tables (C-speed on the client), then
# one INSERT ... SELECT per table applies them with the conflict rules. Staging tables are
# temporary, emptied at every commit, and vanish on rollback, so nothing stays behind.
_STAGES: dict[str, tuple[tuple[str, str], ...]] = {
    "ledger_events": (
        ("event_log_id", "text"), ("member_id", "text"), ("sequence", "int4"),
        ("event_type", "text"), ("occurred_at", "timestamptz"), ("recorded_at", "timestamptz"),
        ("cause_event_id", "text"), ("source", "text"), ("store_id", "text"),
        ("till_id", "text"), ("transaction_id", "text"), ("transaction_number", "text"),
        ("related_member_id", "text"), ("points_on_event", "int8"),
    ),
    "ledger_entries": (
        ("entry_id", "text"), ("event_log_id", "text"), ("member_id", "text"),
        ("sequence", "int4"), ("position", "int4"), ("program_id", "text"),
        ("category", "text"), ("entry_type", "text"), ("kind", "text"), ("points", "int8"),
        ("expires_at", "timestamptz"), ("offer_id", "text"),
    ),
    "ledger_event_balances": (
        ("member_id", "text"), ("sequence", "int4"), ("event_log_id", "text"),
        ("program_id", "text"), ("category", "text"), ("balance", "int8"),
    ),
    "member_balances": (
        ("member_id", "text"), ("program_id", "text"), ("category", "text"),
        ("balance", "int8"), ("sequence", "int4"),
    ),
    # expires_at null here is the lot that never expires; the table stores it as 'infinity'.
    "member_lots": (
        ("member_id", "text"), ("program_id", "text"), ("category", "text"),
        ("expires_at", "timestamptz"), ("points", "int8"),
    ),
    "moved_accounts": (("member_id", "text"), ("program_id", "text"), ("category", "text")),
}  # fmt: skip

# Emptied at the start too: a second write in one transaction must not see the first's rows.
_PREPARE_STAGES = sql.SQL("\n").join(
    sql.SQL(
        "CREATE TEMP TABLE IF NOT EXISTS {stage} ({columns}) ON COMMIT DELETE ROWS;"
        " DELETE FROM pg_temp.{stage};"
    ).format(
        stage=sql.Identifier(f"stage_{name}"),
        columns=sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(column), sql.SQL(kind))
            for column, kind in columns
        ),
    )
    for name, columns in _STAGES.items()
)

_APPLY = (
    """INSERT INTO ledger_events (event_log_id, member_id, sequence, event_type, occurred_at,
        recorded_at, cause_event_id, source, store_id, till_id, transaction_id,
        transaction_number, related_member_id, points_on_event)
    SELECT * FROM pg_temp.stage_ledger_events
    ON CONFLICT (event_log_id) DO NOTHING""",
    # A different event claiming an existing (member_id, sequence) is not caught: it raises,
    # and the runner retries loudly rather than drop either event.
    """INSERT INTO ledger_entries (entry_id, event_log_id, member_id, sequence, position,
        program_id, category, entry_type, kind, points, expires_at, offer_id)
    SELECT * FROM pg_temp.stage_ledger_entries
    ON CONFLICT (entry_id) DO NOTHING""",
    """INSERT INTO ledger_event_balances (member_id, sequence, event_log_id, program_id,
        category, balance)
    SELECT * FROM pg_temp.stage_ledger_event_balances
    ON CONFLICT (member_id, program_id, category, sequence) DO NOTHING""",
    # An account moves only forward in its member's ledger; the accounts that moved get
    # their lots replaced, the others keep theirs.
    """WITH moved AS (
        INSERT INTO member_balances AS current (member_id, program_id, category, balance,
            sequence)
        SELECT * FROM pg_temp.stage_member_balances
        ON CONFLICT (member_id, program_id, category) DO UPDATE
            SET balance = excluded.balance, sequence = excluded.sequence
            WHERE current.sequence < excluded.sequence
        RETURNING member_id, program_id, category)
    INSERT INTO pg_temp.stage_moved_accounts SELECT * FROM moved""",
    """DELETE FROM member_lots AS lot USING pg_temp.stage_moved_accounts AS moved
    WHERE lot.member_id = moved.member_id AND lot.program_id = moved.program_id
        AND lot.category = moved.category""",
    """INSERT INTO member_lots (member_id, program_id, category, expires_at, points)
    SELECT lot.member_id, lot.program_id, lot.category,
        coalesce(lot.expires_at, 'infinity'), lot.points
    FROM pg_temp.stage_member_lots AS lot
    JOIN pg_temp.stage_moved_accounts AS moved USING (member_id, program_id, category)""",
)


def _copy(cursor: psycopg.Cursor[Any], target: str, rows: Iterable[tuple[Any, ...]]) -> None:
    """Binary COPY of `rows` into `target`, a projection table or (`stage_*`) its staging."""
    columns = _STAGES[target.removeprefix("pg_temp.stage_")]
    names = ", ".join(column for column, _ in columns)
    with cursor.copy(f"COPY {target} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types([kind for _, kind in columns])
        for row in rows:
            copy.write_row(row)


_INSERT_ONLY = ("ledger_events", "ledger_entries", "ledger_event_balances")


def write(conn: psycopg.Connection, events: Sequence[LedgerData]) -> None:
    """Project `events` (in ledger order per member) in the caller's transaction.

    1. Optimistically COPY the insert-only rows straight into their tables, in a savepoint:
       the common case (events never seen) at COPY speed.
    2. If some were there already (a replay without checkpoints, a duplicate on the topic),
       roll that back and apply them through staging with `ON CONFLICT DO NOTHING`.
    3. Balances and lots always go through staging: they move forward only.
    """
    if not events:
        return
    rows = rows_of(events)
    inserts = {
        "ledger_events": rows.events,
        "ledger_entries": rows.entries,
        "ledger_event_balances": rows.event_balances,
    }
    with conn.cursor() as cursor:
        cursor.execute(_PREPARE_STAGES)
        try:
            with conn.transaction():
                for table in _INSERT_ONLY:
                    _copy(cursor, table, inserts[table])
            statements = _APPLY[len(_INSERT_ONLY) :]
        except psycopg.errors.UniqueViolation:
            for table in _INSERT_ONLY:
                _copy(cursor, f"pg_temp.stage_{table}", inserts[table])
            statements = _APPLY
        _copy(cursor, "pg_temp.stage_member_balances", rows.balances())
        _copy(cursor, "pg_temp.stage_member_lots", rows.lots())
        with conn.pipeline():
            for statement in statements:
                cursor.execute(statement)
