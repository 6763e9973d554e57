"""A keyed state table that survives restarts: each partition's entries held in memory as
bytes, every change written first to a compacted changelog topic, and a partition's entries
read back from that changelog when the partition is assigned to this process.

It owns the state's durability and its placement (a key lives in the partition the default
partitioner gives it, the partition its inputs arrive on); it never decodes a value and never
decides anything.

Single writer: while a partition is assigned here, only this process writes its changelog
partition, so the position after our own acknowledged writes is the position of the whole
partition. When a partition comes back after another process held it, the copy catches up
from where it stopped instead of reading the changelog again from the start.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import murmur2

from processors.base.logs import get_logger

log = get_logger(__name__)


def partition_of(key: bytes, partitions: int) -> int:
    """The partition the producers' default partitioner gives `key` (Java's and aiokafka's)."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


class Table:
    """Entries by key (str → bytes), for the partitions this process holds."""

    def __init__(self, name: str, changelog: str, partitions: int):
        self.name = name
        self.changelog = changelog
        self.partitions = partitions
        self._data: dict[int, dict[bytes, bytes]] = {}
        self._positions: dict[int, int] = {}  # next changelog offset applied, per partition

    def get(self, key: str) -> bytes | None:
        raw = key.encode()
        return self._data.get(partition_of(raw, self.partitions), {}).get(raw)

    def keys_in(self, partition: int) -> list[str]:
        """Every key this process holds in `partition`."""
        return [key.decode() for key in self._data.get(partition, {})]

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._data.values())

    def held(self) -> set[int]:
        return set(self._data)

    def release(self, keep: Iterable[int]) -> None:
        """Forget the partitions not in `keep`: another process owns them now."""
        kept = set(keep)
        for partition in [p for p in self._data if p not in kept]:
            del self._data[partition]
            self._positions.pop(partition, None)

    async def recover(self, partitions: Iterable[int], reader: AIOKafkaConsumer) -> int:
        """Read the changelog of `partitions` from where this copy stopped up to its end; the
        number of changelog records applied. `reader` is a consumer outside any group."""
        tps = [TopicPartition(self.changelog, p) for p in sorted(set(partitions))]
        if not tps:
            return 0
        ends = await reader.end_offsets(tps)
        behind = {tp: end for tp, end in ends.items() if self._positions.get(tp.partition, 0) < end}
        for tp in tps:
            self._data.setdefault(tp.partition, {})
        if not behind:
            return 0
        reader.assign(list(behind))
        for tp in behind:
            reader.seek(tp, self._positions.get(tp.partition, 0))
        applied = 0
        while behind:
            fetched = await reader.getmany(*behind, timeout_ms=500)
            for tp, records in fetched.items():
                entries = self._data[tp.partition]
                for record in records:
                    if record.value is None:
                        entries.pop(record.key, None)
                    else:
                        entries[record.key] = record.value
                    applied += 1
                if records:
                    self._positions[tp.partition] = records[-1].offset + 1
            for tp in list(behind):
                # The position, not the last record: compaction leaves offsets no record has.
                position = await reader.position(tp)
                if position >= behind[tp]:
                    self._positions[tp.partition] = max(
                        self._positions.get(tp.partition, 0), behind[tp]
                    )
                    del behind[tp]
        reader.assign([])
        return applied

    async def save(self, changes: Mapping[str, bytes], producer: AIOKafkaProducer) -> None:
        """Write `changes` to the changelog, wait until the broker acknowledged every one, then
        to the local copy. A failure leaves the local copy as it was."""
        sent = []
        for key, value in changes.items():
            raw = key.encode()
            partition = partition_of(raw, self.partitions)
            sent.append((partition, raw, value, await producer.send(
                self.changelog, value, key=raw, partition=partition)))  # fmt: skip
        acks = await asyncio.gather(*(future for *_, future in sent))
        for (partition, raw, value, _), ack in zip(sent, acks, strict=True):
            self._data.setdefault(partition, {})[raw] = value
            self._positions[partition] = max(self._positions.get(partition, 0), ack.offset + 1)
