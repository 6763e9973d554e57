"""Projection checkpoints: where each projection has got to in each topic partition.

Owns the rows of `projection_checkpoints`. A checkpoint is the offset of the next record to
apply; it is written inside the transaction that writes the rows it covers, so Postgres, not
Kafka's committed offsets, is the source of truth for positions (DESIGN.md §7). Every function
here runs in the caller's transaction; none commits, and none touches another projection's rows.

Two ways to use it:
- per record, as STYLE.md shows: `if advance(conn, ...): apply(...)`;
- per batch of partitions (what the runner does): `claim` locks the partitions' rows and says
  where each stands, the caller applies the records at or after each offset, then `store`
  moves the rows past the batch; one round trip each for all the transaction's partitions.
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


def claim(
    conn: psycopg.Connection, projection: str, partitions: list[Partition]
) -> dict[Partition, int]:
    """Lock the checkpoints of `partitions` until the transaction ends, in the order given
    (sort them: two projectors then never deadlock on each other), and return their next
    offsets (0 for a partition never applied); one round trip.

    The lock serialises writers of one partition: a second projector (after a rebalance) or
    `loyalty rebuild`'s swap waits here, then sees the committed position, so a batch is never
    applied twice even when two processes hold it at once. The no-op update is what takes the
    row lock when the row exists; when it does not, the insert creates it, and a concurrent
    inserter waits for this transaction.
    """
    if not partitions:
        return {}
    rows = conn.execute(
        "INSERT INTO projection_checkpoints (projection, topic, partition, next_offset)"
        " SELECT %s, topic, partition, 0"
        " FROM unnest(%s::text[], %s::int[]) WITH ORDINALITY AS claimed(topic, partition, n)"
        " ORDER BY n"
        " ON CONFLICT (projection, topic, partition) DO UPDATE"
        " SET next_offset = projection_checkpoints.next_offset"
        " RETURNING topic, partition, next_offset",
        (projection, [t for t, _ in partitions], [p for _, p in partitions]),
    ).fetchall()
    return {(topic, partition): next_offset for topic, partition, next_offset in rows}


def store(conn: psycopg.Connection, projection: str, next_offsets: dict[Partition, int]) -> None:
    """Set the next offsets of `next_offsets`' partitions, after `claim` in the same
    transaction; one round trip. Never moves a checkpoint backwards."""
    if not next_offsets:
        return
    conn.execute(
        "UPDATE projection_checkpoints AS c SET next_offset = s.next_offset, updated_at = now()"
        " FROM unnest(%s::text[], %s::int[], %s::bigint[]) AS s(topic, partition, next_offset)"
        " WHERE c.projection = %s AND c.topic = s.topic AND c.partition = s.partition"
        " AND c.next_offset < s.next_offset",
        (
            [t for t, _ in next_offsets],
            [p for _, p in next_offsets],
            list(next_offsets.values()),
            projection,
        ),
    )
