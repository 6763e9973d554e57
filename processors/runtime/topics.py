"""Topics the engine's processes need: created when missing, checked when present."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from processors.base.logs import get_logger

log = get_logger(__name__)


async def ensure_topics(bootstrap: str, wanted: dict[str, tuple[int, dict[str, str]]]) -> list[str]:
    """Create the topics in `wanted` (name → (partitions, config)) that do not exist yet.

    Returns the names created now. An existing topic is left as it is (creating twice is
    harmless); one with fewer partitions than wanted is reported, since co-partitioned topics
    (a member's inputs and its table) need the counts to match.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, partitions, 1, topic_configs=config)
            for name, (partitions, config) in wanted.items()
            if name not in existing
        ]
        created: list[str] = []
        for topic in missing:
            try:
                await admin.create_topics([topic])
                created.append(topic.name)
            except TopicAlreadyExistsError:
                pass
        present = [name for name in wanted if name in existing]
        if present:
            for description in await admin.describe_topics(present):
                have = len(description["partitions"])
                want = wanted[description["topic"]][0]
                if have != want:
                    log.warning(
                        "kafka.partition_mismatch", topic=description["topic"], have=have, want=want
                    )
        return created
    finally:
        await admin.close()
