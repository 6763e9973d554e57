"""`loyalty bench-inbox`: how long an inbox message takes from being posted to being visible
(issue #15: the seed's freshness is 60 s, the target 1 s at p99), beside the broker's own
produce -> consume latency measured in the same run (DESIGN.md §8: a ratio survives a noisy
machine).

1. Baseline: a bare aiokafka producer (acks=all) sends one small record at a time to a topic
   of the run's own, and a consumer already reading it times each from send to receipt.
2. Publish -> visible: the CRM's `POST /v1/inbox/messages` (a global message of the run's
   market, staff token) on a real `loyalty api`, then `GET /v1/inbox?market=` every
   `poll_ms` until the message is listed, through a real `loyalty project` writing
   inbox_messages; timed from just before the POST, so the API's own write is included.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from loyalty import stack
from loyalty.bench.openloop import wait_until_ready
from loyalty.bench.report import BenchReport, Latencies, verdict
from loyalty.chaos import delete_topics
from loyalty.services import Services, free_port
from loyalty.stack import kafka
from processors.base.settings import Settings
from projections.api.auth import Role, issue_token

VISIBLE_P99_MAX_MS = 1000.0
TITLE = "inbox freshness (target: publish -> visible p99 <= 1 s)"
MARKET = "BENCH"


async def broker_latency(settings: Settings, probes: int) -> Latencies:
    """Produce -> consume of one record at a time on a fresh topic: the broker's own floor."""
    topic = settings.topic(f"bench-inbox-baseline-{uuid.uuid4().hex[:6]}")
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all",
                                enable_idempotence=True, linger_ms=0)  # fmt: skip
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.bootstrap_servers,
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                fetch_max_wait_ms=100)  # fmt: skip
    times = Latencies("broker_produce_to_consume")
    await kafka.ensure_topics(settings.bootstrap_servers, {topic: (1, {})})
    await producer.start()
    try:
        await (await producer.send(topic, b"warm-up"))
        await consumer.start()
        try:
            await consumer.getone()
            for n in range(probes):
                started = time.perf_counter()
                await producer.send(topic, f"probe-{n}".encode())
                record = await consumer.getone()
                assert record.value == f"probe-{n}".encode()
                times.add(time.perf_counter() - started, time.time())
        finally:
            await consumer.stop()
    finally:
        await producer.stop()
    return times


async def publish_to_visible(base_url: str, secret: str, probes: int, poll_ms: float) -> Latencies:
    """POST a global message, then read the anonymous inbox until it is there; per probe."""
    now = datetime.now(UTC)
    staff = issue_token(secret, "crm-bench", Role.STAFF, now=now, ttl=timedelta(hours=2))
    headers = {"Authorization": f"Bearer {staff}"}
    times = Latencies("publish_to_visible")
    run = uuid.uuid4().hex[:8]
    async with aiohttp.ClientSession(base_url) as session:
        for n in range(probes):
            started = time.perf_counter()
            body = {"market": MARKET, "campaign_id": "BENCH", "title": f"Probe {n}",
                    "body": "How long until the inbox shows me?",
                    "deep_link_url": "https://www.example.com/offers"}  # fmt: skip
            key = {"Idempotency-Key": f"bench-inbox-{run}-{n}"}
            async with session.post("/v1/inbox/messages", json=body,
                                    headers=headers | key) as response:  # fmt: skip
                if response.status != 202:
                    raise RuntimeError(f"POST answered {response.status}: {await response.text()}")
                message_id = (await response.json())["message_id"]
            while True:
                params = {"market": MARKET, "limit": "5"}
                async with session.get("/v1/inbox", params=params) as response:
                    listed = (await response.json())["messages"]
                if any(m["message_id"] == message_id for m in listed):
                    break
                if time.perf_counter() - started > 60:
                    raise RuntimeError(f"message {n} not visible after 60 s")
                await asyncio.sleep(poll_ms / 1000)
            times.add(time.perf_counter() - started, time.time())
    return times


async def run_inbox_bench(
    settings: Settings, dsn: str, *, probes: int, poll_ms: float, log_dir: Path,
    echo: Any = print,
) -> BenchReport:  # fmt: skip
    """Both measurements on the run's own topics; `dsn` must be a fresh, migrated database."""
    logging.getLogger("aiohttp").setLevel(logging.WARNING)
    isolated = settings.model_copy(
        update={"topic_prefix": f"benchinbox{uuid.uuid4().hex[:6]}.", "database_url": dsn}
    )
    await asyncio.to_thread(stack.up, isolated)
    report = BenchReport(
        "inbox-freshness",
        context={"probes": probes, "poll_ms": poll_ms,
                 "targets": {"publish_to_visible_p99_ms_max": VISIBLE_P99_MAX_MS}},
    )  # fmt: skip
    port = free_port()
    services = Services(isolated, log_dir)
    try:
        baseline = await broker_latency(isolated, probes)
        echo(f"baseline: {probes} records produced and consumed")
        api = services.start("api", "api", "--port", str(port))
        services.start("projector", "project")
        base_url = f"http://127.0.0.1:{port}"
        await wait_until_ready(base_url, api)
        visible = await publish_to_visible(
            base_url, isolated.api_secret.get_secret_value(), probes, poll_ms
        )
        echo(f"publish -> visible: {probes} messages")
    finally:
        services.stop()
        await delete_topics(isolated.bootstrap_servers, isolated.topic_prefix)
    fill(report, baseline, visible)
    return report


def fill(report: BenchReport, baseline: Latencies, visible: Latencies) -> None:
    """The measurements, their percentiles and the ratio of the two p99s into `report`."""
    floor, seen = baseline.summary(), visible.summary()
    ratio = round(seen["p99_ms"] / floor["p99_ms"], 2)
    report.context |= {
        "latency_ms": {baseline.name: floor, visible.name: seen},
        "visible_p99_over_broker_p99": ratio,
        "publish_to_visible_within_target": seen["p99_ms"] <= VISIBLE_P99_MAX_MS,
    }
    report.add_latencies(baseline, "messages", "baseline: bare aiokafka, one record at a time")
    report.add_latencies(visible, "messages", "POST /v1/inbox/messages -> GET /v1/inbox")
    report.judge(verdict(
        "#15 inbox publish → visible, p99", seen["p99_ms"], at_most=VISIBLE_P99_MAX_MS,
        unit="ms", baseline=f"broker p99 {floor['p99_ms']} ms: {ratio}×",
    ))  # fmt: skip
