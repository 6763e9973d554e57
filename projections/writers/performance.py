"""The offer performance projection (test vs control, DESIGN.md §5.16): the facts its figures
are computed from, and the arithmetic of those figures.

Owns `offers` and `programs` (from loyalty.config.v1), `offer_audience` (OfferTargeted, from
loyalty.offers.v1), `member_transactions` and `member_returns` (TransactionCompleted and
TransactionReturned with a member, from loyalty.transactions.v1). The activity of a targeted
member (purchases net of their returns) and the comparison of the groups are computed when
read (views `offer_member_activity` and `offer_performance`, projections/sql/0004 and 0005),
from these tables and `offer_completions`: topics are not ordered with each other, and a
figure computed from stored facts does not depend on whether a purchase, its return, the
member's targeting or the offer's publication arrived first (docs/adr/0015).

It never commits (the caller's transaction also holds the checkpoints) and never reads the
clock. Rows are idempotent: insert-only on natural keys, the first of the log winning (a
member's events share one partition, the config topic has one, so the log order is the same
in every replay), and the config topic folded in log order as the member rules fold it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from processors.codec.json_form import from_json_object, to_json_object
from processors.contract.config import (
    AudienceDefined,
    AudienceUploaded,
    OfferClosed,
    OfferEndDateExtended,
    OfferPublished,
    OfferWithdrawn,
    ProgramConfigured,
    RewardStoreConfigured,
)
from processors.contract.offers import OfferBudgetExhausted, OfferTargeted
from processors.contract.transactions import TransactionCompleted, TransactionReturned
from processors.rules.offers.schedule import extension_refusal

TABLES = ("offers", "programs", "offer_audience", "member_transactions", "member_returns",
          "offer_budget_exhaustions")  # fmt: skip

ConfigEvent = (
    ProgramConfigured | OfferPublished | OfferEndDateExtended | OfferWithdrawn | OfferClosed
)
PerformanceEvent = (
    ConfigEvent | OfferTargeted | OfferBudgetExhausted | TransactionCompleted | TransactionReturned
)

EVENTS = (
    ProgramConfigured,
    OfferPublished,
    OfferEndDateExtended,
    OfferWithdrawn,
    OfferClosed,
    OfferTargeted,
    OfferBudgetExhausted,
    TransactionCompleted,
    TransactionReturned,
)
"""What this projection writes."""

PASSED_OVER = (AudienceUploaded, AudienceDefined, RewardStoreConfigured)
"""Events of its topics no table uses yet (rewards and their codes: `writers/rewards.py`;
promotions and their codes: `writers/codes.py`; challenges: `writers/challenges.py`; reward
stores are read by the API from the config topic it follows, ADR 33)."""


@dataclass
class PerformanceRows:
    """The rows a batch projects to, before any is written."""

    config: list[ConfigEvent] = field(default_factory=list)
    """Config events in log order: folded one by one, each may depend on the previous."""
    audience: dict[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)
    """(offer_id, member_id) → the first targeting of the batch."""
    transactions: dict[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)
    """(member_id, transaction_id) → the first purchase of the batch with that id."""
    returns: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    """return_id → the first return of the batch with that id."""
    exhaustions: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    """event_id → an offer's spent limit."""


