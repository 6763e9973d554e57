"""Session fixtures that give tests a real Kafka broker and a real Postgres.

Where they come from, in order:
1. `KAFKA_BOOTSTRAP` / `DATABASE_URL` when set (an existing stack);
2. testcontainers, when a Docker engine answers;
3. the local stack (`loyalty stack up`: the broker's jars via Maven, Debian's PostgreSQL).

Isolation: every test run gets its own database (`loyalty_test_<hex>`, migrated, dropped at
the end) and tests create uniquely named topics. Under `CI=true` an unavailable service fails
the test loudly; it is never skipped there.
"""

from __future__ import annotations

import contextlib
import gc
import os
import uuid
from collections.abc import Awaitable, Callable, Iterator

import pytest

# Every purchase record a member's saved state reuses is checked against its fresh JSON, in
# this process and in the workers the tests start (processors.rules.member.dump_state).
os.environ.setdefault("LOYALTY_VERIFY_SAVED_STATE", "1")

from loyalty import stack
from loyalty.stack import kafka
from processors.base.settings import Settings
from projections.migrate import temporary_database

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(autouse=True)
def _collector_left_as_found() -> Iterator[None]:
    """A test that runs a benchmark's code calls `tune_gc`, which freezes the heap and makes
    this whole process collect between batches only: put it back for the next test."""
    yield
    from processors.base.tuning import BETWEEN_BATCHES

    BETWEEN_BATCHES.enabled = False
    gc.unfreeze()
    gc.enable()


def service_unavailable(reason: str) -> None:
    """Fail under CI, skip elsewhere (a developer without the stack still runs unit tests)."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: a missing service is a failure)", pytrace=False)
    pytest.skip(reason)


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:  # noqa: BLE001 - any failure means "no Docker engine here"
        return False
    return True


@pytest.fixture(scope="session")
def stack_settings() -> Iterator[Settings]:
    """Settings pointing at a healthy broker and database, with topics and migrations applied."""
    settings = Settings()
    with contextlib.ExitStack() as cleanup:
        if (
            settings.kafka_bootstrap is None or settings.database_url is None
        ) and _docker_answers():
            settings = cleanup.enter_context(_containers(settings))
        try:
            stack.up(settings)
        except stack.StackError as error:
            service_unavailable(f"the real stack could not be started: {error}")
        yield settings


@contextlib.contextmanager
def _containers(settings: Settings) -> Iterator[Settings]:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    updates: dict[str, str] = {}
    with contextlib.ExitStack() as running:
        if settings.kafka_bootstrap is None:
            broker = running.enter_context(KafkaContainer("apache/kafka:4.1.1").with_kraft())
            updates["kafka_bootstrap"] = broker.get_bootstrap_server()
        if settings.database_url is None:
            database = running.enter_context(PostgresContainer("postgres:16", driver=None))
            updates["database_url"] = database.get_connection_url()
        yield settings.model_copy(update=updates)


@pytest.fixture(scope="session")
def bootstrap_servers(stack_settings: Settings) -> str:
    """host:port of the real broker."""
    return stack_settings.bootstrap_servers


@pytest.fixture(scope="session")
def database_url(stack_settings: Settings) -> Iterator[str]:
    """A fresh, migrated database for this test run; dropped afterwards."""
    with temporary_database(stack_settings.dsn, "loyalty_test") as dsn:
        yield dsn


@pytest.fixture
def own_database_url(stack_settings: Settings) -> Iterator[str]:
    """A fresh, migrated database for one test (e.g. one that runs the projector)."""
    with temporary_database(stack_settings.dsn, "loyalty_test") as dsn:
        yield dsn


@pytest.fixture
def new_topic(bootstrap_servers: str) -> Callable[..., Awaitable[str]]:
    """Create a uniquely named topic for one test: `await new_topic("name", partitions=3)`."""

    async def create(
        name: str = "t", *, partitions: int = 1, config: dict[str, str] | None = None
    ) -> str:
        topic = f"test.{name}.{uuid.uuid4().hex[:10]}"
        await kafka.ensure_topics(bootstrap_servers, {topic: (partitions, config or {})})
        return topic

    return create
