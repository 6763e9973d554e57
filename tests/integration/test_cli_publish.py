"""`loyalty publish` and `loyalty consume` against the real broker."""

import asyncio
import json
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from click.testing import CliRunner

from loyalty.cli import main
from processors.base.settings import get_settings
from processors.codec.avro import AvroCodec
from processors.codec.json_form import to_json_line
from processors.contract.deadletter import DeadLettered, DeadLetterReason
from tests.builders import T0, purchase

pytestmark = pytest.mark.integration
TOPIC = "loyalty.transactions.v1"


@pytest.fixture
def cli_env(stack_settings, monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP", stack_settings.bootstrap_servers)
    get_settings.cache_clear()
    yield {"KAFKA_BOOTSTRAP": stack_settings.bootstrap_servers}
    get_settings.cache_clear()


async def end_offsets(bootstrap: str, partitions: int) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        return await consumer.end_offsets([TopicPartition(TOPIC, p) for p in range(partitions)])
    finally:
        await consumer.stop()


async def read_from(bootstrap: str, offsets: dict[TopicPartition, int], want: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    values: list[tuple[bytes, bytes]] = []
    try:
        consumer.assign(list(offsets))
        for partition, offset in offsets.items():
            consumer.seek(partition, offset)
        deadline = asyncio.get_running_loop().time() + 20
        while len(values) < want and asyncio.get_running_loop().time() < deadline:
            for batch in (await consumer.getmany(timeout_ms=300)).values():
                values += [(r.key, r.value) for r in batch]
    finally:
        await consumer.stop()
    return values


def test_publish_produces_valid_lines_keyed_and_reports_each_bad_line(
    cli_env, stack_settings, tmp_path
):
    run = uuid.uuid4().hex[:8]
    good = [purchase(event_id=f"{run}-{n}", member_id=f"M{n}") for n in range(3)]
    bad_amount = json.loads(to_json_line(purchase(event_id=f"{run}-bad")))
    bad_amount["lines"][0]["amount_cents"] = -1
    lines = [
        to_json_line(good[0]),
        "# a comment, skipped",
        "{not json",
        json.dumps(bad_amount),
        to_json_line(good[1]),
        to_json_line(
            DeadLettered(
                event_id="d",
                occurred_at=T0,
                original_topic="x",
                original_partition=0,
                original_offset=0,
                reason=DeadLetterReason.EMPTY,
                error="e",
            )
        ),
        json.dumps({"type": "NoSuchEvent"}),
        "",
        to_json_line(good[2]),
    ]
    source = tmp_path / "events.jsonl"
    source.write_text("\n".join(lines) + "\n")
    before = asyncio.run(end_offsets(stack_settings.bootstrap_servers, stack_settings.partitions))

    result = CliRunner().invoke(main, ["publish", "--topic", TOPIC, str(source)], env=cli_env)

    assert result.exit_code == 1
    output = result.output
    assert "line 3: not JSON" in output
    assert "line 4: TransactionCompleted: lines.0.amount_cents: Input should be greater" in output
    assert "line 6: DeadLettered does not belong on loyalty.transactions.v1" in output
    assert "line 7: type: unknown event type 'NoSuchEvent'" in output
    assert "published 3 event(s) to loyalty.transactions.v1, rejected 4" in output

    records = asyncio.run(read_from(stack_settings.bootstrap_servers, before, 3))
    codec = AvroCodec()
    mine = {codec.decode(value).event_id: key for key, value in records}
    assert {eid: key for eid, key in mine.items() if eid.startswith(run)} == {
        f"{run}-{n}": f"M{n}".encode() for n in range(3)
    }
