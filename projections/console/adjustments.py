"""Manual points adjustments with maker/checker approval (docs/adr/0036-member-care-console.md).

Owns the reason codes, the limits (`AdjustmentPolicy`), what a submitted adjustment becomes
(`route`: refused, approved at once, or waiting for a checker), the table of adjustments
(`staff_points_adjustments`, migration 0028) and the request each approved adjustment
publishes: the `PointsAdjustmentRequested` that bulk jobs publish (ADR 12), its event id and
command id derived from the adjustment's id, so publishing it again books nothing twice. Never
publishes itself and never audits: the routes do both.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from psycopg import AsyncConnection, sql
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool

from processors.base.settings import Settings
from processors.contract.common import Source
from processors.contract.redemptions import (
    PointsAdjustmentKind,
    PointsAdjustmentRequested,
    RequestType,
)
from processors.rules.arithmetic import derived_id
from projections.console.sessions import Staff


class ReasonCode(StrEnum):
    """Why member care adjusts points: a closed list, so reports can count them."""

    GOODWILL = "goodwill"
    """A gesture for a member's trouble, no error on our side."""
    SERVICE_RECOVERY = "service recovery"
    """Making up for a failure of ours (a late delivery, a broken till)."""
    MISSING_POINTS = "missing points"
    """A purchase or offer that should have earned and did not."""
    CORRECTION = "correction"
    """Undoing a booking error (points given twice, the wrong member)."""
    FRAUD_REVERSAL = "fraud reversal"
    """Taking back points earned by fraud."""


Direction = Literal["credit", "debit"]

KIND_OF: dict[Direction, PointsAdjustmentKind] = {
    "credit": PointsAdjustmentKind.MANUAL_CREDIT,
    "debit": PointsAdjustmentKind.MANUAL_DEBIT,
}
"""An agent's adjustments have kinds of their own (ADR 36): booked as MANUAL_ADJUSTMENT ledger
events; a debit may overdraw, as a clawback must."""

NOTE_MAX = 500
COMMAND_PREFIX = "console-"
"""An adjustment's command id is this and its id: the engine's outcome is found by it."""


@dataclass(frozen=True)
class AdjustmentPolicy:
    """How much staff may adjust.

    `approval_over`: past this many points approved without a checker in a UTC day, an
    adjustment waits for one (`route`). `daily_limit`: the
    points one staff member may adjust in a UTC day (credits and debits together, pending ones
    included, rejected ones not); `limits` overrides it per staff name."""

    approval_over: int = 1_000
    daily_limit: int = 10_000
    limits: dict[str, int] = field(default_factory=dict)

    def limit_of(self, staff: str) -> int:
        return self.limits.get(staff, self.daily_limit)

    @classmethod
    def from_settings(cls, settings: Settings) -> AdjustmentPolicy:
        return cls(
            approval_over=settings.console_adjustment_approval_points,
            daily_limit=settings.console_adjustment_daily_limit_points,
            limits=settings.console_adjustment_limits_by_staff(),
        )


@dataclass(frozen=True)
class Submitted:
    """An adjustment as the agent's form gave it, once read. `adjustment_id` was chosen when
    the form was shown (`new_adjustment_id`), so a resent form names the adjustment it made."""

    adjustment_id: str
    member_id: str
    program_id: str
    direction: Direction
    points: int
    reason_code: ReasonCode
    note: str


ADJUSTMENT_ID = re.compile(r"[0-9a-f]{32}")
"""What a form's one-time adjustment id looks like."""


def new_adjustment_id() -> str:
    """A one-time id for an adjustment form about to be shown."""
    return uuid.uuid4().hex


class OverLimitError(Exception):
    """The adjustment would take its maker past their daily limit (the message says how far)."""


@dataclass(frozen=True)
class Today:
    """What one staff member adjusted in a UTC day: `used`, every adjustment not rejected;
    `unreviewed`, those approved on submission (no checker saw them)."""

    used: int
    unreviewed: int


def route(
    policy: AdjustmentPolicy, staff: str, points: int, today: Today
) -> Literal["approved", "pending"]:
    """What a submitted adjustment becomes: approved (published at once) or pending (waits
    for a checker); OverLimitError past the maker's daily limit.

    The approval threshold is cumulative over the maker's day: once the points approved
    without a checker would pass it, the adjustment waits, so splitting a large one into
    small ones does not get past the checker."""
    limit = policy.limit_of(staff)
    left = max(limit - today.used, 0)
    if points > left:
        raise OverLimitError(
            f"over your daily limit: {left} of {limit} points left today; ask an admin"
        )
    return "pending" if today.unreviewed + points > policy.approval_over else "approved"


