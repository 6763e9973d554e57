"""Schema migrations: numbered SQL files in `projections/sql`, applied once each, in order.

Each file runs in its own transaction together with its row in `schema_migrations`, under an
advisory lock, so concurrent `migrate` calls (several test workers, a worker and the API
starting together) apply each file exactly once.

The files name no schema: they create their tables in the first schema of the search path.
By default that is the connection's own (normally `public`); `schema=` migrates another one
from scratch, with its own `schema_migrations`, which is how `loyalty rebuild` gets a fresh
copy of the projection tables beside the live ones.
"""

from __future__ import annotations

import contextlib
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
            done = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
            for path in migration_files():
                if path.name in done:
                    continue
                with conn.transaction():
                    conn.execute(path.read_text())  # a trusted file of ours, not user input
                    conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (path.name,))
                applied_now.append(path.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now


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
