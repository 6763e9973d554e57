"""`stack up` is idempotent and leaves the contract's topics as designed."""

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from loyalty import stack
from loyalty.stack import kafka, postgres
from processors.base.topics import CONTRACT_TOPICS

pytestmark = pytest.mark.integration


def test_stack_up_twice_is_harmless(stack_settings):
    before = stack.status(stack_settings)
    report = stack.up(stack_settings)
    assert not report.kafka_started
    assert not report.postgres_started
    assert report.topics_created == []
    assert report.migrations_applied == []
    after = stack.status(stack_settings)
    assert after == before
    if stack_settings.kafka_bootstrap is None:
        assert kafka.is_running(stack_settings)
    if stack_settings.database_url is None:
        assert postgres.is_running(stack_settings)


async def test_contract_topics_exist_with_their_partitions_and_policies(stack_settings):
    admin = AIOKafkaAdminClient(bootstrap_servers=stack_settings.bootstrap_servers)
    await admin.start()
    try:
        names = [spec.name for spec in CONTRACT_TOPICS]
        described = {d["topic"]: len(d["partitions"]) for d in await admin.describe_topics(names)}
        configs = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, "loyalty.config.v1")]
        )
    finally:
        await admin.close()
    for spec in CONTRACT_TOPICS:
        assert described[spec.name] == spec.partitions(stack_settings.partitions), spec.name
    entries = {name: value for name, value, *_ in configs[0].resources[0][4]}
    assert entries["cleanup.policy"] == "compact"


async def test_the_health_check_proves_a_real_round_trip(stack_settings):
    seconds = await kafka.check_round_trip(stack_settings.bootstrap_servers, timeout=30)
    assert seconds >= 0
    assert await asyncio.to_thread(postgres.check_select_one, stack_settings.dsn) >= 0
