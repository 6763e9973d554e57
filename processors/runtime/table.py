"""A keyed state table that survives restarts: each partition's entries held as bytes in a
local store (`processors.runtime.stores`: in memory, or on disk for the member states), every
change written first to a compacted changelog topic, and a partition's entries read back from
that changelog when the partition is assigned to this process. The changelog is the source of
truth; the store is this process's copy of it, empty at start.

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
from collections.abc import Iterable, Iterator, Mapping, Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import murmur2

from processors.base.logs import get_logger
from processors.runtime.stores import PART, MemoryStore, Store

log = get_logger(__name__)


def partition_of(key: bytes, partitions: int) -> int:
    """The partition the producers' default partitioner gives `key` (Java's and aiokafka's)."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


def part_key(key: str, name: str) -> str:
    """The table key of part `name` of the entry under `key` (see `Table.parts`)."""
    return f"{key}{PART.decode()}{name}"


APPLIED = "~applied"
"""The part of an entry with parts that holds, per input topic-partition, the offset of the
last input decided on it: written with the batch's other parts (in its journal), so a batch
redelivered after its state was saved skips the inputs the state already holds (their outputs
were acknowledged before it was saved) instead of deciding them again against a state that
already went past them (ADR 17, addendum)."""

JOURNAL = "~journal"
"""The part that holds the change set of an entry with parts while its batch writes it: written
first (`journal`, one record) and deleted last. A process that dies after any prefix of a
batch's writes leaves either no journal and the entry as before the batch, or the journal, and
the entry as after the batch once the journal is applied (`replayed`); the next batch on that
entry writes the journal's changes again with its own (ADR 17, addendum)."""


def journal(entry: bytes, parts: Mapping[str, bytes | None]) -> bytes:
    """One record holding an entry and its changed parts (None: the part is gone)."""
    out = [_JOURNAL_FORMAT, _chunk(entry)]
    for name, value in parts.items():
        out += [_chunk(name.encode()), b"\xff" if value is None else b"\x00" + _chunk(value)]
    return b"".join(out)


