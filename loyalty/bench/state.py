"""A million members' state (issue #16, target 2; ADR 24): what holding N members' states
costs a process in memory, what a batch pays for where they are kept, and how long a
partition's states take to recover from the changelog on the real broker.

Each variant runs in a fresh interpreter of its own (the memory a process has used is never
given back whole, so two variants in one process would measure each other), in alternating
order across rounds, beside the baseline of the same run:

- `json-dict` (baseline): the same members' raw JSON bytes in one plain dict;
- `memory`: the worker's `Table` on its in-memory store (a dict of bytes per partition);
- `memory-zlib`: the same, each state zlib-compressed (what a compact encoding would buy);
- `rocksdb`: the worker's `Table` on its on-disk store (`RocksStore`), as the worker runs.

The states are the member rules' own: the first `distinct` members enrolled and given one
purchase by `processors.rules.member`, the others copies of those under their own ids (as
the issue's figure: a million members of one purchase each). Then `purchases` purchases of
members spread over the whole table go through the batch protocol (no Kafka, as
`loyalty.bench.pure`), each of a member not seen since the load, as at a million members.

Recovery (with a broker): the states are written to a compacted changelog topic of their own,
then each variant's fresh process reads partition 0 back (one partition's time after a
restart), then the other partitions; the baseline is a bare consumer reading partition 0 to
its end and keeping nothing. The topic is deleted at the end.
"""

from __future__ import annotations

import asyncio
import gc
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from loyalty.bench.load import enrolment, member, program, purchase
from loyalty.bench.pure import AckedAtOnce, as_delivered
from loyalty.bench.report import BenchReport, Measurement
from processors.agents.members import Members
from processors.base.topics import COMPACTED
from processors.base.tuning import tune_gc
from processors.codec.avro import AvroCodec
from processors.frontdoor import FrontDoor
from processors.rules import member as rules
from processors.rules.member import Config, MemberState
from processors.runtime.batch import Batches
from processors.runtime.stores import MemoryStore, RocksStore, Store
from processors.runtime.table import Table, partition_of
from processors.runtime.topics import ensure_topics

HOLD_VARIANTS = ("json-dict", "memory", "memory-zlib", "rocksdb")
RECOVER_VARIANTS = ("bare-read", "memory", "rocksdb")
MiB = 1 << 20


def rss_bytes() -> int:
    """This process's resident set size now (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def config() -> Config:
    bench = program()
    return Config({bench.program_id: bench})


def member_states(members: int, distinct: int = 10_000) -> Iterator[tuple[bytes, bytes]]:
    """(key, stored state) of `members` members with one purchase each, in member order: the
    first `distinct` decided by the rules, the others copies under their own ids."""
    rules_config = config()
    templates: list[tuple[bytes, bytes]] = []
    for m in range(min(distinct, members)):
        state = MemberState(member(m))
        for event in (enrolment(m), purchase(m, members)):
            state = rules.handle(state, event, rules_config).state
        templates.append((member(m).encode(), rules.dump_state(state)))
    for m in range(members):
        template, raw = templates[m % len(templates)]
        key = member(m).encode()
        yield key, raw if key == template else raw.replace(template, key)


def _store(variant: str, workdir: Path) -> Store:
    if variant == "rocksdb":
        return RocksStore(workdir / f"bench-state.{uuid.uuid4().hex[:8]}")
    return MemoryStore()


def _fill(table: Table, states: Iterator[tuple[bytes, bytes]], *, compress: bool) -> int:
    """Load `states` into `table` as a recovery would, in chunks; the stored bytes."""
    stored = 0
    chunk: dict[int, list[tuple[bytes, bytes | None]]] = {}
    for n, (key, raw) in enumerate(states, 1):
        value = zlib.compress(raw, 1) if compress else raw
        stored += len(value)
        chunk.setdefault(partition_of(key, table.partitions), []).append((key, value))
        if n % 20_000 == 0:
            for partition, entries in chunk.items():
                table.load(partition, entries)
            chunk = {}
    for partition, entries in chunk.items():
        table.load(partition, entries)
    return stored


async def _hold(args: dict[str, Any]) -> dict[str, Any]:
    """One variant's process: hold the states, then run purchases over them."""
    variant, members, partitions = args["variant"], args["members"], args["partitions"]
    tune_gc()
    gc.collect()
    before = rss_bytes()
    started = time.perf_counter()
    out: dict[str, Any] = {"variant": variant, "members": members}
    table: Table | None = None
    if variant == "json-dict":
        held = dict(member_states(members, args["distinct"]))
        out["stored_bytes"] = sum(len(v) for v in held.values())
        out["python_overhead_bytes"] = (
            sys.getsizeof(held)
            + sum(sys.getsizeof(k) for k in held)
            + sum(sys.getsizeof(v) - len(v) for v in held.values())
        )
    else:
        table = Table("ledgers_by_member", "bench.changelog", partitions,
                      _store(variant, Path(args["workdir"])))  # fmt: skip
        out["stored_bytes"] = _fill(table, member_states(members, args["distinct"]),
                                    compress=variant == "memory-zlib")  # fmt: skip
    out["load_seconds"] = time.perf_counter() - started
    gc.collect()
    out["rss_before_bytes"] = before
    out["rss_held_bytes"] = rss_bytes()
    if table is not None and variant != "memory-zlib" and args["purchases"]:
        out.update(await _purchases(table, members, args["purchases"]))
        gc.collect()
        out["rss_after_purchases_bytes"] = rss_bytes()
    if table is not None:
        table.close()
    return out


