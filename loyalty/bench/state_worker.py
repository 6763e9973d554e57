"""The worker itself holding a million members (issue #16, target 2): its RSS and its recovery
time, read from the real process on the local stack (`loyalty bench-state --worker`).

1. Isolated topics (a fresh prefix); the members' states (`loyalty.bench.state`) written to
   the worker's own member changelog, and the bench programme to the config topic.
2. A worker started: the time its member table took to recover every partition (its own log
   line `runner.table_recovered`), its RSS then.
3. Purchases of members spread over the table, until each has its ledger event; the RSS then.
4. Optionally a day's tick, which reaches every member of every partition (the batch protocol
   saves as it goes past its working-set bound); the peak RSS (VmHWM) it left.
5. The worker stopped and started again: the recovery time after a restart.
The topics are deleted at the end.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from loyalty import stack
from loyalty.audit import uncommitted
from loyalty.bench.load import program, purchase
from loyalty.bench.report import BenchReport, verdict
from loyalty.bench.state import MiB, write_changelog
from loyalty.producing import publish_events
from loyalty.services import Service, Services
from processors.app import changelog
from processors.base.settings import Settings
from processors.base.topics import LEDGER
from processors.codec.avro import AvroCodec
from processors.contract.clock import DayStarted


def process_memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (the peak) of a process, in bytes."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0]) * 1024
    return out


async def _recovered(worker: Service, seconds: float, skip: int) -> dict[str, Any]:
    """The worker's log line saying its member table is recovered (past `skip` bytes: the
    log of an earlier run)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert worker.alive(), worker.log_tail()
        with worker.log_path.open("rb") as log:
            log.seek(skip)
            lines = log.read().decode(errors="replace").splitlines()
        for line in lines:
            if '"runner.table_recovered"' in line and '"ledgers_by_member"' in line:
                found: dict[str, Any] = json.loads(line)
                if found.get("records"):
                    return found
        await asyncio.sleep(0.5)
    raise TimeoutError(f"the member table did not recover:\n{worker.log_tail()}")


async def _ledger_events(settings: Settings) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    await consumer.start()
    try:
        tps = [TopicPartition(settings.topic(LEDGER.name), p) for p in range(settings.partitions)]
        return sum((await consumer.end_offsets(tps)).values())
    finally:
        await consumer.stop()


async def _until(check: Any, seconds: float, worker: Service) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert worker.alive(), worker.log_tail()
        if time.monotonic() > deadline:
            raise TimeoutError(worker.log_tail())
        await asyncio.sleep(1)


async def _purchases(settings: Settings, members: int, count: int) -> None:
    codec = AvroCodec()
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=5)
    await producer.start()
    try:
        sent = []
        for n in range(count):
            event = purchase(members + (n * 7919) % members, members)
            sent.append(await producer.send(settings.topic(event.topic), codec.encode(event),
                                            key=event.partition_key().encode()))  # fmt: skip
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def _delete_topics(settings: Settings) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(settings.topic_prefix)]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


async def measure_worker(
    settings: Settings,
    *,
    members: int,
    purchases: int,
    distinct: int,
    day_tick: bool,
    log_dir: Path,
    echo: Any = print,
) -> dict[str, Any]:
    """Steps 1-5 of the module; what the worker's process used at each."""
    isolated = settings.model_copy(update={"topic_prefix": f"bstate{uuid.uuid4().hex[:6]}."})
    await asyncio.to_thread(stack.up, isolated)
    out: dict[str, Any] = {"members": members, "purchases": purchases}
    try:
        out["changelog_write_seconds"] = await write_changelog(
            isolated.bootstrap_servers, changelog(isolated, "ledgers_by_member"),
            isolated.partitions, members, distinct,
        )  # fmt: skip
        await publish_events(isolated, [program()], AvroCodec())
        services = Services(isolated, log_dir)
        try:
            for run in ("start", "restart"):
                log = log_dir / "worker.log"
                skip = log.stat().st_size if log.exists() else 0
                worker = services.start("worker", "worker")
                assert worker.process is not None
                pid = worker.process.pid
                recovered = await _recovered(worker, 900, skip)
                out[f"{run}_recovery_seconds"] = recovered["seconds"]
                out[f"{run}_recovered_records"] = recovered["records"]
                out[f"{run}_rss_recovered_bytes"] = process_memory(pid)["VmRSS"]
                echo(f"worker {run}: {recovered['records']:,} records of "
                     f"{len(recovered['partitions'])} partitions recovered in "
                     f"{recovered['seconds']:.1f} s, RSS "
                     f"{out[f'{run}_rss_recovered_bytes'] / MiB:,.0f} MiB")  # fmt: skip
                if run == "start":
                    await _steps(isolated, worker, members, purchases, day_tick, out, echo)
                out[f"{run}_rss_peak_bytes"] = process_memory(pid)["VmHWM"]
                services.stop()
        finally:
            services.stop()
    finally:
        await _delete_topics(isolated)
    return out