@dataclass(frozen=True)
class Adjustment:
    """A row of `staff_points_adjustments`."""

    adjustment_id: str
    member_id: str
    program_id: str
    direction: str
    points: int
    reason_code: str
    note: str
    requested_by: str
    requested_by_role: str
    requested_at: datetime
    state: str
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None
    published_at: datetime | None
    booked: bool | None = None
    """The engine's answer once projected: booked (True) or refused (False); None: not yet."""
    booking_refusal: str | None = None
    """Why the engine refused it (its rejection reason and detail)."""

    @property
    def signed_points(self) -> int:
        return self.points if self.direction == "credit" else -self.points

    def request(self) -> PointsAdjustmentRequested:
        """The request this approved adjustment publishes, the same at every attempt."""
        assert self.state == "approved", "only an approved adjustment is published"
        assert self.decided_at is not None, "an approved adjustment has its decision time"
        checker = f", approved by {self.decided_by}" if self.decided_by else ""
        return PointsAdjustmentRequested(
            event_id=derived_id("points-adjustment-requested", self.adjustment_id),
            occurred_at=self.decided_at,
            command_id=COMMAND_PREFIX + self.adjustment_id,
            member_id=self.member_id,
            program_id=self.program_id,
            kind=KIND_OF["credit" if self.direction == "credit" else "debit"],
            points=self.points,
            campaign_id=f"console:{self.reason_code.replace(' ', '-')}",
            reason=f"{self.reason_code}: {self.note} (by {self.requested_by}{checker})",
            source=Source.BACK_OFFICE,
        )

    def as_json(self) -> dict[str, Any]:
        """The audit log's before/after."""
        return {
            "adjustment_id": self.adjustment_id,
            "member_id": self.member_id,
            "program_id": self.program_id,
            "points": self.signed_points,
            "reason_code": self.reason_code,
            "note": self.note,
            "requested_by": self.requested_by,
            "state": self.state,
            "decided_by": self.decided_by,
            "decision_reason": self.decision_reason,
            "published": self.published_at is not None,
        }


_COLUMNS = sql.SQL("""adjustment_id, member_id, program_id, direction, points, reason_code, note,
    requested_by, requested_by_role, requested_at, state, decided_by, decided_at,
    decision_reason, published_at""")

# A resent form carries the id it was shown with: the first submission's row stands.
_INSERT = sql.SQL(
    """INSERT INTO staff_points_adjustments (adjustment_id, member_id, program_id,
    direction, points, reason_code, note, requested_by, requested_by_role, requested_at, state,
    decided_at)
    VALUES (%(adjustment_id)s, %(member_id)s, %(program_id)s, %(direction)s, %(points)s,
        %(reason_code)s, %(note)s, %(requested_by)s, %(requested_by_role)s, %(at)s, %(state)s,
        %(decided_at)s)
    ON CONFLICT (adjustment_id) DO NOTHING
    RETURNING {columns}"""
).format(columns=_COLUMNS)

DAY_LOCK = """SELECT pg_advisory_xact_lock(
    hashtextextended('staff-adjustments/' || %(staff)s || '/' || %(day)s, 0))"""
"""Taken for the transaction that judges and stores one staff member's adjustment of a UTC
day (`day`: its ISO date): their submissions that day are judged one after the other, each
seeing the ones before."""

_TODAY = """SELECT coalesce(sum(points), 0),
        coalesce(sum(points) FILTER (WHERE state = 'approved' AND decided_by IS NULL), 0)
    FROM staff_points_adjustments
    WHERE requested_by = %(staff)s AND state <> 'rejected'
      AND requested_at >= %(day)s AND requested_at < %(next_day)s"""

# Only a pending adjustment is decided, and only by someone else: the row is the lock, so two
# checkers approving at once decide it once.
_DECIDE = sql.SQL(
    """UPDATE staff_points_adjustments
    SET state = %(state)s, decided_by = %(checker)s, decided_at = %(at)s,
        decision_reason = %(reason)s
    WHERE adjustment_id = %(adjustment_id)s AND state = 'pending'
      AND requested_by <> %(checker)s
    RETURNING {columns}"""
).format(columns=_COLUMNS)

_PUBLISHED = """UPDATE staff_points_adjustments SET published_at = %(at)s
    WHERE adjustment_id = %(adjustment_id)s AND published_at IS NULL"""

_ONE = sql.SQL(
    "SELECT {columns} FROM staff_points_adjustments WHERE adjustment_id = %(adjustment_id)s"
).format(columns=_COLUMNS)

# The engine's answer to the published request, once the projector has written it.
_OUTCOME = sql.SQL(
    """(SELECT o.accepted FROM request_outcomes o WHERE o.member_id = s.member_id
        AND o.command_id = %(prefix)s || s.adjustment_id AND o.request_type = %(kind)s)
        AS booked,
    (SELECT o.reason || coalesce(': ' || o.detail, '') FROM request_outcomes o
        WHERE o.member_id = s.member_id AND o.command_id = %(prefix)s || s.adjustment_id
        AND o.request_type = %(kind)s) AS booking_refusal"""
)

