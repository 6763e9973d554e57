"""Where a `Table` keeps its entries on this process: in memory, or on local disk (RocksDB).

Either store is a copy of the table's changelog and nothing more: it is filled by the table
from the changelog and from acknowledged writes, never read by another process, and never
read back after a restart (the on-disk store starts empty in a directory of its own and is
deleted on close). It decides nothing and never decodes a value.

Why two (docs/adr/0024-member-state-at-scale.md): a dict of bytes costs the state's bytes plus
~150 bytes of Python objects per key, all in the heap; a million members' states do not fit
the worker's 1 GiB that way, whatever the encoding, once members have any history. RocksDB
keeps them on disk behind a bounded block cache and write buffers, so the process's memory no
longer grows with the number of members or the size of their states.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol

from rocksdict import (
    BlockBasedOptions,
    Cache,
    DBCompressionType,
    Options,
    Rdict,
    WriteBatch,
    WriteOptions,
)

PART = b"\x1f"
"""Between an entry's key and the name of one of its parts (never in an id: ids are printable
ASCII). An entry's parts live in its partition and are read with it (`Table.parts`)."""


class Store(Protocol):
    """Entries by partition and key (bytes → bytes)."""

    def get(self, partition: int, key: bytes) -> bytes | None: ...

    def apply(self, partition: int, entries: Iterable[tuple[bytes, bytes | None]]) -> None:
        """Set each entry in order; a None value deletes the key (a changelog tombstone)."""
        ...

    def keys(self, partition: int) -> Iterator[bytes]: ...

    def items(self, partition: int, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """The entries of `partition` whose key starts with `prefix` + `PART` (an entry's
        parts, `table.Table.parts`), without reading the partition's other entries."""
        ...

    def parts_bytes(self, partition: int, prefix: bytes) -> int:
        """The bytes of the values of `prefix`'s parts (what `items` would read)."""
        ...

    def drop(self, partition: int) -> None:
        """Forget every entry of `partition`."""
        ...

    def estimated_len(self) -> int:
        """How many keys are held (exact in memory, RocksDB's estimate on disk)."""
        ...

    def close(self) -> None: ...


class MemoryStore:
    """A dict of bytes per partition: the fastest, and all of it in the heap."""

    def __init__(self) -> None:
        self._data: dict[int, dict[bytes, bytes]] = {}
        # Per partition, each entry's part keys: its parts are read without a scan; and the
        # bytes of their values, kept as they change (a state cache weighs an entry by them).
        self._parts: dict[int, dict[bytes, set[bytes]]] = {}
        self._part_bytes: dict[int, dict[bytes, int]] = {}

    def get(self, partition: int, key: bytes) -> bytes | None:
        return self._data.get(partition, {}).get(key)

    def apply(self, partition: int, entries: Iterable[tuple[bytes, bytes | None]]) -> None:
        held = self._data.setdefault(partition, {})
        parts = self._parts.setdefault(partition, {})
        sizes = self._part_bytes.setdefault(partition, {})
        for key, value in entries:
            owner, sep, _ = key.partition(PART)
            if sep:
                old = held.get(key)
                change = (0 if value is None else len(value)) - (0 if old is None else len(old))
                if change:
                    sizes[owner] = sizes.get(owner, 0) + change
                    if not sizes[owner]:
                        del sizes[owner]
            if value is None:
                held.pop(key, None)
                if sep:
                    named = parts.get(owner)
                    if named is not None:
                        named.discard(key)
                        if not named:
                            del parts[owner]
            else:
                held[key] = value
                if sep:
                    parts.setdefault(owner, set()).add(key)

    def keys(self, partition: int) -> Iterator[bytes]:
        return iter(list(self._data.get(partition, {})))

    def items(self, partition: int, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        held = self._data.get(partition, {})
        for key in sorted(self._parts.get(partition, {}).get(prefix, ())):
            yield key, held[key]

    def parts_bytes(self, partition: int, prefix: bytes) -> int:
        return self._part_bytes.get(partition, {}).get(prefix, 0)

    def drop(self, partition: int) -> None:
        self._data.pop(partition, None)
        self._parts.pop(partition, None)
        self._part_bytes.pop(partition, None)

    def estimated_len(self) -> int:
        return sum(len(entries) for entries in self._data.values())

    def close(self) -> None:
        self._data.clear()
        self._parts.clear()
        self._part_bytes.clear()


class RocksStore:
    """Entries in a RocksDB database of this process's own (rocksdict), keyed by a two-byte
    partition prefix and the key. Memory is bounded by `cache_bytes` (blocks read, with
    their index and filter blocks) and two write buffers of `write_buffer_bytes`; the rest
    lives on disk. No write-ahead log: after a crash the directory is thrown away and the
    changelog read again, so a log would buy nothing."""

    def __init__(
        self, path: Path, *, cache_bytes: int = 32 << 20, write_buffer_bytes: int = 16 << 20
    ):
        self.path = path
        shutil.rmtree(path, ignore_errors=True)  # a copy left by a dead process of the same pid
        path.parent.mkdir(parents=True, exist_ok=True)
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        blocks = BlockBasedOptions()
        blocks.set_block_cache(Cache(cache_bytes))
        blocks.set_bloom_filter(10, False)  # a miss (a new member) reads no block
        options.set_block_based_table_factory(blocks)
        options.set_write_buffer_size(write_buffer_bytes)
        options.set_max_write_buffer_number(2)
        options.set_compression_type(DBCompressionType.lz4())
        options.set_max_open_files(256)
        self._db = Rdict(str(path), options)
        unlogged = WriteOptions()
        unlogged.disable_wal = True  # type: ignore[assignment,method-assign]
        self._db.set_write_options(unlogged)

    @classmethod
    def for_process(cls, root: Path, name: str, **tuning: int) -> RocksStore:
        """A fresh store at `root/<name>.<pid>`. The stores that dead processes left in
        `root` (killed, they could not clean up), whatever their table, are deleted first:
        nothing ever reads them again."""
        if root.is_dir():
            for stale in root.iterdir():
                pid = stale.suffix.lstrip(".")
                if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                    shutil.rmtree(stale, ignore_errors=True)
        return cls(root / f"{name}.{os.getpid()}", **tuning)

    def get(self, partition: int, key: bytes) -> bytes | None:
        value: bytes | None = self._db.get(_prefix(partition) + key)
        return value

    def apply(self, partition: int, entries: Iterable[tuple[bytes, bytes | None]]) -> None:
        prefix = _prefix(partition)
        batch = WriteBatch(raw_mode=True)
        for key, value in entries:
            if value is None:
                batch.delete(prefix + key)
            else:
                batch.put(prefix + key, value)
        self._db.write(batch)

    def keys(self, partition: int) -> Iterator[bytes]:
        prefix = _prefix(partition)
        for key in self._db.keys(from_key=prefix):
            assert isinstance(key, bytes)  # raw mode
            if not key.startswith(prefix):
                return
            yield key[len(prefix) :]

    def items(self, partition: int, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        start = _prefix(partition) + prefix + PART
        for key, value in self._db.items(from_key=start):
            assert isinstance(key, bytes)  # raw mode
            assert isinstance(value, bytes)
            if not key.startswith(start):
                return
            yield key[2:], value

    def parts_bytes(self, partition: int, prefix: bytes) -> int:
        # A scan of the parts: the parted tables (promotions) are kept in memory.
        return sum(len(value) for _, value in self.items(partition, prefix))

    def drop(self, partition: int) -> None:
        self._db.delete_range(_prefix(partition), _prefix(partition + 1))

    def estimated_len(self) -> int:
        return int(self._db.property_int_value("rocksdb.estimate-num-keys") or 0)

    def compacting(self) -> bool:
        """Whether a flush or a compaction runs or is due (after a recovery's bulk of writes:
        it runs on RocksDB's own threads while batches go on)."""
        return any(
            self._db.property_int_value(name)
            for name in ("rocksdb.compaction-pending", "rocksdb.num-running-compactions",
                         "rocksdb.num-running-flushes", "rocksdb.mem-table-flush-pending")
        )  # fmt: skip

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closed already
            self._db.close()
        shutil.rmtree(self.path, ignore_errors=True)


def _prefix(partition: int) -> bytes:
    return partition.to_bytes(2, "big")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