def rows_of(events: Iterable[PerformanceEvent]) -> PerformanceRows:
    """Map events (in log order) to rows. Pure.

    A member's first targeting, a transaction id's first purchase and a return id's first
    return win, in the batch as in the table; anonymous purchases and returns have nobody to
    compare and are left out. A return is stored whether or not its purchase is: it counts
    against the purchase when the figures are read, whichever arrived first.
    """
    rows = PerformanceRows()
    for event in events:
        if isinstance(event, OfferTargeted):
            key = (event.offer_id, event.member_id)
            rows.audience.setdefault(key, (*key, event.in_control_group, event.occurred_at))
        elif isinstance(event, TransactionCompleted):
            if event.member_id is None:
                continue
            key = (event.member_id, event.transaction_id)
            spend = sum(line.amount_cents for line in event.lines)
            lines = Jsonb({line.line_id: line.amount_cents for line in event.lines})
            rows.transactions.setdefault(key, (*key, event.market, event.occurred_at, spend, lines))
        elif isinstance(event, OfferBudgetExhausted):
            rows.exhaustions.setdefault(
                event.event_id,
                (event.event_id, event.offer_id, event.reason.value, event.uses_granted,
                 event.points_granted, event.uses_total_max, event.budget_points_max,
                 event.occurred_at),
            )  # fmt: skip
        elif isinstance(event, TransactionReturned):
            if event.member_id is None:
                continue
            refunded = sum(line.amount_cents for line in event.lines)
            asked: dict[str, int] = {}
            for line in event.lines:  # counted at most each line's amount when read
                asked[line.line_id] = asked.get(line.line_id, 0) + line.amount_cents
            rows.returns.setdefault(
                event.return_id,
                (event.return_id, event.transaction_id, event.member_id, refunded,
                 event.occurred_at, Jsonb(asked)),
            )  # fmt: skip
        else:
            rows.config.append(event)
    return rows


_AUDIENCE = (("offer_id", "text"), ("member_id", "text"), ("in_control_group", "bool"),
             ("targeted_at", "timestamptz"))  # fmt: skip
_TRANSACTIONS = (("member_id", "text"), ("transaction_id", "text"), ("market", "text"),
                 ("occurred_at", "timestamptz"), ("spend_cents", "int8"),
                 ("line_cents", "jsonb"))  # fmt: skip
_EXHAUSTIONS = (("event_id", "text"), ("offer_id", "text"), ("reason", "text"),
                ("uses_granted", "int4"), ("points_granted", "int8"), ("uses_total_max", "int4"),
                ("budget_points_max", "int8"), ("occurred_at", "timestamptz"))  # fmt: skip
_RETURNS = (("return_id", "text"), ("transaction_id", "text"), ("member_id", "text"),
            ("refunded_cents", "int8"), ("occurred_at", "timestamptz"),
            ("line_cents", "jsonb"))  # fmt: skip

_PUBLISH = """INSERT INTO offers AS current (offer_id, program_id, market, rank, starts_at,
        ends_at, withdrawn_at, control_share_percent, definition)
    VALUES (%s, %s, %s, %s, %s, %s, NULL, %s, %s)
    ON CONFLICT (offer_id) DO UPDATE
        SET program_id = excluded.program_id, market = excluded.market, rank = excluded.rank,
            starts_at = excluded.starts_at, ends_at = excluded.ends_at, withdrawn_at = NULL,
            closed_at = NULL, control_share_percent = excluded.control_share_percent,
            definition = excluded.definition"""

_CONFIGURE = """INSERT INTO programs AS current (program_id, market,
        offer_end_date_extension_enabled, definition)
    VALUES (%s, %s, %s, %s)
    ON CONFLICT (program_id) DO UPDATE
        SET market = excluded.market,
            offer_end_date_extension_enabled = excluded.offer_end_date_extension_enabled,
            definition = excluded.definition"""