# Waiting first (oldest first), then approved but not yet published, then the latest decided.
_QUEUE = sql.SQL(
    """SELECT {columns}, {outcome} FROM staff_points_adjustments s
    WHERE state = 'pending' OR (state = 'approved' AND published_at IS NULL)
       OR decided_at >= %(since)s
    ORDER BY state <> 'pending', published_at IS NOT NULL, requested_at
    LIMIT %(limit)s"""
).format(columns=_COLUMNS, outcome=_OUTCOME)

_OF_MEMBER = sql.SQL(
    """SELECT {columns}, {outcome} FROM staff_points_adjustments s
    WHERE member_id = %(member_id)s ORDER BY requested_at DESC LIMIT %(limit)s"""
).format(columns=_COLUMNS, outcome=_OUTCOME)

_ANSWERED = {"prefix": COMMAND_PREFIX, "kind": RequestType.POINTS_ADJUSTMENT.value}


def _day(at: datetime) -> datetime:
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


async def _today(conn: AsyncConnection[Any], staff: str, at: datetime) -> Today:
    params = {"staff": staff, "day": _day(at), "next_day": _day(at) + timedelta(days=1)}
    row = await (await conn.execute(_TODAY, params)).fetchone()
    return Today(int(row[0]), int(row[1])) if row is not None else Today(0, 0)


class AdjustmentStore:
    """`staff_points_adjustments`: written through the API's write pool, read through it too
    (a checker must see what was just submitted)."""

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self.pool = pool

    async def _rows(self, query: sql.Composed, params: dict[str, Any]) -> list[Adjustment]:
        async with self.pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row(Adjustment))
            await cursor.execute(query, params)
            rows: list[Adjustment] = await cursor.fetchall()
            return rows

    async def used_today(self, staff: str, at: datetime) -> int:
        async with self.pool.connection() as conn:
            return (await _today(conn, staff, at)).used

    async def submit(
        self, staff: Staff, submitted: Submitted, policy: AdjustmentPolicy, at: datetime
    ) -> tuple[Adjustment, bool]:
        """The adjustment stored (approved or pending by `route`) and whether it is new: False
        when its form was sent before, and then it is the first submission's, unchanged.
        OverLimitError past the maker's daily limit. Judged and stored in one transaction under
        the maker's lock of the day, so two submissions at once cannot both fit the limit."""
        async with self.pool.connection() as conn, conn.transaction():
            day = _day(at).date().isoformat()
            await conn.execute(DAY_LOCK, {"staff": staff.name, "day": day})
            cursor = conn.cursor(row_factory=class_row(Adjustment))
            await cursor.execute(_ONE, {"adjustment_id": submitted.adjustment_id})
            first = await cursor.fetchone()
            if first is not None:
                return first, False
            state = route(policy, staff.name, submitted.points, await _today(conn, staff.name, at))
            await cursor.execute(_INSERT, self._row(staff, submitted, state, at))
            row = await cursor.fetchone()
            if row is None:  # the same id won under another lock (another maker or day)
                await cursor.execute(_ONE, {"adjustment_id": submitted.adjustment_id})
                row = await cursor.fetchone()
                assert row is not None, "a conflicting adjustment exists"
                return row, False
            return row, True

    @staticmethod
    def _row(
        staff: Staff, submitted: Submitted, state: Literal["approved", "pending"], at: datetime
    ) -> dict[str, Any]:
        return {
            "adjustment_id": submitted.adjustment_id,
            "member_id": submitted.member_id,
            "program_id": submitted.program_id,
            "direction": submitted.direction,
            "points": submitted.points,
            "reason_code": submitted.reason_code.value,
            "note": submitted.note,
            "requested_by": staff.name,
            "requested_by_role": staff.role.value,
            "at": at,
            "state": state,
            "decided_at": at if state == "approved" else None,
        }

    async def one(self, adjustment_id: str) -> Adjustment | None:
        rows = await self._rows(_ONE, {"adjustment_id": adjustment_id})
        return rows[0] if rows else None

    async def decide(
        self,
        adjustment_id: str,
        checker: str,
        *,
        approve: bool,
        at: datetime,
        reason: str | None = None,
    ) -> Adjustment | None:
        """The adjustment once decided; None when it was not pending or is the checker's own."""
        params = {
            "adjustment_id": adjustment_id,
            "checker": checker,
            "state": "approved" if approve else "rejected",
            "at": at,
            "reason": reason,
        }
        rows = await self._rows(_DECIDE, params)
        return rows[0] if rows else None

    async def published(self, adjustment_id: str, at: datetime) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(_PUBLISHED, {"adjustment_id": adjustment_id, "at": at})

    async def queue(self, since: datetime, limit: int = 100) -> list[Adjustment]:
        return await self._rows(_QUEUE, {"since": since, "limit": limit, **_ANSWERED})

    async def of_member(self, member_id: str, limit: int = 20) -> list[Adjustment]:
        params = {"member_id": member_id, "limit": limit, **_ANSWERED}
        return await self._rows(_OF_MEMBER, params)
