"""A replay tells its progress after every committed batch: what `loyalty rebuild` shows as a
bar with an ETA (issue #16, target 3)."""

import pytest
from aiokafka import AIOKafkaProducer

from loyalty.bench.projector import synthetic_ledger
from processors.codec.avro import AvroCodec
from processors.contract.ledger import LedgerEventRecorded
from projections.runner import Projector, ProjectorConfig, RunReport, contract_topic_map
from tests.integration.test_projections_ledger import drop_schema, new_schema

pytestmark = pytest.mark.integration


async def test_a_replay_reports_each_committed_batch_against_the_end_offsets(
    database_url, bootstrap_servers, new_topic
):
    events = synthetic_ledger(members=10, events_per_member=6)
    topics = {"ledger": await new_topic("ledger", partitions=2),
              "enrolments": await new_topic("enrolments", partitions=2)}  # fmt: skip
    codec = AvroCodec()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, enable_idempotence=True)
    await producer.start()
    try:
        for event in events:
            topic = topics["ledger" if isinstance(event, LedgerEventRecorded) else "enrolments"]
            await producer.send(topic, codec.encode(event), key=event.partition_key().encode())
        await producer.flush()
    finally:
        await producer.stop()
    schema = new_schema(database_url)
    seen: list[tuple[int, int | None]] = []

    def on_committed(report: RunReport, ends: int | None) -> None:
        seen.append((report.records, ends))

    try:
        config = ProjectorConfig(
            database_url, bootstrap_servers,
            contract_topic_map(topics["ledger"], topics["enrolments"], offers=None),
            group_id=None, schema=schema, max_records=7,
        )  # fmt: skip
        run = await Projector(config).run(until_caught_up=True, on_committed=on_committed)
    finally:
        drop_schema(database_url, schema)

    assert run.records == len(events) == 70
    assert len(seen) == run.transactions > 1
    assert {ends for _, ends in seen} == {70}
    done = [records for records, _ in seen]
    assert done == sorted(done)
    assert done[-1] == 70
