"""Schema migrations: numbered SQL files in `projections/sql`, applied once each, in order.

Each file runs in its own transaction together with its row in `schema_migrations`, under an
advisory lock, so concurrent `migrate` calls (several test workers, a worker and the API
starting together) apply each file exactly once.

Each row keeps the sha256 of the file it applied. A file edited after it was applied would
leave the database's schema other than the code expects, unnoticed (its new lines never run):
`apply_migrations` refuses to go on (`MigrationChangedError`, naming the files) instead. Rows
recorded before checksums were kept take the file's checksum the first time they are seen.

The files name no schema: they create their tables in the first schema of the search path.
By default that is the connection's own (normally `public`); `schema=` migrates another one
from scratch, with its own `schema_migrations`, which is how `loyalty rebuild` gets a fresh
copy of the projection tables beside the live ones.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import sql

from projections.db import check_schema_name

SQL_DIR = Path(__file__).resolve().parent / "sql"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# Any constant shared by every process that migrates this database.
_LOCK_KEY = 0x10A1_7E5


class MigrationChangedError(RuntimeError):
    """Migration files differ from what the database applied under their names."""


def checksum(path: Path) -> str:
    """The sha256 (hex) of a migration file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def migration_files() -> list[Path]:
    """The migration files in the order they apply; a misnamed file is an error, not skipped."""
    files = sorted(SQL_DIR.glob("*.sql"))
    for path in files:
        if not _NAME.match(path.name):
            raise ValueError(f"migration file name must look like 0001_name.sql: {path.name}")
    return files


def apply_migrations(dsn: str, *, schema: str | None = None) -> list[str]:
    """Apply every migration not yet applied to the database at `dsn`; return their names.

    `schema`: migrate that schema (created if missing) instead of the connection's default.
    """
    applied_now: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        if schema is not None:
            name = sql.Identifier(check_schema_name(schema))
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(name))
            conn.execute(sql.SQL("SET search_path TO {}").format(name))
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            conn.execute("ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS sha256 text")
            rows = conn.execute("SELECT name, sha256 FROM schema_migrations").fetchall()
            done: dict[str, str | None] = dict(rows)
            files = migration_files()
            _check_unchanged(conn, files, done)
            for path in files:
                if path.name in done:
                    continue
                with conn.transaction():
                    conn.execute(path.read_text())  # a trusted file of ours, not user input
                    conn.execute(
                        "INSERT INTO schema_migrations (name, sha256) VALUES (%s, %s)",
                        (path.name, checksum(path)),
                    )
                applied_now.append(path.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now


def _check_unchanged(
    conn: psycopg.Connection, files: list[Path], done: dict[str, str | None]
) -> None:
    """Raise `MigrationChangedError` if an applied file's bytes changed since; record the checksum
    of applied rows that have none yet."""
    changed = []
    for path in files:
        if path.name not in done:
            continue
        recorded, current = done[path.name], checksum(path)
        if recorded is None:
            conn.execute(
                "UPDATE schema_migrations SET sha256 = %s WHERE name = %s", (current, path.name)
            )
        elif recorded != current:
            changed.append(path.name)
    if changed:
        raise MigrationChangedError(
            f"migration file(s) {', '.join(changed)} changed after this database applied them: "
            "its schema is not what they now say. Restore the files and add a new migration "
            "for the change, or rebuild the database."
        )


@contextlib.contextmanager
def temporary_database(admin_dsn: str, prefix: str = "loyalty_tmp") -> Iterator[str]:
    """A new, migrated database on the server of `admin_dsn`, dropped on exit (tests and
    benchmarks that must not share tables with anything else)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = psycopg.conninfo.make_conninfo(admin_dsn, dbname=name)
    try:
        apply_migrations(dsn)
        yield dsn
    finally:
        _drop_database(admin_dsn, name)


def _drop_database(admin_dsn: str, name: str, attempts: int = 20) -> None:
    """DROP DATABASE ... WITH (FORCE), again for a while when a backend this role may not
    end holds it (an autovacuum worker on the fresh tables): it goes away on its own."""
    statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    for attempt in range(attempts):
        try:
            with psycopg.connect(admin_dsn, autocommit=True) as conn:
                conn.execute(statement)
            return
        except psycopg.errors.InsufficientPrivilege:
            if attempt == attempts - 1:
                raise
            time.sleep(0.25)
