"""Fixtures shared by integration tests."""

import asyncio
import uuid

import pytest

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
