"""The staff audit log: every staff action in the console, who, when, what, before → after
(`staff_audit_log`, migration 0027; docs/adr/0035-staff-console.md).

Append-only: `record` inserts, nothing here updates or deletes, and the table's trigger
refuses both. `read` pages the log newest first for the admins' page. A refused action is
recorded too, with its reason as the outcome: who tried what matters as much as who did it.
An action with effects outside the console (a publication) is recorded as `attempted` before
it is done, and refused when that record cannot be written (`AuditUnavailableError`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from projections.console.sessions import Staff

PAGE_SIZE = 50

_INSERT = """INSERT INTO staff_audit_log
    (occurred_at, staff, staff_role, action, subject, before, after, outcome)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"""

_SELECT = """SELECT seq, occurred_at, staff, staff_role, action, subject, before, after, outcome
    FROM staff_audit_log
    WHERE (%(staff)s::text IS NULL OR staff = %(staff)s)
      AND (%(action)s::text IS NULL OR action = %(action)s)
      AND (%(subject)s::text IS NULL OR subject = %(subject)s)
      AND (%(below)s::bigint IS NULL OR seq < %(below)s)
    ORDER BY seq DESC LIMIT %(limit)s"""


class AuditUnavailableError(Exception):
    """The log could not be written (Postgres down, the pool exhausted): an action that must
    be on record first is not done."""


@dataclass(frozen=True)
class AuditEntry:
    """One row of the log."""

    seq: int
    occurred_at: datetime
    staff: str
    staff_role: str
    action: str
    subject: str
    before: Any
    after: Any
    outcome: str


def changes(before: Any, after: Any) -> list[tuple[str, Any, Any]]:
    """(path, before, after) for each value that differs between two JSON values, by path
    (`usage.budget_points_max`, `localized_copy[1].headline`); nothing → null is left out of a
    new record's list, so a first publication reads as what was set."""
    found: list[tuple[str, Any, Any]] = []

    def walk(path: str, a: Any, b: Any) -> None:
        if isinstance(a, dict) or isinstance(b, dict):
            a, b = a if isinstance(a, dict) else {}, b if isinstance(b, dict) else {}
            for key in sorted(set(a) | set(b)):
                walk(f"{path}.{key}" if path else str(key), a.get(key), b.get(key))
        elif isinstance(a, list) and isinstance(b, list) and a and b and len(a) == len(b):
            for n, (x, y) in enumerate(zip(a, b, strict=True)):
                walk(f"{path}[{n}]", x, y)
        elif a != b and not (a is None and b in (None, [], {})):
            found.append((path, a, b))

    walk("", before, after)
    return found


class StaffAuditLog:
    """The log in Postgres: written through the API's autocommit pool, read through its read
    pool."""

    def __init__(self, read_pool: AsyncConnectionPool[Any], write_pool: AsyncConnectionPool[Any]):
        self.read_pool = read_pool
        self.write_pool = write_pool

    async def record(
        self,
        staff: Staff,
        action: str,
        *,
        at: datetime,
        subject: str = "",
        before: Any = None,
        after: Any = None,
        outcome: str = "done",
    ) -> None:
        """Append one entry; `before` and `after` are JSON values (None: nothing).
        AuditUnavailableError when Postgres does not take it."""
        row = (
            at,
            staff.name,
            staff.role.value,
            action,
            subject,
            None if before is None else Jsonb(before),
            None if after is None else Jsonb(after),
            outcome,
        )
        try:
            async with self.write_pool.connection() as conn:
                await conn.execute(_INSERT, row)
        except psycopg.Error as error:
            raise AuditUnavailableError(f"the audit log cannot be written: {error}") from error

    async def read(
        self,
        *,
        staff: str | None = None,
        action: str | None = None,
        subject: str | None = None,
        below: int | None = None,
        limit: int = PAGE_SIZE,
    ) -> list[AuditEntry]:
        """Entries newest first, filtered by who, what and on what; `below`: older than."""
        params = {
            "staff": staff,
            "action": action,
            "subject": subject,
            "below": below,
            "limit": limit,
        }
        async with self.read_pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row(AuditEntry))
            await cursor.execute(_SELECT, params)
            entries: list[AuditEntry] = await cursor.fetchall()
            return entries
