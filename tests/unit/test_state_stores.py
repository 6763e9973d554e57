"""A table's local stores (in memory, on disk) hold the same entries for the same changelog,
the table writes its changelog before its store, and the decoded-state cache keeps to its
bound in bytes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from loyalty.bench.pure import AckedAtOnce
from processors.runtime.batch import StateCache
from processors.runtime.stores import MemoryStore, RocksStore, Store
from processors.runtime.table import Table, part_key, partition_of


@pytest.fixture(params=["memory", "rocksdb"])
def store(request, tmp_path) -> Iterator[Store]:  # type: ignore[no-untyped-def]
    made: Store = MemoryStore() if request.param == "memory" else RocksStore(tmp_path / "db")
    yield made
    made.close()


def test_a_store_applies_changelog_records_in_order_and_a_tombstone_deletes(store):  # type: ignore[no-untyped-def]
    store.apply(0, [(b"m1", b"one"), (b"m2", b"two"), (b"m1", b"uno"), (b"m2", None)])
    assert (store.get(0, b"m1"), store.get(0, b"m2")) == (b"uno", None)


def test_a_store_keeps_each_partition_apart(store):  # type: ignore[no-untyped-def]
    store.apply(0, [(b"a", b"0a"), (b"b", b"0b")])
    store.apply(1, [(b"a", b"1a")])
    store.apply(255, [(b"z", b"255z")])
    assert sorted(store.keys(0)) == [b"a", b"b"]
    assert (store.get(1, b"a"), store.get(1, b"b")) == (b"1a", None)
    store.drop(0)
    assert (list(store.keys(0)), list(store.keys(1)), list(store.keys(255))) == ([], [b"a"], [b"z"])


def test_the_on_disk_store_holds_many_states_and_reads_back_every_byte(tmp_path):  # type: ignore[no-untyped-def]
    store = RocksStore(tmp_path / "db", cache_bytes=1 << 20, write_buffer_bytes=1 << 20)
    states = {f"M{n:05d}".encode(): os.urandom(200 + n % 300) for n in range(20_000)}
    for partition in range(4):
        store.apply(partition, [(k, v) for k, v in states.items() if hash(k) % 4 == partition])
    assert all(store.get(hash(k) % 4, k) == v for k, v in states.items())
    assert sum(len(list(store.keys(p))) for p in range(4)) == len(states)
    store.close()


def test_the_on_disk_store_is_deleted_on_close_and_left_by_no_process(tmp_path):  # type: ignore[no-untyped-def]
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    left = tmp_path / f"members.{dead.stdout.strip()}"  # a process killed before its close
    left_too = tmp_path / f"other-table.{dead.stdout.strip()}"
    alive = tmp_path / f"other-table.{os.getppid()}"
    for directory in (left, left_too, alive):
        directory.mkdir()
    store = RocksStore.for_process(tmp_path, "members")
    assert store.path == tmp_path / f"members.{os.getpid()}"
    assert (left.exists(), left_too.exists(), alive.exists()) == (False, False, True)
    store.close()
    assert not store.path.exists()


async def test_a_table_writes_its_changelog_before_its_store(tmp_path):  # type: ignore[no-untyped-def]
    table = Table("t", "t.changelog", 4, RocksStore(tmp_path / "db"))
    producer = AckedAtOnce(keep=True)
    await table.save({"m1": b"one", "m2": b"two"}, producer)  # type: ignore[arg-type]
    assert [(topic, key, value) for topic, value, key, _ in producer.sent] == [
        ("t.changelog", b"m1", b"one"), ("t.changelog", b"m2", b"two"),
    ]  # fmt: skip
    assert [partition for *_, partition in producer.sent] == [
        partition_of(b"m1", 4), partition_of(b"m2", 4),
    ]  # fmt: skip
    assert (table.get("m1"), table.get("m2")) == (b"one", b"two")
    assert table.held() == {partition_of(b"m1", 4), partition_of(b"m2", 4)}
    table.close()


async def test_a_table_whose_changelog_write_fails_keeps_its_store_as_it_was(tmp_path):  # type: ignore[no-untyped-def]
    class Refusing(AckedAtOnce):
        async def send(self, topic, value, key=None, partition=None):  # type: ignore[no-untyped-def]
            raise ConnectionError("broker gone")

    table = Table("t", "t.changelog", 1, RocksStore(tmp_path / "db"))
    table.load(0, [(b"m1", b"before")])
    with pytest.raises(ConnectionError):
        await table.save({"m1": b"after"}, Refusing())  # type: ignore[arg-type]
    assert table.get("m1") == b"before"
    table.close()


def test_a_released_partition_is_forgotten_and_the_kept_ones_stay(tmp_path):  # type: ignore[no-untyped-def]
    table = Table("t", "t.changelog", 2, RocksStore(tmp_path / "db"))
    keys = {partition_of(k.encode(), 2): k for k in ("a", "b", "c", "d", "e")}
    for partition, key in keys.items():
        table.load(partition, [(key.encode(), b"state")])
    table.release(keep=[0])
    assert (list(table.keys_in(0)), list(table.keys_in(1))) == ([keys[0]], [])
    assert table.held() == {0}
    table.close()


def test_the_state_cache_drops_the_least_recently_used_past_its_bytes():
    cache = StateCache(max_entries=100, max_bytes=250)
    for key in ("a", "b", "c"):
        cache.put(key, key.encode() * 100, f"state {key}")
    assert (len(cache), cache.stored_bytes) == (2, 200)
    assert cache.take("a", b"a" * 100) is None
    assert cache.take("b", b"b" * 100) == "state b"
    assert (len(cache), cache.stored_bytes) == (1, 100)


def test_the_state_cache_serves_a_state_only_for_the_bytes_it_was_decoded_from():
    cache = StateCache()
    cache.put("m1", b'{"v":1}', "state 1")
    assert cache.take("m1", b'{"v":2}') is None  # the table moved on: decode again
    assert cache.stored_bytes == 0
    cache.put("m1", b'{"v":2}', "state 2")
    assert cache.take("m1", b'{"v":' + b"2}") == "state 2"  # equal bytes, another object


def test_an_entrys_parts_are_read_with_it_and_no_other_entrys(store):  # type: ignore[no-untyped-def]
    store.apply(0, [
        (b"P1", b"entry"), (b"P1\x1fr:a", b"A"), (b"P1\x1fr:b", b"B"),
        (b"P10", b"other"), (b"P10\x1fr:a", b"not P1's"), (b"P", b"shorter"),
    ])  # fmt: skip
    assert list(store.items(0, b"P1")) == [(b"P1\x1fr:a", b"A"), (b"P1\x1fr:b", b"B")]
    store.apply(0, [(b"P1\x1fr:a", None)])  # a tombstone: the part is gone
    assert list(store.items(0, b"P1")) == [(b"P1\x1fr:b", b"B")]
    assert list(store.items(1, b"P1")) == []
    store.drop(0)
    assert list(store.items(0, b"P10")) == []


async def test_a_tables_parts_live_in_their_entrys_partition_and_a_none_deletes(tmp_path):  # type: ignore[no-untyped-def]
    table = Table("t", "t.changelog", 8, RocksStore(tmp_path / "db"))
    producer = AckedAtOnce(keep=True)
    part = part_key("PROMO-7", "reservation:CODE|tx-1")
    await table.save({"PROMO-7": b"counts", part: b"held"}, producer)  # type: ignore[arg-type]
    home = partition_of(b"PROMO-7", 8)
    assert [(p, k) for _, _, k, p in producer.sent] == [(home, b"PROMO-7"), (home, part.encode())]
    assert table.parts("PROMO-7") == {"reservation:CODE|tx-1": b"held"}
    assert list(table.keys_in(home)) == ["PROMO-7"]  # entries only: parts are read with them
    await table.save({part: None}, producer)  # type: ignore[arg-type]
    assert (table.parts("PROMO-7"), table.get("PROMO-7")) == ({}, b"counts")
    table.close()


def test_a_store_counts_the_bytes_of_an_entrys_parts_as_they_change(store):  # type: ignore[no-untyped-def]
    store.apply(0, [(b"P1", b"entry"), (b"P1\x1fr:a", b"AAAA"), (b"P1\x1fr:b", b"BB"),
                    (b"P10\x1fr:a", b"not P1's")])  # fmt: skip
    assert store.parts_bytes(0, b"P1") == 6  # the entry's own bytes are not its parts'
    store.apply(0, [(b"P1\x1fr:a", b"A"), (b"P1\x1fr:b", None), (b"P1\x1fr:c", b"CCC")])
    assert (store.parts_bytes(0, b"P1"), store.parts_bytes(0, b"P10")) == (4, 8)
    assert store.parts_bytes(1, b"P1") == 0
    store.drop(0)
    assert store.parts_bytes(0, b"P1") == 0


def test_the_state_cache_weighs_a_state_by_the_bytes_given():
    cache = StateCache(max_entries=100, max_bytes=250)
    cache.put("P1", b"e" * 10, "promotion with its parts", weight=200)
    cache.put("P2", b"e" * 10, "another", weight=100)  # 300 > 250: P1 goes
    assert (cache.take("P1", b"e" * 10), cache.stored_bytes) == (None, 100)
