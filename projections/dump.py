"""The canonical dump of a projection's tables, and its sha256: "replay equals live" as a check.

Owns one text form of the tables: every row of every table, tables by name, rows by primary key
(text keys in byte order, `COLLATE "C"`), each row as Postgres's COPY text with UTC times and
ISO dates, so the same rows give the same bytes whatever the session or the schema they are
in. It only reads; infrastructure (`projection_checkpoints`, `schema_migrations`) is left out
because it records positions and clock times, not what the events say.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import BinaryIO

import psycopg
from psycopg import sql

from projections.projection import TABLES

_TEXT_TYPES = {"text", "character varying", "character"}


def _ordering(conn: psycopg.Connection, relation: str) -> sql.Composable:
    rows = conn.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod)"
        " FROM pg_index i JOIN pg_attribute a"
        "   ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
        " WHERE i.indrelid = %s::regclass AND i.indisprimary"
        " ORDER BY array_position(i.indkey::int2[], a.attnum)",
        (relation,),
    ).fetchall()
    if not rows:
        raise ValueError(f"{relation} has no primary key: its rows have no canonical order")
    return sql.SQL(", ").join(
        sql.SQL('{} COLLATE "C"').format(sql.Identifier(name))
        if kind.split("(")[0] in _TEXT_TYPES
        else sql.Identifier(name)
        for name, kind in rows
    )


def chunks(
    conn: psycopg.Connection, *, schema: str | None = None, tables: Iterable[str] = TABLES
) -> Iterator[bytes]:
    """The dump as bytes, piece by piece: a `-- table (columns)` line, then its rows.

    `schema`: dump that schema's tables; None: the ones the search path finds. Runs in a
    transaction of its own (a savepoint inside the caller's), so the settings it fixes for the
    text form do not leak.
    """
    with conn.transaction():
        conn.execute("SET LOCAL TimeZone = 'UTC'")
        conn.execute("SET LOCAL DateStyle = 'ISO, YMD'")
        conn.execute("SET LOCAL IntervalStyle = 'iso_8601'")
        conn.execute("SET LOCAL extra_float_digits = 3")
        for table in sorted(tables):
            name = sql.Identifier(schema, table) if schema else sql.Identifier(table)
            relation = f"{schema}.{table}" if schema else table
            names = [
                row[0]
                for row in conn.execute(
                    "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass"
                    " AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                    (relation,),
                )
            ]
            yield f"-- {table} ({', '.join(names)})\n".encode()
            query = sql.SQL("COPY (SELECT {} FROM {} ORDER BY {}) TO STDOUT").format(
                sql.SQL(", ").join(map(sql.Identifier, names)), name, _ordering(conn, relation)
            )
            with conn.cursor().copy(query) as copy:
                yield from (bytes(data) for data in copy)


def write(
    conn: psycopg.Connection,
    out: BinaryIO | None = None,
    *,
    schema: str | None = None,
    tables: Iterable[str] = TABLES,
) -> str:
    """Write the dump to `out` (if given) and return its sha256 (hex)."""
    digest = hashlib.sha256()
    for chunk in chunks(conn, schema=schema, tables=tables):
        digest.update(chunk)
        if out is not None:
            out.write(chunk)
    return digest.hexdigest()


def sha256(
    conn: psycopg.Connection, *, schema: str | None = None, tables: Iterable[str] = TABLES
) -> str:
    """The sha256 (hex) of the canonical dump."""
    return write(conn, None, schema=schema, tables=tables)
