"""Connections to the projections' Postgres, pointed at one schema.

Owns how a process reaches the projection tables: the table names in every query are
unqualified, so the schema a connection's search path names is the one read and written. The
live tables are in the database's default schema (`public`); `loyalty rebuild` and the tests
point the same writers at other schemas. It never creates or alters tables (`migrate` does).
"""

from __future__ import annotations

import re

import psycopg

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def check_schema_name(schema: str) -> str:
    """`schema` if it is a plain lower-case identifier; ValueError otherwise.

    Schema names end up in search paths and DDL, so only names that need no quoting are
    accepted: what the engine creates (`rebuild_3`, `retired_3`) and what an operator types.
    """
    if not _SCHEMA_NAME.fullmatch(schema):
        raise ValueError(f"schema name must match [a-z_][a-z0-9_]*: {schema!r}")
    return schema


def connect(dsn: str, *, schema: str | None = None, autocommit: bool = False) -> psycopg.Connection:
    """A connection to `dsn` whose unqualified table names resolve in `schema` (default: the
    database's own search path, i.e. the live tables)."""
    conn = psycopg.connect(dsn, autocommit=autocommit)
    if schema is not None:
        # set_config takes the value as a parameter; the name was checked to need no quoting.
        conn.execute("SELECT set_config('search_path', %s, false)", (check_schema_name(schema),))
        if not autocommit:
            conn.commit()
    return conn
