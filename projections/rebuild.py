"""`loyalty rebuild`: replay the ledger projection from offset 0 into fresh tables, then swap
them in for the live ones in one transaction.

Owns the rebuild's life cycle and the swap (ADR 9,
docs/adr/0009-ledger-projection-checkpoints-and-rebuild.md):

1. Create schema `rebuild_<n>` and apply every migration there: a full, empty copy of the
   projection tables next to the live ones, which keep serving reads meanwhile.
2. Replay both topics from offset 0 into it with the ordinary projector (no consumer group),
   up to the end offsets seen when the rebuild started.
3. One transaction: lock the live `projection_checkpoints` (a live projector's next batch
   waits at its checkpoint claim; readers are not blocked until the renames), then, table by
   table, `ALTER TABLE live.t SET SCHEMA retired_<n>` and `ALTER TABLE rebuild_<n>.t SET SCHEMA
   live`, and replace this projection's checkpoint rows with the rebuild's. Readers see the
   old tables or the new ones, never a mix; moving tables (not renaming schemas) invalidates
   every cached plan, so long-lived connections (the API's pool, a running projector) resolve
   the names to the new tables at their next statement.
4. A live projector finds its checkpoint behind its consumer position and re-reads the records
   produced since the rebuild started (see `projections.projection.apply`).
5. Drop `rebuild_<n>` (its leftovers) and `retired_<n>` (the old tables; `keep_old` keeps it).

It never touches other projections' tables or checkpoints, and never modifies the live tables:
they are moved aside whole.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from processors.base.logs import get_logger
from projections import db, dump
from projections.migrate import apply_migrations
from projections.projection import PROJECTION, TABLES
from projections.runner import Projector, ProjectorConfig, RunReport, contract_topic_map

log = get_logger(__name__)

_REBUILD_LOCK = 0x10A1_7E6  # one rebuild at a time per database
_LOCK_TIMEOUT = "60s"
_SWAP_ATTEMPTS = 5


@dataclass
class TableDifference:
    """One table whose live and rebuilt rows differ: counts, and up to a few rows (as text)
    found on one side only."""

    table: str
    live_rows: int
    rebuilt_rows: int
    only_live: list[str]
    only_rebuilt: list[str]


@dataclass
class RebuildReport:
    """What a rebuild did, and what it found when asked to verify."""

    schema: str
    live_schema: str
    records: int = 0
    events_applied: int = 0
    refused: int = 0
    positions: dict[tuple[str, int], int] = field(default_factory=dict)
    live_positions: dict[tuple[str, int], int] | None = None
    rebuilt_sha256: str | None = None
    live_sha256: str | None = None
    swapped: bool = False
    retired_schema: str | None = None
    differences: list[TableDifference] = field(default_factory=list)
    """When verified and different: each table whose rows differ, with examples."""
    swap_refused: bool = False
    """Verified, found different, and so not swapped in (unless forced)."""

    @property
    def comparable(self) -> bool:
        """Whether live and rebuilt tables cover the same records (equal checkpoints), so their
        hashes must be equal."""
        return self.live_positions is not None and self.live_positions == self.positions

    @property
    def identical(self) -> bool | None:
        """True/False when the hashes were computed at equal positions; None otherwise."""
        if self.rebuilt_sha256 is None or not self.comparable:
            return None
        return self.rebuilt_sha256 == self.live_sha256


async def rebuild(
    dsn: str,
    bootstrap_servers: str,
    *,
    topics: Mapping[str, str] | None = None,
    live_schema: str | None = None,
    verify: bool = False,
    swap: bool = True,
    swap_anyway: bool = False,
    keep_old: bool = False,
    max_records: int = 5000,
    on_committed: Callable[[RunReport, int | None], None] | None = None,
) -> RebuildReport:
    """Rebuild the ledger projection from offset 0 and (with `swap`) make it the live one.

    `live_schema`: where the live tables are (default: the database's current schema,
    `public`). `verify`: hash both table sets in the swap transaction; when they cover the
    same offsets and differ, the tables and rows that differ are reported and nothing is
    swapped, unless `swap_anyway`. `on_committed`: the replay's progress
    (`Projector.run`).
    """
    topics = dict(topics or contract_topic_map())
    with db.connect(dsn, schema=live_schema, autocommit=True) as admin:
        live = live_schema or _current_schema(admin)
        admin.execute("SELECT pg_advisory_lock(%s)", (_REBUILD_LOCK,))
        try:
            number = _next_number(admin)
            report = RebuildReport(schema=f"rebuild_{number}", live_schema=live)
            try:
                await asyncio.to_thread(apply_migrations, dsn, schema=report.schema)
                config = ProjectorConfig(
                    dsn, bootstrap_servers, topics, group_id=None, schema=report.schema,
                    max_records=max_records,
                )  # fmt: skip
                run = await Projector(config).run(until_caught_up=True, on_committed=on_committed)
                report.records, report.events_applied = run.records, run.events_applied
                report.refused = run.refused
                log.info("rebuild.replayed", schema=report.schema, records=run.records)
                # In a thread: the swap may wait for locks, and the caller's loop runs on.
                await asyncio.to_thread(
                    _in_transaction,
                    admin,
                    report,
                    list(topics),
                    verify=verify,
                    swap=swap,
                    swap_anyway=swap_anyway,
                )
            finally:
                _drop(admin, report.schema)  # after a swap, only its leftovers
            if report.retired_schema and not keep_old:
                _drop(admin, report.retired_schema)
                report.retired_schema = None
        finally:
            admin.execute("SELECT pg_advisory_unlock(%s)", (_REBUILD_LOCK,))
    return report


def _in_transaction(
    conn: psycopg.Connection,
    report: RebuildReport,
    topics: list[str],
    *,
    verify: bool,
    swap: bool,
    swap_anyway: bool,
) -> None:
    # A reader holding one table while asking for another can deadlock with the swap, which
    # takes them one by one; Postgres then aborts one side. The swap is retried a few times
    # rather than throw the replay away.
    for attempt in range(1, _SWAP_ATTEMPTS + 1):
        try:
            with conn.transaction():
                _compare_or_swap(conn, report, topics, verify=verify, swap=swap,
                                 swap_anyway=swap_anyway)  # fmt: skip
            return
        except (psycopg.errors.DeadlockDetected, psycopg.errors.LockNotAvailable) as error:
            if attempt == _SWAP_ATTEMPTS:
                raise
            log.warning("rebuild.swap_retried", attempt=attempt, error=repr(error)[:300])
            time.sleep(attempt)


def _compare_or_swap(
    conn: psycopg.Connection,
    report: RebuildReport,
    topics: list[str],
    *,
    verify: bool,
    swap: bool,
    swap_anyway: bool,
) -> None:
    live, rebuilt = report.live_schema, report.schema
    conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(_LOCK_TIMEOUT)))
    # Every projector transaction starts by claiming its checkpoint: from here on, the live
    # tables are still (a projector's batch waits), and stay so until this transaction ends.
    conn.execute(
        sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(
            sql.Identifier(live, "projection_checkpoints")
        )
    )
    _check_same_migrations(conn, live, rebuilt)
    report.positions = _positions(conn, rebuilt, topics)
    if verify:
        report.live_positions = _positions(conn, live, topics)
        report.rebuilt_sha256 = dump.sha256(conn, schema=rebuilt)
        report.live_sha256 = dump.sha256(conn, schema=live)
        if report.identical is False:
            report.differences = _differences(conn, live, rebuilt)
            log.error("rebuild.different", tables=[d.table for d in report.differences])
            if not swap_anyway:
                report.swap_refused = swap
                return
    if not swap:
        return
    retired = rebuilt.replace("rebuild_", "retired_")
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(retired)))
    for table in TABLES:
        conn.execute(
            sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
                sql.Identifier(live, table), sql.Identifier(retired)
            )
        )
        conn.execute(
            sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
                sql.Identifier(rebuilt, table), sql.Identifier(live)
            )
        )
    _repoint(conn, live, rebuilt)
    conn.execute(
        sql.SQL("DELETE FROM {} WHERE projection = %s AND topic = ANY(%s)").format(
            sql.Identifier(live, "projection_checkpoints")
        ),
        (PROJECTION, topics),
    )
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (projection, topic, partition, next_offset, updated_at)"
            " SELECT projection, topic, partition, next_offset, updated_at FROM {}"
            " WHERE projection = %s AND topic = ANY(%s)"
        ).format(
            sql.Identifier(live, "projection_checkpoints"),
            sql.Identifier(rebuilt, "projection_checkpoints"),
        ),
        (PROJECTION, topics),
    )
    # The API processes keep feeds until a written row notifies them (migrations 0020, 0031);
    # a swap writes none, so it says every table changed: `feed:*` (delivered at commit).
    conn.execute("SELECT pg_notify('loyalty_decided', 'feed:*')")
    report.swapped, report.retired_schema = True, retired
    log.info("rebuild.swapped", live=live, rebuilt=rebuilt, retired=retired)


def _repoint(conn: psycopg.Connection, live: str, rebuilt: str) -> None:
    """After the tables moved: their triggers and the views call the live schema's functions
    and read the live tables, not the rebuilt schema's copies, which are dropped with it.

    The migrations applied to the rebuilt schema made its own trigger functions, views and
    functions; the swapped-in tables' triggers named those functions, and the live views read
    the tables now retired, so dropping either schema (CASCADE) took them with it (found in
    review: after a rebuild no table notified anybody, and the views that read tables were
    gone). Each such trigger is made again on the live function of the same name, and each
    view replaced by the rebuilt one's definition, read with the live schema first on the
    path; the live functions are the same migrations' (`_check_same_migrations`)."""
    conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(live)))
    prefix = f"{rebuilt}."
    triggers = conn.execute(
        "SELECT t.tgname, c.relname, pg_get_triggerdef(t.oid) FROM pg_trigger t"
        " JOIN pg_class c ON c.oid = t.tgrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_namespace f ON f.oid = p.pronamespace"
        " WHERE NOT t.tgisinternal AND n.nspname = %s AND f.nspname = %s"
        " ORDER BY c.relname, t.tgname",
        (live, rebuilt),
    ).fetchall()
    for name, table, definition in triggers:
        conn.execute(
            sql.SQL("DROP TRIGGER {} ON {}").format(
                sql.Identifier(name), sql.Identifier(live, table)
            )
        )
        conn.execute(definition.replace(prefix, ""))  # the catalogue's own DDL
    views = conn.execute(
        "SELECT c.relname, pg_get_viewdef(c.oid) FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind = 'v' AND n.nspname = %s ORDER BY c.oid",
        (rebuilt,),
    ).fetchall()
    for name, definition in views:
        conn.execute(
            sql.SQL("CREATE OR REPLACE VIEW {} AS ").format(sql.Identifier(live, name))
            + sql.SQL(definition.replace(prefix, ""))
        )