async def _purchases(table: Table, members: int, purchases: int) -> dict[str, Any]:
    """`purchases` purchases through the batch protocol, each of a member spread over the
    table (the n-th one of member n·7919 mod N), none of them in the decoded-state cache."""
    codec = AvroCodec()
    producer = AckedAtOnce()
    batches = Batches(Members(config()), codec=codec, door=FrontDoor(codec, producer),
                      producer=producer, topic_name=str, table=table)  # fmt: skip
    load = [purchase(members + (n * 7919) % members, members) for n in range(purchases)]
    records = as_delivered(codec, load, table.partitions)
    settled = time.perf_counter()
    while isinstance(table.store, RocksStore) and table.store.compacting():
        await asyncio.sleep(0.2)  # the load's compactions, on RocksDB's threads: not a batch's
    settled = time.perf_counter() - settled
    started, cpu, loop = time.perf_counter(), time.process_time(), time.thread_time()
    for start in range(0, len(records), 2000):
        await batches.run_batch(records[start : start + 2000])
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"purchases": purchases, "purchase_seconds": seconds, "purchase_cpu_seconds": cpu,
            "purchase_loop_cpu_seconds": time.thread_time() - loop,
            "compaction_wait_seconds": settled,
            "cache_entries": len(batches.cache), "cache_stored_bytes": batches.cache.stored_bytes,
            "cache_hits": batches.cache.hits}  # fmt: skip


async def _recover(args: dict[str, Any]) -> dict[str, Any]:
    """One variant's process after a restart: partition 0 from the changelog, then the rest."""
    variant, partitions = args["variant"], args["partitions"]
    gc.collect()
    before = rss_bytes()
    reader = AIOKafkaConsumer(bootstrap_servers=args["bootstrap"], enable_auto_commit=False)
    await reader.start()
    out: dict[str, Any] = {"variant": variant}
    try:
        if variant == "bare-read":
            started = time.perf_counter()
            out["records_partition_0"] = await _read_to_end(reader, args["changelog"])
            out["seconds_partition_0"] = time.perf_counter() - started
        else:
            table = Table("ledgers_by_member", args["changelog"], partitions,
                          _store(variant, Path(args["workdir"])))  # fmt: skip
            started = time.perf_counter()
            out["records_partition_0"] = await table.recover([0], reader)
            out["seconds_partition_0"] = time.perf_counter() - started
            started = time.perf_counter()
            out["records_others"] = await table.recover(range(1, partitions), reader)
            out["seconds_others"] = time.perf_counter() - started
            gc.collect()
            out["rss_recovered_bytes"] = rss_bytes()
            table.close()
    finally:
        await reader.stop()
    out["rss_before_bytes"] = before
    return out


async def _read_to_end(reader: AIOKafkaConsumer, topic: str) -> int:
    tp = TopicPartition(topic, 0)
    end = (await reader.end_offsets([tp]))[tp]
    reader.assign([tp])
    reader.seek(tp, 0)
    seen = 0
    while await reader.position(tp) < end:
        fetched = await reader.getmany(tp, timeout_ms=500)
        seen += sum(len(records) for records in fetched.values())
    return seen


