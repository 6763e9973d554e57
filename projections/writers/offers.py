"""The offers projection: `OfferCompleted` and `OfferProgressed` → offer_completions,
member_offer_uses and member_offer_progress.

Owns those three tables. It copies what the offer rules said and never evaluates an offer
(`processors.rules.offers` does); it never commits (the caller's transaction also holds the
checkpoint) and never reads the clock, so a rebuild writes exactly what live projection wrote.
Targeting and spent budgets belong to the performance projection (`writers/performance.py`);
promo code uses, reservations and refusals belong to `writers/codes.py`, challenges to
`writers/challenges.py`; loaded offers have no table here and are passed over (`PASSED_OVER`).

A batch travels by binary COPY into temporary staging tables, then one statement per table
applies it, idempotently, so re-applying events changes nothing:
- completions are insert-only (`ON CONFLICT DO NOTHING` on the event id), and
  `member_offer_uses` adds up only the completions inserted for the first time: a
  redelivered completion is counted once, and sums do not depend on the order of arrival;
- progress moves only forward, by (`occurred_at`, `use_number`); among a batch's events for
  one offer the last of the log wins at equal keys, as it would one batch at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from processors.contract.offers import (
    OfferCompleted,
    OfferLoaded,
    OfferProgressed,
)

TABLES = ("offer_completions", "member_offer_uses", "member_offer_progress")

OfferEvent = OfferCompleted | OfferProgressed

PASSED_OVER = (OfferLoaded,)
"""Events of the offers topic this projection has no table for yet: their offsets are passed."""


@dataclass
class OfferRows:
    """The rows a batch of offer events projects to, before any is written."""

    completions: list[tuple[Any, ...]] = field(default_factory=list)
    progress: dict[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)
    """(member_id, offer_id) → the newest progress row of the batch."""


def rows_of(events: Iterable[OfferEvent]) -> OfferRows:
    """Map events (in log order) to rows. Pure.

    A completion seen twice in the batch yields one row. Per (member, offer) only the newest
    progress is kept, by (occurred_at, use_number), the later event winning a tie.
    """
    rows = OfferRows()
    seen: set[str] = set()
    for event in events:
        if isinstance(event, OfferCompleted):
            if event.event_id in seen:
                continue
            seen.add(event.event_id)
            rows.completions.append(
                (
                    event.event_id,
                    event.member_id,
                    event.offer_id,
                    event.use_number,
                    event.multiples,
                    event.tier,
                    event.program_id,
                    event.points_due,
                    event.points_awarded,
                    event.discount_cents,
                    event.in_control_group,
                    event.transaction_id,
                    event.cause_event_id,
                    event.occurred_at,
                )
            )
        else:
            key = (event.member_id, event.offer_id)
            known = rows.progress.get(key)
            if known is not None and (known[4], known[2]) > (event.occurred_at, event.use_number):
                continue
            progress = [p.model_dump(mode="json") for p in event.progress]
            rows.progress[key] = (*key, event.use_number, Jsonb(progress), event.occurred_at)
    return rows


_STAGES: dict[str, tuple[tuple[str, str], ...]] = {
    "offer_completions": (
        ("event_id", "text"), ("member_id", "text"), ("offer_id", "text"),
        ("use_number", "int4"), ("multiples", "int4"), ("tier", "int4"), ("program_id", "text"),
        ("points_due", "int8"), ("points_awarded", "int8"), ("discount_cents", "int8"),
        ("in_control_group", "bool"), ("transaction_id", "text"), ("cause_event_id", "text"),
        ("occurred_at", "timestamptz"),
    ),
    "member_offer_progress": (
        ("member_id", "text"), ("offer_id", "text"), ("use_number", "int4"),
        ("progress", "jsonb"), ("updated_at", "timestamptz"),
    ),
}  # fmt: skip

# Session-local, emptied at every commit and at the start of every write (a second write in
# one transaction must not see the first's rows); named apart from the ledger writer's stages.
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
    # Uses are the sums of the completions inserted now, never of ones already there.
    """WITH inserted AS (
        INSERT INTO offer_completions (event_id, member_id, offer_id, use_number, multiples,
            tier, program_id, points_due, points_awarded, discount_cents, in_control_group,
            transaction_id, cause_event_id, occurred_at)
        SELECT * FROM pg_temp.stage_offer_completions
        ON CONFLICT (event_id) DO NOTHING
        RETURNING member_id, offer_id, points_awarded, discount_cents, occurred_at)
    INSERT INTO member_offer_uses AS current (member_id, offer_id, uses, points_awarded,
        discount_cents, last_completed_at)
    SELECT member_id, offer_id, count(*), sum(points_awarded), sum(discount_cents),
        max(occurred_at)
    FROM inserted GROUP BY member_id, offer_id
    ON CONFLICT (member_id, offer_id) DO UPDATE
        SET uses = current.uses + excluded.uses,
            points_awarded = current.points_awarded + excluded.points_awarded,
            discount_cents = current.discount_cents + excluded.discount_cents,
            last_completed_at = greatest(current.last_completed_at, excluded.last_completed_at)""",
    # `<=`: an event applied again over itself rewrites the same values.
    """INSERT INTO member_offer_progress AS current (member_id, offer_id, use_number, progress,
        updated_at)
    SELECT * FROM pg_temp.stage_member_offer_progress
    ON CONFLICT (member_id, offer_id) DO UPDATE
        SET use_number = excluded.use_number, progress = excluded.progress,
            updated_at = excluded.updated_at
        WHERE (current.updated_at, current.use_number)
            <= (excluded.updated_at, excluded.use_number)""",
)


def _copy(cursor: psycopg.Cursor[Any], stage: str, rows: Iterable[tuple[Any, ...]]) -> None:
    columns = _STAGES[stage]
    names = ", ".join(column for column, _ in columns)
    with cursor.copy(f"COPY pg_temp.stage_{stage} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types([kind for _, kind in columns])
        for row in rows:
            copy.write_row(row)


def write(conn: psycopg.Connection, events: Sequence[OfferEvent]) -> None:
    """Project `events` (in log order per member) in the caller's transaction."""
    if not events:
        return
    rows = rows_of(events)
    with conn.cursor() as cursor:
        cursor.execute(_PREPARE_STAGES)
        _copy(cursor, "offer_completions", rows.completions)
        _copy(cursor, "member_offer_progress", rows.progress.values())
        with conn.pipeline():
            for statement in _APPLY:
                cursor.execute(statement)