async def _steps(settings: Settings, worker: Service, members: int, purchases: int,
                 day_tick: bool, out: dict[str, Any], echo: Any) -> None:  # fmt: skip
    """Purchases, then maybe a day's tick, on a running worker."""
    assert worker.process is not None
    pid = worker.process.pid
    base = await _ledger_events(settings)
    started = time.perf_counter()
    await _purchases(settings, members, purchases)

    async def booked() -> bool:
        return await _ledger_events(settings) - base >= purchases

    await _until(booked, 900, worker)
    out["purchases_seconds"] = time.perf_counter() - started
    out["rss_after_purchases_bytes"] = process_memory(pid)["VmRSS"]
    echo(f"worker: {purchases:,} purchases in {out['purchases_seconds']:.1f} s, RSS "
         f"{out['rss_after_purchases_bytes'] / MiB:,.0f} MiB")  # fmt: skip
    if not day_tick:
        return
    on = date(2026, 1, 7)
    midnight = datetime(2026, 1, 7, 5, tzinfo=UTC)  # Toronto's, in UTC
    await publish_events(settings, [DayStarted(
        event_id=f"bench-day-{on}", occurred_at=midnight + timedelta(hours=2), market="CA",
        business_date=on, started_at=midnight,
    )])  # fmt: skip
    started = time.perf_counter()

    async def all_run() -> bool:
        return await uncommitted(settings) == 0

    await asyncio.sleep(2)  # the tick reaches the clock-ticks topic first
    await _until(all_run, 3600, worker)
    out["day_tick_seconds"] = time.perf_counter() - started
    memory = process_memory(pid)
    out["rss_after_day_tick_bytes"], out["rss_peak_after_day_tick_bytes"] = (
        memory["VmRSS"], memory["VmHWM"])  # fmt: skip
    rss, peak = memory["VmRSS"] / MiB, memory["VmHWM"] / MiB
    echo(f"worker: a day's tick over {members:,} members in {out['day_tick_seconds']:.0f} s, "
         f"RSS {rss:,.0f} MiB, peak {peak:,.0f} MiB")  # fmt: skip


RSS_MAX_MIB = 1024.0
"""Issue #16, target 2: the worker's RSS at most 1 GiB with a million members' state."""


def judge(report: BenchReport, worker: dict[str, Any]) -> None:
    """The worker's highest RSS (`measure_worker`'s figures) against the target, beside
    what the same states take as raw JSON in a plain dict in this run, if measured."""
    peak = max((v for k, v in worker.items() if "rss" in k), default=None)
    held = report.context.get("hold")
    raw = [r for r in held if r.get("variant") == "json-dict"] if isinstance(held, list) else []
    beside = (f"recovery of {worker.get('start_recovered_records', 0):,} records in "
              f"{worker.get('start_recovery_seconds', 0):.1f} s")  # fmt: skip
    if raw:
        in_dict = (raw[0]["rss_held_bytes"] - raw[0]["rss_before_bytes"]) / MiB
        beside += f"; the same states as raw JSON in a dict: {in_dict:,.0f} MiB"
    report.judge(verdict(
        f"#16.2 worker RSS, {worker['members']:,} members", None if peak is None else peak / MiB,
        at_most=RSS_MAX_MIB, unit="MiB", baseline=beside,
    ))  # fmt: skip