def _child(kind: str, args: dict[str, Any]) -> dict[str, Any]:
    """Run one variant in a fresh interpreter; what it measured."""
    done = subprocess.run(
        [sys.executable, "-m", "loyalty.bench.state", "--child", kind, json.dumps(args)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{kind} {args['variant']} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def write_changelog(bootstrap: str, topic: str, partitions: int, members: int,
                           distinct: int) -> float:  # fmt: skip
    """The members' states on a compacted topic of their own, as the worker would write them."""
    await ensure_topics(bootstrap, {topic: (partitions, dict(COMPACTED))})
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                max_batch_size=256 * 1024, enable_idempotence=True)  # fmt: skip
    await producer.start()
    started = time.perf_counter()
    try:
        pending = []
        for key, raw in member_states(members, distinct):
            partition = partition_of(key, partitions)
            pending.append(await producer.send(topic, raw, key=key, partition=partition))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def _delete_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()


def _order(variants: tuple[str, ...], rounds: int) -> list[str]:
    """Alternating order: A B C, C B A, A B C...; each variant meets the others' neighbours."""
    return [v for r in range(rounds) for v in (variants if r % 2 == 0 else variants[::-1])]


def run_state_bench(*, members: int, purchases: int, distinct: int = 10_000, rounds: int = 2,
                    partitions: int = 8, bootstrap: str | None = None,
                    topic_prefix: str = "", workdir: Path | None = None,
                    echo: Any = print) -> BenchReport:  # fmt: skip
    """Measure every variant `rounds` times in alternating order (see the module)."""
    report = BenchReport("member-state", context={
        "members": members, "purchases": purchases, "distinct_states": distinct,
        "partitions": partitions, "rounds": rounds,
    })  # fmt: skip
    scratch = Path(tempfile.mkdtemp(prefix="bench-state-", dir=workdir))
    common = {"members": members, "distinct": distinct, "purchases": purchases,
              "partitions": partitions, "workdir": str(scratch)}  # fmt: skip
    try:
        _run(report, common, rounds, bootstrap, topic_prefix, echo)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return report


def _run(report: BenchReport, common: dict[str, Any], rounds: int, bootstrap: str | None,
         topic_prefix: str, echo: Any) -> None:  # fmt: skip
    members, partitions, distinct = common["members"], common["partitions"], common["distinct"]
    held: list[dict[str, Any]] = []
    for variant in _order(HOLD_VARIANTS, rounds):
        result = _child("hold", {**common, "variant": variant})
        echo(_hold_line(result))
        held.append(result)
    report.context["hold"] = held
    for result in held:
        report.add(_hold_measurement(result))
    if bootstrap is not None:
        topic = f"{topic_prefix}bench-state-{uuid.uuid4().hex[:6]}-changelog"
        try:
            wrote = asyncio.run(write_changelog(bootstrap, topic, partitions, members, distinct))
            report.context["changelog_write_seconds"] = round(wrote, 2)
            recovered: list[dict[str, Any]] = []
            for variant in _order(RECOVER_VARIANTS, rounds):
                where = {"variant": variant, "bootstrap": bootstrap, "changelog": topic}
                result = _child("recover", {**common, **where})
                echo(_recover_line(result))
                recovered.append(result)
            report.context["recover"] = recovered
            for result in recovered:
                report.add(Measurement(
                    f"recover partition 0: {result['variant']}", "records",
                    result["records_partition_0"], result["seconds_partition_0"],
                    _recover_note(result),
                ))  # fmt: skip
        finally:
            asyncio.run(_delete_topic(bootstrap, topic))


def _hold_measurement(result: dict[str, Any]) -> Measurement:
    if "purchase_seconds" in result:
        return Measurement(f"purchases over the table: {result['variant']}", "purchases",
                           result["purchases"], result["purchase_seconds"],
                           _hold_note(result))  # fmt: skip
    return Measurement(f"hold the states: {result['variant']}", "members", result["members"],
                       result["load_seconds"], _hold_note(result))  # fmt: skip


def _per_member(result: dict[str, Any], key: str) -> float:
    return float(result[key] - result["rss_before_bytes"]) / float(result["members"])


def _hold_note(result: dict[str, Any]) -> str:
    note = (f"RSS {result['rss_held_bytes'] / MiB:,.0f} MiB held "
            f"({_per_member(result, 'rss_held_bytes'):,.0f} B a member; stored "
            f"{result['stored_bytes'] / result['members']:,.0f} B)")  # fmt: skip
    if "purchase_seconds" in result:
        per = 1e6 / result["purchases"]
        note += (f"; {result['rss_after_purchases_bytes'] / MiB:,.0f} MiB after purchases, "
                 f"{per * result['purchase_loop_cpu_seconds']:,.0f} µs CPU a purchase "
                 f"({per * result['purchase_cpu_seconds']:,.0f} with the store's threads), "
                 f"cache {result['cache_entries']:,} states")  # fmt: skip
    return note


def _hold_line(result: dict[str, Any]) -> str:
    return f"{result['variant']:>12}: {_hold_note(result)}"


def _recover_note(result: dict[str, Any]) -> str:
    if "seconds_others" not in result:
        return "a consumer reading to the end, keeping nothing"
    return (f"then {result['records_others']:,} records of the other partitions in "
            f"{result['seconds_others']:.1f} s; RSS {result['rss_recovered_bytes'] / MiB:,.0f} "
            f"MiB with every partition held")  # fmt: skip


def _recover_line(result: dict[str, Any]) -> str:
    return (f"{result['variant']:>12}: partition 0, {result['records_partition_0']:,} records "
            f"in {result['seconds_partition_0']:.2f} s; {_recover_note(result)}")  # fmt: skip


def main() -> None:  # pragma: no cover - the children of `run_state_bench`
    kind, args = sys.argv[2], json.loads(sys.argv[3])
    run = _hold if kind == "hold" else _recover
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":  # pragma: no cover
    main()
