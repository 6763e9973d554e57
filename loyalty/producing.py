"""Producing contract events from the engine's own tools (demo, benchmarks, tests): Avro
encoded, to the (prefixed) topic of each event, keyed as the contract says, acknowledged."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiokafka import AIOKafkaProducer

from processors.base.settings import Settings
from processors.codec.avro import AvroCodec
from processors.contract.base import Event


async def publish_events(
    settings: Settings, events: Iterable[Event], codec: AvroCodec | None = None
) -> int:
    """Produce `events` in order and wait until the broker acknowledged all; returns how many."""
    codec = codec or AvroCodec()
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, enable_idempotence=True, acks="all",
        linger_ms=5,
    )  # fmt: skip
    await producer.start()
    try:
        futures = [
            await producer.send(
                settings.topic(e.topic), codec.encode(e), key=e.partition_key().encode()
            )
            for e in events
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return len(futures)
