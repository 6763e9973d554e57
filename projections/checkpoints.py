"""Projection checkpoints: where each projection has got to in each topic partition.

Owns the rows of `projection_checkpoints`. A checkpoint is the offset of the next record to
apply; it is written inside the transaction that writes the rows it covers, so Postgres, not
Kafka's committed offsets, is the source of truth for positions (DESIGN.md §7). Every function
here runs in the caller's transaction; none commits, and none touches another projection's rows.

Two ways to use it:
- per record, as STYLE.md shows: `if advance(conn, ...): apply(...)`;
- per partition batch (what the runner does, one round trip instead of one per record):
  `claim` locks the partition's row and says where it stands, the caller applies the records
  at or after that offset, then `store` moves the row past the batch.
"""

from __future__ import annotations

from collections.abc import Iterable

import psycopg

Partition = tuple[str, int]
"""(topic, partition)."""


def load(conn: psycopg.Connection, projection: str, topics: Iterable[str]) -> dict[Partition, int]:
    """The stored next offsets of `projection` in `topics`; partitions never applied are absent."""
    rows = conn.execute(
        "SELECT topic, partition, next_offset FROM projection_checkpoints"
        " WHERE projection = %s AND topic = ANY(%s)",
        (projection, list(topics)),
    ).fetchall()
    return {(topic, partition): next_offset for topic, partition, next_offset in rows}


def advance(
    conn: psycopg.Connection, projection: str, topic: str, partition: int, offset: int
) -> bool:
    """Move the checkpoint past `offset` if it is new (>= the stored next offset).

    True means the record at `offset` has not been applied and the caller must apply it now, in
    this transaction; False means it was applied before (a redelivery) and must be ignored.
    """
    row = conn.execute(
        "INSERT INTO projection_checkpoints (projection, topic, partition, next_offset)"
        " VALUES (%(projection)s, %(topic)s, %(partition)s, %(offset)s + 1)"
        " ON CONFLICT (projection, topic, partition) DO UPDATE"
        " SET next_offset = excluded.next_offset, updated_at = now()"
        " WHERE projection_checkpoints.next_offset <= %(offset)s"
        " RETURNING 1",
        {"projection": projection, "topic": topic, "partition": partition, "offset": offset},
    ).fetchone()
    return row is not None


def claim(conn: psycopg.Connection, projection: str, topic: str, partition: int) -> int:
    """Lock the partition's checkpoint until the transaction ends and return its next offset
    (0 for a partition never applied).

    The lock serialises writers of one partition: a second projector (after a rebalance) or
    `loyalty rebuild`'s swap waits here, then sees the committed position, so a batch is never
    applied twice even when two processes hold it at once.
    """
    # The no-op update is what takes the row lock when the row exists; when it does not, the
    # insert creates it, and a concurrent inserter waits for this transaction.
    row = conn.execute(
        "INSERT INTO projection_checkpoints (projection, topic, partition, next_offset)"
        " VALUES (%s, %s, %s, 0)"
        " ON CONFLICT (projection, topic, partition) DO UPDATE"
        " SET next_offset = projection_checkpoints.next_offset"
        " RETURNING next_offset",
        (projection, topic, partition),
    ).fetchone()
    assert row is not None, "an upsert with DO UPDATE always returns its row"
    next_offset: int = row[0]
    return next_offset


def store(
    conn: psycopg.Connection, projection: str, topic: str, partition: int, next_offset: int
) -> None:
    """Set the partition's next offset, after `claim` in the same transaction. Never moves a
    checkpoint backwards."""
    conn.execute(
        "UPDATE projection_checkpoints SET next_offset = %s, updated_at = now()"
        " WHERE projection = %s AND topic = %s AND partition = %s AND next_offset < %s",
        (next_offset, projection, topic, partition, next_offset),
    )