def _differences(
    conn: psycopg.Connection, live: str, rebuilt: str, examples: int = 5
) -> list[TableDifference]:
    """The tables whose rows differ between the two schemas, with up to `examples` rows from
    each side that the other lacks (rows as Postgres's text form of the record)."""
    found = []
    for table in TABLES:
        if dump.sha256(conn, schema=live, tables=[table]) == dump.sha256(
            conn, schema=rebuilt, tables=[table]
        ):
            continue
        a, b = sql.Identifier(live, table), sql.Identifier(rebuilt, table)

        def count(relation: sql.Identifier) -> int:
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(relation)).fetchone()
            return int(row[0]) if row else 0

        def only(left: sql.Identifier, right: sql.Identifier) -> list[str]:
            query = sql.SQL(
                "SELECT t::text FROM (SELECT * FROM {} EXCEPT SELECT * FROM {}) t"
                " ORDER BY 1 LIMIT {}"
            ).format(left, right, sql.Literal(examples))
            return [str(row[0]) for row in conn.execute(query)]

        found.append(TableDifference(table, count(a), count(b), only(a, b), only(b, a)))
    return found


def _positions(
    conn: psycopg.Connection, schema: str, topics: list[str]
) -> dict[tuple[str, int], int]:
    query = sql.SQL(
        "SELECT topic, partition, next_offset FROM {} WHERE projection = %s AND topic = ANY(%s)"
    ).format(sql.Identifier(schema, "projection_checkpoints"))
    return {(t, p): offset for t, p, offset in conn.execute(query, (PROJECTION, topics))}


def _check_same_migrations(conn: psycopg.Connection, live: str, rebuilt: str) -> None:
    def applied(schema: str) -> list[str]:
        query = sql.SQL("SELECT name FROM {} ORDER BY name").format(
            sql.Identifier(schema, "schema_migrations")
        )
        return [row[0] for row in conn.execute(query)]

    if applied(live) != applied(rebuilt):
        raise RuntimeError(
            f"schema {live} is not at the same migration as {rebuilt}: run `loyalty migrate` first"
        )


def _current_schema(conn: psycopg.Connection) -> str:
    row = conn.execute("SELECT current_schema()").fetchone()
    if row is None or row[0] is None:
        raise RuntimeError("the connection's search path names no existing schema")
    return db.check_schema_name(row[0])


def _next_number(conn: psycopg.Connection) -> int:
    row = conn.execute(
        "SELECT coalesce(max(substring(nspname FROM '_([0-9]+)$')::int), 0) + 1"
        " FROM pg_namespace WHERE nspname ~ '^(rebuild|retired)_[0-9]+$'"
    ).fetchone()
    assert row is not None
    number: int = row[0]
    return number


def _drop(conn: psycopg.Connection, schema: str) -> None:
    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
