"""The member table on local disk recovers from its changelog on the real broker: a fresh
process's copy (a restart) holds every state byte for byte, a tombstone deletes, and a copy
that comes back after another process wrote reads only what it missed."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from processors.base.topics import COMPACTED
from processors.runtime.stores import RocksStore
from processors.runtime.table import Table, partition_of
from processors.runtime.topics import ensure_topics

pytestmark = pytest.mark.integration
PARTITIONS = 4


def states(first: int, last: int, version: str) -> dict[str, bytes]:
    return {f"M{n:05d}": f'{{"ledger":{{"v":"{version}","n":{n}}}}}'.encode()
            for n in range(first, last)}  # fmt: skip


async def test_a_restarted_process_recovers_every_state_and_then_only_what_it_missed(
    isolated, tmp_path
):  # type: ignore[no-untyped-def]
    bootstrap = isolated.bootstrap_servers
    changelog = isolated.topic("test-ledgers_by_member-changelog")
    await ensure_topics(bootstrap, {changelog: (PARTITIONS, dict(COMPACTED))})
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await producer.start()
    await reader.start()
    try:
        before = Table("members", changelog, PARTITIONS, RocksStore(tmp_path / "before"))
        await before.save(states(0, 3000, "a"), producer)
        await before.save(states(0, 1000, "b"), producer)  # newer states of the first thousand
        gone = "M00007"
        await producer.send_and_wait(changelog, None, key=gone.encode(),
                                     partition=partition_of(gone.encode(), PARTITIONS))  # fmt: skip
        before.close()

        # A restart: a new process, an empty store, the changelog read from the start.
        after = Table("members", changelog, PARTITIONS, RocksStore(tmp_path / "after"))
        applied = await after.recover(range(PARTITIONS), reader)
        assert applied == 3000 + 1000 + 1  # compaction may not have run: every record read
        want = {**states(0, 3000, "a"), **states(0, 1000, "b")}
        del want[gone]
        assert all(after.get(key) == value for key, value in want.items())
        assert after.get(gone) is None
        held = {key for p in range(PARTITIONS) for key in after.keys_in(p)}
        assert held == set(want)

        # Partition 0 moves away and comes back after another process wrote to it.
        after.release(keep=[1, 2, 3])
        assert list(after.keys_in(0)) == []
        other = Table("members", changelog, PARTITIONS, RocksStore(tmp_path / "other"))
        await other.recover([0], reader)
        moved = {k: v for k, v in states(0, 3000, "c").items()
                 if partition_of(k.encode(), PARTITIONS) == 0}  # fmt: skip
        await other.save(moved, producer)
        other.close()
        await after.recover([0], reader)  # released: read again from its start
        assert all(after.get(key) == value for key, value in moved.items())
        assert set(after.keys_in(0)) == set(moved)
        await after.save({"M00001": b'{"ledger":{"v":"d"}}'}, producer)
        await other_writes(changelog, producer)
        assert await after.recover(range(PARTITIONS), reader) == 1  # only what it missed
        assert after.get("M99999") == b'{"ledger":{"v":"e"}}'
        after.close()
    finally:
        await reader.stop()
        await producer.stop()


async def other_writes(changelog: str, producer: AIOKafkaProducer) -> None:
    """One state written by another process while this one held its partitions (a zombie
    would: ADR 17's single-writer note)."""
    key = b"M99999"
    await producer.send_and_wait(changelog, b'{"ledger":{"v":"e"}}', key=key,
                                 partition=partition_of(key, PARTITIONS))  # fmt: skip
