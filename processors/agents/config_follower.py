"""Every worker's copy of the programme configuration, read from the compacted config topic.

Each worker reads `loyalty.config.v1` from the beginning with its own consumer (no group),
so all workers know every programme; agents wait for `ready` (caught up with the end
offsets seen at start) before they process their first record.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition

from loyalty.logs import get_logger
from processors.codec.avro import AvroCodec, DecodeError
from processors.contract.config import ProgramConfigured

log = get_logger(__name__)


class ConfigFollower:
    """Follows the config topic into `programs` (program_id → latest ProgramConfigured)."""

    def __init__(self, bootstrap: str, topic: str, codec: AvroCodec):
        self.bootstrap = bootstrap
        self.topic = topic
        self.codec = codec
        self.programs: dict[str, ProgramConfigured] = {}
        self.ready = asyncio.Event()

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            partitions = [
                TopicPartition(self.topic, p)
                for p in sorted(consumer.partitions_for_topic(self.topic) or {0})
            ]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            if all(offset == 0 for offset in ends.values()):
                self.ready.set()
            while True:
                batches = await consumer.getmany(timeout_ms=1000)
                for partition, records in batches.items():
                    for record in records:
                        self._apply(record.value, record.offset)
                        if not self.ready.is_set() and record.offset + 1 >= ends[partition]:
                            self.ready.set()
                            log.info("config.caught_up", programmes=sorted(self.programs))
        finally:
            await consumer.stop()

    def _apply(self, value: bytes | None, offset: int) -> None:
        if value is None:
            return
        try:
            event = self.codec.decode(value)
        except DecodeError as error:
            # The config topic's front door (and its dead letters) belongs to its own agent.
            log.warning("config.undecodable", offset=offset, reason=error.reason.value)
            return
        if isinstance(event, ProgramConfigured):
            self.programs[event.program_id] = event
