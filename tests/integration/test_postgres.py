"""The real Postgres: migrations apply once, rows are written and read, checkpoints are atomic."""

import psycopg
import pytest

from projections.migrate import MigrationChangedError, apply_migrations, checksum, migration_files

pytestmark = pytest.mark.integration


def test_migrations_are_recorded_and_a_second_run_applies_nothing(database_url):
    assert apply_migrations(database_url) == []
    with psycopg.connect(database_url) as conn:
        names = [row[0] for row in conn.execute("SELECT name FROM schema_migrations ORDER BY name")]
    assert names == [path.name for path in migration_files()]


def test_a_migration_file_changed_after_it_was_applied_stops_the_migration(database_url):
    first = migration_files()[0]
    with psycopg.connect(database_url, autocommit=True) as conn:
        (recorded,) = conn.execute(
            "SELECT sha256 FROM schema_migrations WHERE name = %s", (first.name,)
        ).fetchone()
        assert recorded == checksum(first)
        # As if the file had been edited since: the database applied other bytes.
        conn.execute("UPDATE schema_migrations SET sha256 = 'f00d' WHERE name = %s", (first.name,))
        try:
            with pytest.raises(MigrationChangedError, match=first.name):
                apply_migrations(database_url)
        finally:
            conn.execute(
                "UPDATE schema_migrations SET sha256 = NULL WHERE name = %s", (first.name,)
            )
    # A row recorded before checksums were kept takes the file's on the next run.
    assert apply_migrations(database_url) == []
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT sha256 FROM schema_migrations WHERE name = %s", (first.name,)
        ).fetchone()
    assert row == (checksum(first),)


def write_checkpoint_and_rows(conn, rows_sql):
    with conn.transaction():
        conn.execute(
            "INSERT INTO projection_checkpoints (projection, topic, partition, next_offset)"
            " VALUES ('p', 't', 0, 10)"
        )
        conn.execute(f"INSERT INTO scratch_rows VALUES {rows_sql}")


def test_a_checkpoint_written_with_rows_rolls_back_with_them(database_url):
    with psycopg.connect(database_url) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS scratch_rows (id text PRIMARY KEY)")
        conn.commit()
        with pytest.raises(psycopg.errors.UniqueViolation):
            write_checkpoint_and_rows(conn, "('a'), ('a')")
        assert conn.execute("SELECT count(*) FROM projection_checkpoints").fetchone() == (0,)

        write_checkpoint_and_rows(conn, "('a')")
        row = conn.execute("SELECT next_offset FROM projection_checkpoints").fetchone()
        assert row == (10,)
        assert conn.execute("SELECT id FROM scratch_rows").fetchall() == [("a",)]


def test_negative_offsets_are_refused(database_url):
    with psycopg.connect(database_url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "INSERT INTO projection_checkpoints (projection, topic, partition, next_offset)"
            " VALUES ('p', 't', 1, -1)"
        )
