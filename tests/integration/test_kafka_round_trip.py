"""The real broker: records make the round trip, groups resume, transactions isolate."""

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

pytestmark = pytest.mark.integration


async def drain(consumer: AIOKafkaConsumer, *, want: int, seconds: float = 20.0) -> list:
    """Read until `want` records arrived or `seconds` passed."""
    got = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while len(got) < want and loop.time() < deadline:
        for records in (await consumer.getmany(timeout_ms=200)).values():
            got.extend(records)
    return got


async def test_records_produced_with_keys_come_back_in_key_order(bootstrap_servers, new_topic):
    topic = await new_topic("round-trip", partitions=4)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, enable_idempotence=True)
    await producer.start()
    try:
        for i in range(200):
            await producer.send(topic, f"{i}".encode(), key=f"member-{i % 7}".encode())
        await producer.flush()
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        records = await drain(consumer, want=200)
    finally:
        await consumer.stop()

    assert len(records) == 200
    by_key: dict[bytes, list[int]] = {}
    for record in records:
        by_key.setdefault(record.key, []).append(int(record.value))
    # One key, one partition: each member's records keep their order.
    assert all(values == sorted(values) for values in by_key.values())
    assert len({(r.key, r.partition) for r in records}) == 7


async def test_a_group_resumes_after_its_last_commit(bootstrap_servers, new_topic):
    topic = await new_topic("resume")
    group = f"g-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers)
    await producer.start()
    for i in range(10):
        await producer.send(topic, str(i).encode())
    await producer.flush()
    await producer.stop()

    def consumer() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap_servers, group_id=group,
            auto_offset_reset="earliest", enable_auto_commit=False,
        )  # fmt: skip

    first = consumer()
    await first.start()
    records = await drain(first, want=10)
    await first.commit({TopicPartition(topic, 0): records[5].offset + 1})
    await first.stop()

    second = consumer()
    await second.start()
    rest = await drain(second, want=4)
    await second.stop()
    assert [int(r.value) for r in rest] == [6, 7, 8, 9]


async def test_aborted_transactions_are_invisible_to_read_committed(bootstrap_servers, new_topic):
    topic = await new_topic("tx")
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers, transactional_id=f"tx-{uuid.uuid4().hex[:8]}"
    )
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send(topic, b"committed-1")
        await producer.begin_transaction()
        await producer.send(topic, b"aborted")
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send(topic, b"committed-2")
    finally:
        await producer.stop()

    committed = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap_servers, auto_offset_reset="earliest",
        isolation_level="read_committed",
    )  # fmt: skip
    await committed.start()
    try:
        values = [r.value for r in await drain(committed, want=2)]
        # Give an aborted record the chance to show up if isolation were broken.
        values += [r.value for r in await drain(committed, want=1, seconds=1.0)]
    finally:
        await committed.stop()
    assert values == [b"committed-1", b"committed-2"]
