"""Topics the engine's processes need: created when missing, checked when present, and a
limit the engine relies on raised where an older topic has it lower."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

from processors.base.logs import get_logger

log = get_logger(__name__)

RAISED = ("max.message.bytes",)
"""Topic settings the engine raises on an existing topic whose value is lower than it needs
(never lowers): a changelog created before its record limit was raised to 8 MiB would refuse
a large journal and stall its partition for good (docs/adr/0017-worker-runtime.md)."""
_DYNAMIC_TOPIC_CONFIG = 1  # DescribeConfigs v1+: a value set on the topic itself


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
        await _raise_limits(admin, {name: wanted[name][1] for name in present})
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


async def _raise_limits(admin: AIOKafkaAdminClient, wanted: dict[str, dict[str, str]]) -> None:
    """Raise the `RAISED` settings of existing topics that have them lower than `wanted`. An
    AlterConfigs request replaces a topic's own settings as a whole, so the ones it has are
    sent again with the raised one."""
    topics = [name for name, config in wanted.items() if any(k in config for k in RAISED)]
    if not topics:
        return
    resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in topics]
    for response in await admin.describe_configs(resources):
        for error, _, _, name, entries in (r[:5] for r in response.resources):
            if error:
                log.warning("kafka.describe_configs_failed", topic=name, error=error)
                continue
            own = {e[0]: e[1] for e in entries if _set_on_topic(response.API_VERSION, e)}
            current = {e[0]: e[1] for e in entries}
            raised = {
                key: value for key, value in wanted[name].items()
                if key in RAISED and int(current.get(key) or 0) < int(value)
            }  # fmt: skip
            if not raised:
                continue
            altered = await admin.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, name, {**own, **raised})]
            )
            codes = [r[0] for a in altered for r in a.resources]
            if any(codes):
                log.error("kafka.raise_limit_failed", topic=name, settings=raised, errors=codes)
            else:
                log.info("kafka.limit_raised", topic=name, settings=raised,
                         was={k: current.get(k) for k in raised})  # fmt: skip


def _set_on_topic(version: int, entry: tuple[object, ...]) -> bool:
    """Whether a DescribeConfigs entry is a value set on the topic itself (not a default)."""
    if version == 0:
        return not entry[3]  # is_default
    return entry[3] == _DYNAMIC_TOPIC_CONFIG
