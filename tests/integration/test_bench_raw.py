"""The raw benchmark moves every record it claims to (counts, never timings, are asserted)."""

import psycopg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from loyalty.bench.raw import measure_consume_produce, measure_copy, measure_produce

pytestmark = pytest.mark.integration


async def test_the_consume_produce_baseline_forwards_every_record(bootstrap_servers, new_topic):
    source = await new_topic("bench-in", partitions=3)
    sink = await new_topic("bench-out", partitions=3)

    produced = await measure_produce(bootstrap_servers, source, 500)
    looped = await measure_consume_produce(bootstrap_servers, source, sink, 500)

    assert (produced.count, looped.count) == (500, 500)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(sink, p) for p in range(3)])
    finally:
        await consumer.stop()
    assert sum(ends.values()) == 500


def test_the_copy_baseline_leaves_no_table_behind(database_url):
    copied = measure_copy(database_url, 1000)
    assert copied.count == 1000
    with psycopg.connect(database_url) as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'bench_copy_%'"
        ).fetchone()
    assert left == (0,)
