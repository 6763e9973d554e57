"""On the real broker: a mix of good and bad records; every good one is handled, every bad one
is dead-lettered with its reason, and the counts match exactly."""

import asyncio
import io
import uuid
from collections import Counter

import fastavro
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from processors.codec import framing
from processors.codec.avro import AvroCodec
from processors.codec.schemas import expanded, named_types
from processors.contract.deadletter import DeadLettered
from processors.contract.transactions import TransactionCompleted
from processors.frontdoor import Delivered, FrontDoor
from tests.builders import purchase

pytestmark = pytest.mark.integration


def invalid_purchase(codec: AvroCodec, n: int) -> bytes:
    """Well-formed Avro that breaks a contract rule (a negative line amount)."""
    datum = purchase(event_id=f"bad-{n}").model_dump(mode="python")
    datum["lines"][0]["amount_cents"] = -1
    schema = expanded(TransactionCompleted.avro_name(), named_types([TransactionCompleted]))
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(schema), datum)
    return framing.frame_single_object(codec.fingerprint_of(TransactionCompleted), body.getvalue())


async def test_every_record_is_either_handled_or_dead_lettered(bootstrap_servers, new_topic):
    codec = AvroCodec()
    source = await new_topic("frontdoor-in", partitions=2)
    dead_letters = await new_topic("frontdoor-dlq", partitions=2)
    records: list[tuple[bytes, bytes]] = []
    for n in range(60):
        event = purchase(event_id=f"ok-{n}", member_id=f"M{n % 5}")
        records.append((event.partition_key().encode(), codec.encode(event)))
    records += [(b"M1", b"not avro at all") for _ in range(7)]  # undecodable
    records += [(b"M1", invalid_purchase(codec, n)) for n in range(5)]  # invalid
    records += [(b"M9", codec.encode(purchase(event_id="wrong-key")))]  # key mismatch

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, enable_idempotence=True)
    await producer.start()
    for key, value in records:
        await producer.send(source, value, key=key)
    await producer.flush()

    door = FrontDoor(
        codec, producer, dead_letter_topic=dead_letters,
        contract_topics={source: "loyalty.transactions.v1"},
    )  # fmt: skip
    handled: list[str] = []

    async def handle(event, _delivered):
        handled.append(event.event_id)

    consumer = AIOKafkaConsumer(
        source, bootstrap_servers=bootstrap_servers, group_id=f"fd-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest", enable_auto_commit=False,
    )  # fmt: skip
    await consumer.start()
    try:
        seen = 0
        deadline = asyncio.get_running_loop().time() + 30
        while seen < len(records) and asyncio.get_running_loop().time() < deadline:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                admitted, dead = door.admit_all([Delivered.of(r) for r in batch])
                handled += [event.event_id for _, event in admitted]
                await asyncio.gather(*[await door.send_dead(d) for d in dead])
                seen += len(batch)
            await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()

    assert sorted(handled) == sorted(f"ok-{n}" for n in range(60))

    reader = AIOKafkaConsumer(dead_letters, bootstrap_servers=bootstrap_servers,
                              auto_offset_reset="earliest")  # fmt: skip
    await reader.start()
    dead: list[DeadLettered] = []
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while len(dead) < 13 and asyncio.get_running_loop().time() < deadline:
            for batch in (await reader.getmany(timeout_ms=500)).values():
                dead += [codec.decode(r.value) for r in batch]
    finally:
        await reader.stop()
    assert Counter(d.reason.value for d in dead) == {
        "NOT_FRAMED": 7,
        "INVALID": 5,
        "KEY_MISMATCH": 1,
    }
    assert all(d.original_topic == source for d in dead)
    assert {d.original_value for d in dead if d.reason.value == "NOT_FRAMED"} == {
        b"not avro at all"
    }
    assert len({(d.original_partition, d.original_offset) for d in dead}) == 13
