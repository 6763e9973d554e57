"""A worker process: one producer, the config feed, a runner per agent, and a small HTTP
server for `/metrics` (Prometheus) and `/healthz`. Runs until SIGTERM or SIGINT, then lets each
runner finish and commit its batch in hand, leaves the groups and flushes the producer.

`/healthz` answers 503 with the reasons while the config feed has not caught up, while a
runner has not recovered its first assignment, or while a partition with records waiting has
not committed for `stall_seconds`: a stall shows within that time, not after Faust's 300 s.
A runner that dies takes the process down (exit 1), for the supervisor to restart it.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer

from processors import native
from processors.base.health import body, serve
from processors.base.logs import get_logger
from processors.config_feed import ConfigFeed
from processors.runtime.runner import Runner

log = get_logger(__name__)


class Worker:
    """Runs `runners` beside `feed` until stopped."""

    def __init__(
        self,
        producer: AIOKafkaProducer,
        feed: ConfigFeed,
        runners: Sequence[Runner],
        *,
        http_host: str = "127.0.0.1",
        http_port: int = 0,
        stall_seconds: float = 60.0,
    ):
        self.producer = producer
        self.feed = feed
        self.runners = list(runners)
        self.http_host = http_host
        self.http_port = http_port
        self.stall_seconds = stall_seconds
        self.stopping = asyncio.Event()

    def health(self) -> tuple[bool, dict[str, object]]:
        """Whether the worker is making progress, and what stands in its way if not."""
        problems: list[str] = []
        if not self.feed.ready.is_set():
            problems.append(f"config: {self.feed.status}")
        for runner in self.runners:
            if not runner.ready.is_set():
                problems.append(f"{runner.name}: waiting for its partitions")
            for stalled in runner.stalled(self.stall_seconds):
                problems.append(
                    f"{runner.name}: {stalled} has records waiting and has not committed "
                    f"for {self.stall_seconds:g}s"
                )
        return body(problems)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stopping.set)
        await self.producer.start()
        log.info("worker.started", rule_core=native.BUILD)  # compiled or source (ADR 41)
        site = await serve(self.http_host, self.http_port, self.health)
        feed = asyncio.create_task(self.feed.run(), name="config-feed")
        tasks = [asyncio.create_task(r.run(self.stopping), name=r.name) for r in self.runners]
        stop = asyncio.create_task(self.stopping.wait())
        failed: BaseException | None = None
        try:
            done, _ = await asyncio.wait([*tasks, feed, stop], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stop and task.exception() is not None:
                    failed = task.exception()
                    log.error("worker.task_failed", task=task.get_name(), error=repr(failed))
            self.stopping.set()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            feed.cancel()
            await asyncio.gather(feed, return_exceptions=True)
            if site is not None:
                await site.cleanup()
            await self.producer.stop()
            log.info("worker.stopped")
        if failed is not None:
            raise SystemExit(1)
