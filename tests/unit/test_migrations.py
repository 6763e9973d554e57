"""Migration files are numbered, ordered and never skipped silently."""

from projections.migrate import migration_files


def test_migrations_are_numbered_without_gaps():
    numbers = [int(path.name[:4]) for path in migration_files()]
    assert numbers == list(range(1, len(numbers) + 1))


def test_the_first_migration_creates_the_checkpoints_table():
    first = migration_files()[0].read_text()
    assert "CREATE TABLE projection_checkpoints" in first
