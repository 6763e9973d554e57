"""`ensure_topics` on the real broker: a limit the engine relies on is raised on a topic
created before it was, the topic's other settings kept; never lowered."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from processors.runtime.topics import ensure_topics

pytestmark = pytest.mark.integration
OLD, NEW = "1048588", str(8 << 20)


async def _settings(bootstrap: str, topic: str) -> dict[str, str]:
    """The topic's settings, once the broker describes them (a topic just created may be
    unknown to it for a moment)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        for _ in range(100):
            [response] = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic)]
            )
            error, _, _, _, entries = response.resources[0][:5]
            if not error and entries:
                return {entry[0]: entry[1] for entry in entries}
            await asyncio.sleep(0.1)
        raise AssertionError(f"{topic}: never described")
    finally:
        await admin.close()


async def test_an_older_changelogs_record_limit_is_raised_and_its_other_settings_kept(isolated):  # type: ignore[no-untyped-def]
    bootstrap = isolated.bootstrap_servers
    topic = isolated.topic("limits-changelog")
    old = {"cleanup.policy": "compact", "max.message.bytes": OLD, "min.compaction.lag.ms": "5"}
    assert await ensure_topics(bootstrap, {topic: (2, old)}) == [topic]
    assert (await _settings(bootstrap, topic))["max.message.bytes"] == OLD

    wanted = {"cleanup.policy": "compact", "max.message.bytes": NEW}
    assert await ensure_topics(bootstrap, {topic: (2, wanted)}) == []  # not created again
    settings = await _settings(bootstrap, topic)
    assert settings["max.message.bytes"] == NEW
    assert settings["cleanup.policy"] == "compact"
    assert settings["min.compaction.lag.ms"] == "5"  # set by someone else: kept

    await ensure_topics(bootstrap, {topic: (2, {"max.message.bytes": OLD})})
    assert (await _settings(bootstrap, topic))["max.message.bytes"] == NEW  # never lowered
