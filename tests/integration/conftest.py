"""Fixtures shared by integration tests."""

import asyncio
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from loyalty import stack as kafka_stack
from loyalty.stack import kafka
from processors.base.settings import get_settings
from processors.base.topics import CONFIG


@pytest.fixture
def isolated(stack_settings):  # type: ignore[no-untyped-def]
    """The stack with every topic under a prefix of this test's own: no history, no
    interference with other tests, the demo or an earlier run."""
    settings = stack_settings.model_copy(update={"topic_prefix": f"i{uuid.uuid4().hex[:8]}."})
    kafka_stack.up(settings)
    return settings


@pytest.fixture
def config_topic(stack_settings, monkeypatch):
    """A config topic of this test's own (a unique topic prefix), and the CLI pointed at it."""
    prefix = f"test-offers-{uuid.uuid4().hex[:10]}."
    topic = prefix + CONFIG.name
    asyncio.run(
        kafka.ensure_topics(stack_settings.bootstrap_servers, {topic: (1, dict(CONFIG.config))})
    )
    monkeypatch.setenv("KAFKA_BOOTSTRAP", stack_settings.bootstrap_servers)
    monkeypatch.setenv("LOYALTY_TOPIC_PREFIX", prefix)
    get_settings.cache_clear()
    yield topic
    get_settings.cache_clear()


CREATED_HERE: set[str] = set()
"""Topics this pytest process created (any test, any fixture): see `_record_creations`."""


@pytest.fixture(scope="session", autouse=True)
def _record_creations():  # type: ignore[no-untyped-def]
    """Every topic this process creates goes through aiokafka's admin client: note its name.
    Other processes on the machine (another pytest, a benchmark, the demo) create theirs."""
    original = AIOKafkaAdminClient.create_topics

    async def recording(self, new_topics, *args, **kwargs):  # type: ignore[no-untyped-def]
        CREATED_HERE.update(topic.name for topic in new_topics)
        return await original(self, new_topics, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(AIOKafkaAdminClient, "create_topics", recording)
        yield


@pytest.fixture(scope="module", autouse=True)
def _topics_created_here_are_deleted(request):  # type: ignore[no-untyped-def]
    """Each integration module deletes the topics it created once it is done: every test
    stack is a set of topics under a prefix of its own, and thousands of them (a full run
    creates over 15,000 partitions) exhaust the broker's heap. Only this process's: a topic
    is deleted if this process created it or shares its prefix with one it created (the
    workers a test starts create their changelogs under the test's prefix), never one of
    another process running beside (a benchmark, another test run)."""
    settings = request.getfixturevalue("stack_settings")
    before = asyncio.run(_topic_names(settings.bootstrap_servers))
    yield
    left = asyncio.run(_topic_names(settings.bootstrap_servers)) - before
    prefixes = {_prefix(name) for name in CREATED_HERE} - {""}
    ours = {name for name in left if name in CREATED_HERE or _prefix(name) in prefixes}
    if ours:
        asyncio.run(_delete(settings.bootstrap_servers, sorted(ours)))


def _prefix(topic: str) -> str:
    """A test's own prefix (`rw1a2b3c4d.` of `rw1a2b3c4d.loyalty.ledger.v1`); "" for a
    topic of the deployment's names."""
    head, dot, _ = topic.partition(".")
    return "" if not dot or head in ("loyalty", "__consumer_offsets") else head + dot


async def _topic_names(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def _delete(bootstrap: str, topics: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        for start in range(0, len(topics), 100):
            await admin.delete_topics(topics[start : start + 100])
    finally:
        await admin.close()