def _chunk(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def replayed(
    entry: bytes | None, parts: dict[str, bytes]
) -> tuple[bytes | None, dict[str, bytes], dict[str, bytes | None]]:
    """An entry and its parts as read, with a journal among them applied (and removed); and
    the journal's changes, still to be written (empty: no batch was cut short)."""
    written = parts.pop(JOURNAL, None)
    if written is None:
        return entry, parts, {}
    assert written.startswith(_JOURNAL_FORMAT), "a journal of another format"
    at = len(_JOURNAL_FORMAT)

    def chunk() -> bytes:
        nonlocal at
        size = int.from_bytes(written[at : at + 4], "big")
        at += 4 + size
        return written[at - size : at]

    entry = chunk()
    pending: dict[str, bytes | None] = {}
    while at < len(written):
        name = chunk().decode()
        gone, at = written[at] == 0xFF, at + 1
        pending[name] = None if gone else chunk()
    for name, value in pending.items():
        if value is None:
            parts.pop(name, None)
        else:
            parts[name] = value
    return entry, parts, pending


_JOURNAL_FORMAT = b"J1"
_JOURNAL_SUFFIX = PART + JOURNAL.encode()


class Table:
    """Entries by key (str → bytes), for the partitions this process holds.

    An entry may have parts (`part_key`): entries of their own in the changelog, in the
    entry's partition, read together (`parts`), so a state that keeps a large map writes only
    the map's changed items, not the whole state, on each batch (ADR 17, addendum).
    """

    def __init__(self, name: str, changelog: str, partitions: int, store: Store | None = None):
        self.name = name
        self.changelog = changelog
        self.partitions = partitions
        self.store: Store = store if store is not None else MemoryStore()
        self._held: set[int] = set()
        self._positions: dict[int, int] = {}  # next changelog offset applied, per partition

    def get(self, key: str) -> bytes | None:
        raw = key.encode()
        return self.store.get(self._partition(raw), raw)

    def parted(self, key: str) -> tuple[bytes | None, dict[str, bytes], dict[str, bytes | None]]:
        """The entry under `key`, its parts (name → value) and what a batch cut short left to
        write (`replayed`): the state as its last batch left it, even if the process died
        among its writes."""
        return replayed(self.get(key), self.parts(key))

    def parts(self, key: str) -> dict[str, bytes]:
        """The parts of the entry under `key`: name → value (its journal among them)."""
        raw = key.encode()
        skip = len(raw) + len(PART)
        return {k[skip:].decode(): v for k, v in self.store.items(self._partition(raw), raw)}

    def parts_bytes(self, key: str) -> int:
        """The stored bytes of the parts of the entry under `key` (its own bytes left out)."""
        raw = key.encode()
        return self.store.parts_bytes(self._partition(raw), raw)

    def _partition(self, raw: bytes) -> int:
        """Where a key lives: its own partition, or for a part its entry's."""
        return partition_of(raw.partition(PART)[0], self.partitions)

    def keys_in(self, partition: int) -> Iterator[str]:
        """Every entry's key this process holds in `partition` (parts left out), read as the
        caller goes."""
        return (key.decode() for key in self.store.keys(partition) if PART not in key)

    def estimated_len(self) -> int:
        """How many keys this process holds (the on-disk store estimates)."""
        return self.store.estimated_len()

    def held(self) -> set[int]:
        return set(self._held)

    def release(self, keep: Iterable[int]) -> None:
        """Forget the partitions not in `keep`: another process owns them now."""
        kept = set(keep)
        for partition in [p for p in self._held if p not in kept]:
            self.store.drop(partition)
            self._held.discard(partition)
            self._positions.pop(partition, None)

    def load(self, partition: int, entries: Iterable[tuple[bytes, bytes | None]]) -> None:
        """Apply changelog records (key, value or None for a tombstone) read elsewhere, as
        `recover` does; for tests that stand for a recovery without a broker."""
        self._held.add(partition)
        self.store.apply(partition, entries)

    def close(self) -> None:
        """Let the store go (an on-disk one deletes its files)."""
        self.store.close()
        self._held.clear()
        self._positions.clear()

    async def recover(self, partitions: Iterable[int], reader: AIOKafkaConsumer) -> int:
        """Read the changelog of `partitions` from where this copy stopped up to its end; the
        number of changelog records applied. `reader` is a consumer outside any group."""
        tps = [TopicPartition(self.changelog, p) for p in sorted(set(partitions))]
        if not tps:
            return 0
        ends = await reader.end_offsets(tps)
        behind = {tp: end for tp, end in ends.items() if self._positions.get(tp.partition, 0) < end}
        self._held.update(tp.partition for tp in tps)
        if not behind:
            return 0
        reader.assign(list(behind))
        for tp in behind:
            reader.seek(tp, self._positions.get(tp.partition, 0))
        applied = 0
        while behind:
            fetched = await reader.getmany(*behind, timeout_ms=500)
            for tp, records in fetched.items():
                self.store.apply(tp.partition, ((r.key, r.value) for r in records))
                applied += len(records)
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

    async def save(
        self,
        changes: Mapping[str, bytes | None] | Sequence[tuple[str, bytes | None]],
        producer: AIOKafkaProducer,
    ) -> None:
        """Write `changes` (None: the key is gone, a tombstone; a key may come twice in a
        sequence) to the changelog in their order, wait until the broker acknowledged every
        one, then to the local copy. A failure leaves the local copy as it was, but for the
        journals among `changes` (`JOURNAL`): each is in the local copy before anything is
        sent, so a batch retried in this process after a failure among these writes reads
        them as a restart would, and writes them again (found in review: retried with part
        of its records, a batch overwrote a journal whose writes had not all landed)."""
        sent = []
        for key, value in changes.items() if isinstance(changes, Mapping) else changes:
            raw = key.encode()
            partition = self._partition(raw)
            if value is not None and raw.endswith(_JOURNAL_SUFFIX):
                self.store.apply(partition, [(raw, value)])
            sent.append((partition, raw, value, await producer.send(
                self.changelog, value, key=raw, partition=partition)))  # fmt: skip
        acks = await asyncio.gather(*(future for *_, future in sent))
        by_partition: dict[int, list[tuple[bytes, bytes | None]]] = {}
        for (partition, raw, value, _), ack in zip(sent, acks, strict=True):
            by_partition.setdefault(partition, []).append((raw, value))
            self._positions[partition] = max(self._positions.get(partition, 0), ack.offset + 1)
        for partition, entries in by_partition.items():
            self._held.add(partition)
            self.store.apply(partition, entries)