def _fold(cursor: psycopg.Cursor[Any], event: ConfigEvent) -> None:
    """One config event into `offers`/`programs`, as `processors.rules.member.Config.apply`
    folds it into the catalogue the worker evaluates with."""
    if isinstance(event, ProgramConfigured):
        definition = Jsonb(to_json_object(event))
        flag = event.offer_end_date_extension_enabled
        cursor.execute(_CONFIGURE, (event.program_id, event.market, flag, definition))
    elif isinstance(event, OfferPublished):
        cursor.execute(
            _PUBLISH,
            (
                event.offer_id, event.program_id, event.market, event.rank,
                event.schedule.starts_at, event.schedule.ends_at,
                event.targeting.control_share_percent, Jsonb(to_json_object(event)),
            ),
        )  # fmt: skip
    elif isinstance(event, OfferWithdrawn):
        cursor.execute(
            "UPDATE offers SET withdrawn_at = %s WHERE offer_id = %s AND withdrawn_at IS NULL",
            (event.occurred_at, event.offer_id),
        )
    elif isinstance(event, OfferClosed):
        # As the catalogue closes it (processors.rules.offers.catalogue): once, while open.
        cursor.execute(
            "UPDATE offers SET closed_at = %s WHERE offer_id = %s AND withdrawn_at IS NULL"
            " AND closed_at IS NULL",
            (event.occurred_at, event.offer_id),
        )
    else:
        _extend(cursor, event)


def _extend(cursor: psycopg.Cursor[Any], event: OfferEndDateExtended) -> None:
    # The rules' own judgement (feature flag, live, later, not within 24 h of the end): an
    # extension the worker refused must not widen the window counted here.
    found = cursor.execute(
        "SELECT o.definition, o.ends_at, p.offer_end_date_extension_enabled, o.closed_at"
        " FROM offers o LEFT JOIN programs p ON p.program_id = o.program_id"
        " WHERE o.offer_id = %s AND o.withdrawn_at IS NULL",
        (event.offer_id,),
    ).fetchone()
    if found is None:
        return  # unknown or withdrawn: the catalogue refuses it too
    definition, ends_at, enabled, closed_at = found
    offer = from_json_object(definition)
    assert isinstance(offer, OfferPublished), "offers.definition holds OfferPublished"
    refusal = extension_refusal(
        offer,
        ends_at,
        event.ends_at,
        at=event.occurred_at,
        enabled=bool(enabled),
        completed=closed_at is not None,
    )
    if refusal is None:
        cursor.execute(
            "UPDATE offers SET ends_at = %s WHERE offer_id = %s", (event.ends_at, event.offer_id)
        )


def _copy_insert(
    cursor: psycopg.Cursor[Any],
    table: str,
    columns: tuple[tuple[str, str], ...],
    rows: Iterable[tuple[Any, ...]],
) -> None:
    # Session-local staging, emptied at every commit and before every use; named apart from
    # the other writers' stages.
    target, stage = sql.Identifier(table), sql.Identifier("pg_temp", f"stage_{table}")
    names = sql.SQL(", ").join(sql.Identifier(column) for column, _ in columns)
    cursor.execute(
        sql.SQL(
            "CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {target}) ON COMMIT DELETE ROWS;"
            " DELETE FROM {stage}"
        ).format(stage=sql.Identifier(f"stage_{table}"), target=target)
    )
    copying = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(stage, names)
    with cursor.copy(copying) as copy:
        copy.set_types([kind for _, kind in columns])
        for row in rows:
            copy.write_row(row)
    # The first of the log holds: a redelivery, or a later event with the same key, is a no-op.
    cursor.execute(
        sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT DO NOTHING").format(
            target, names, names, stage
        )
    )


def write(conn: psycopg.Connection, events: Sequence[PerformanceEvent]) -> None:
    """Project `events` (in log order per partition) in the caller's transaction."""
    if not events:
        return
    rows = rows_of(events)
    with conn.cursor() as cursor:
        for event in rows.config:
            _fold(cursor, event)
        if rows.audience:
            _copy_insert(cursor, "offer_audience", _AUDIENCE, rows.audience.values())
        if rows.transactions:
            _copy_insert(cursor, "member_transactions", _TRANSACTIONS, rows.transactions.values())
        if rows.returns:
            _copy_insert(cursor, "member_returns", _RETURNS, rows.returns.values())
        if rows.exhaustions:
            _copy_insert(
                cursor, "offer_budget_exhaustions", _EXHAUSTIONS, rows.exhaustions.values()
            )
