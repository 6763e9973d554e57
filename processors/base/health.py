"""How a long-running consumer shows it is alive: where each of its partitions stands
(`Progress`: the next offset applied, when it last moved, the lag behind the partition's end),
and a small HTTP server for `/metrics` (Prometheus) and `/healthz` (`serve`).

A partition is *stalled* when records wait on it (its end is past the offset applied) and the
offset applied has not moved for a given time: what turns `/healthz` to 503. The worker's
runners and the projector use the same rule. Knows no topic, rule or table.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiohttp import web
from aiokafka import TopicPartition
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest

from processors.base.logs import get_logger

log = get_logger(__name__)
LAG = Gauge("loyalty_consumer_lag", "Records behind the end of the partition.",
            ["agent", "topic", "partition"])  # fmt: skip

Health = Callable[[], tuple[bool, dict[str, object]]]


class Progress:
    """The offsets one consumer has applied, per partition, and when each last moved."""

    def __init__(self, name: str):
        self.name = name
        self._applied: dict[TopicPartition, int] = {}
        self._moved_at: dict[TopicPartition, float] = {}

    def assigned(self, tps: Iterable[TopicPartition]) -> None:
        """New partitions: their clock starts now (where they stand is learned next)."""
        now = time.monotonic()
        for tp in tps:
            self._moved_at[tp] = now

    def revoked(self, tps: Iterable[TopicPartition]) -> None:
        for tp in tps:
            self._applied.pop(tp, None)
            self._moved_at.pop(tp, None)
            LAG.labels(self.name, tp.topic, str(tp.partition)).set(0)

    def knows(self, tp: TopicPartition) -> bool:
        return tp in self._applied

    def applied(self, offsets: Mapping[TopicPartition, int]) -> None:
        """`offsets`: the next offset to apply, per partition, now durable."""
        now = time.monotonic()
        for tp, offset in offsets.items():
            if offset != self._applied.get(tp):
                self._moved_at[tp] = now
            self._applied[tp] = offset

    def observe(self, ends: Mapping[TopicPartition, int | None]) -> None:
        """Set the lag gauges from each partition's end (its high watermark, when known)."""
        for tp, end in ends.items():
            if end is not None and tp in self._applied:
                lag = max(end - self._applied[tp], 0)
                LAG.labels(self.name, tp.topic, str(tp.partition)).set(lag)

    def stalled(self, ends: Mapping[TopicPartition, int | None], after_seconds: float) -> list[str]:
        """Partitions with records waiting whose applied offset has not moved for
        `after_seconds`."""
        now = time.monotonic()
        stuck = []
        for tp, end in ends.items():
            applied = self._applied.get(tp)
            waiting = end is not None and applied is not None and end > applied
            if waiting and now - self._moved_at.get(tp, now) > after_seconds:
                stuck.append(f"{tp.topic}[{tp.partition}]")
        return stuck


async def serve(host: str, port: int, health: Health) -> web.AppRunner | None:
    """Serve `/metrics` and `/healthz` (200 or 503 with `health()`'s body) until cleaned up.
    None when `port` is 0, or taken (logged loudly: the process keeps working)."""
    if not port:
        return None

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        healthy, body = health()
        return web.Response(status=200 if healthy else 503, text=json.dumps(body),
                            content_type="application/json")  # fmt: skip

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as error:
        log.error("health.http_unavailable", port=port, error=str(error))
        await runner.cleanup()
        return None
    log.info("health.http", url=f"http://{host}:{port}/healthz")
    return runner


def body(problems: list[str], **extra: Any) -> tuple[bool, dict[str, object]]:
    """A health answer: healthy when there is no problem."""
    return not problems, {"healthy": not problems, "problems": problems, **extra}
