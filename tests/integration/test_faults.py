"""Faults on the real stack, each ending with the audit at 0 and every balance equal to the
pure rules': the kill-and-restart chaos run (twice), two workers in one group (a join, a
SIGKILL, a restart), the broker stopped and started mid-stream, and Postgres SIGKILLed
mid-projection. Liveness is checked, not only totals: each waits for the work to finish."""

from __future__ import annotations

import asyncio
import os
import signal
import urllib.error
import urllib.request
from datetime import timedelta

import psycopg
import pytest
from aiokafka.errors import KafkaError

from loyalty.audit import audit
from loyalty.chaos import run_chaos
from loyalty.producing import publish_events
from loyalty.services import Services
from loyalty.stack import kafka, postgres
from loyalty.stack.errors import StackError
from processors.base.settings import Settings
from processors.contract.ledger import LedgerEventRecorded
from tests.integration.test_worker_ledger import Collector, final_balances
from tests.rules.given import T0, Ledgers, bought, enrolled, program

pytestmark = pytest.mark.integration


async def test_the_kill_and_restart_chaos_run_twice_finishes_clean(stack_settings, tmp_path):  # type: ignore[no-untyped-def]
    lines: list[str] = []
    results = await run_chaos(stack_settings, tmp_path, runs=2, members=1500, cap=500, seed=7,
                              pause_share=0.5, echo=lines.append)  # fmt: skip
    assert all(r.ok for r in results), "\n".join(lines)
    assert all(0 < r.ledger_at_kill < r.ledger_total for r in results), "\n".join(lines)


class Load:
    """A programme, `members` members and `purchases_each` purchases each, with the ledger
    events and balances the pure rules give them."""

    def __init__(self, settings: Settings, name: str, members: int, purchases_each: int):
        run = settings.topic_prefix.strip(".")
        self.settings = settings
        self.config = program(f"{name}_{run}", event_id=f"cfg-{name}-{run}")
        self.members = [f"{run}-{name}{n}" for n in range(members)]
        self.enrolments = [enrolled(m, programs=[self.config.program_id]) for m in self.members]
        self.purchases = [
            bought(m, f"{m}-{i}", cents=100 * (i + 1) + 49, at=T0 + timedelta(minutes=i))
            for i in range(purchases_each) for m in self.members
        ]  # fmt: skip
        self.expected = Ledgers({self.config.program_id: self.config})
        self.expected.apply(*self.enrolments, *self.purchases)
        self.want = {e.event_log_id for e in self.expected.emitted
                     if isinstance(e, LedgerEventRecorded)}  # fmt: skip
        prefix = f"{run}-{name}"
        self.ledger = Collector(
            settings.bootstrap_servers, settings.topic("loyalty.ledger.v1"), settings.partitions,
            lambda e: getattr(e, "member_id", "").startswith(prefix),
        )  # fmt: skip

    async def start(self) -> None:
        await self.ledger.start()
        await publish_events(self.settings, [self.config, *self.enrolments])

    async def feed(self, pause: float = 0.1) -> None:
        """The purchases, in chunks `pause` apart: the load keeps coming through whatever
        happens."""
        for start in range(0, len(self.purchases), 500):
            chunk = self.purchases[start : start + 500]
            for _ in range(60):  # while the broker is away: the same events again, same ids
                try:
                    await publish_events(self.settings, chunk)
                    break
                except KafkaError:
                    await asyncio.sleep(1)
            else:
                raise AssertionError("the broker did not come back to take the purchases")
            await asyncio.sleep(pause)

    async def seen(self, count: int, seconds: float = 180) -> bool:
        return await self.ledger.until(lambda es: len({e.event_log_id for e in es}) >= count,
                                       seconds)  # fmt: skip

    async def finished(self, seconds: float = 300) -> bool:
        return await self.ledger.until(lambda es: {e.event_log_id for e in es} >= self.want,
                                       seconds)  # fmt: skip

    async def check(self) -> None:
        """Nothing lost, nothing extra, the same content under each id, the rules' balances,
        and the audit at 0."""
        await self.ledger.stop()
        events = self.ledger.events
        assert {e.event_log_id for e in events} == self.want
        by_id: dict[str, LedgerEventRecorded] = {}
        for event in events:
            assert by_id.setdefault(event.event_log_id, event) == event
        assert final_balances(events) == {
            m: self.expected.balance(m, program_id=self.config.program_id) for m in self.members
        }
        report = await audit(self.settings)
        assert report.ok, report.unaccounted[:10]


async def test_two_workers_a_join_a_kill_and_a_restart_lose_and_double_no_point(isolated, tmp_path):  # type: ignore[no-untyped-def]
    load = Load(isolated, "two", members=300, purchases_each=40)
    services = Services(isolated, tmp_path)
    await load.start()
    first = services.start("worker-1", "worker")
    try:
        feeding = asyncio.create_task(load.feed())
        assert await load.seen(2000), first.log_tail()
        second = services.start("worker-2", "worker")  # joins mid-stream: a rebalance
        assert await load.seen(5000), second.log_tail()
        first.kill()  # its partitions move to the second after the session times out
        assert await load.seen(7000), second.log_tail()
        services.start("worker-1-again", "worker")  # and back: another rebalance
        await feeding
        assert await load.finished(), second.log_tail()
    finally:
        services.stop()
    await load.check()


async def test_the_broker_stopped_and_started_mid_stream_loses_and_doubles_nothing(
    isolated, tmp_path
):  # type: ignore[no-untyped-def]
    load = Load(isolated, "broker", members=200, purchases_each=30)
    services = Services(isolated, tmp_path)
    await load.start()
    worker = services.start("worker", "worker")
    projector = services.start("projector", "project")
    try:
        feeding = asyncio.create_task(load.feed())
        assert await load.seen(2000), worker.log_tail()
        await asyncio.to_thread(kafka.stop, isolated)  # the feed waits for the broker too
        await asyncio.sleep(3)
        await asyncio.to_thread(kafka.start, isolated)
        await feeding
        assert await load.finished(), worker.log_tail()
        assert await _projected(isolated, load, 120), projector.log_tail()
    finally:
        services.stop()
    await load.check()
    codes = [s.process.returncode for s in (worker, projector) if s.process is not None]
    assert codes == [0, 0]  # each carried on by itself and stopped cleanly


async def test_postgres_killed_mid_projection_loses_and_doubles_no_row(isolated, tmp_path):  # type: ignore[no-untyped-def]
    load = Load(isolated, "pg", members=200, purchases_each=30)
    services = Services(isolated, tmp_path)
    await load.start()
    worker = services.start("worker", "worker")
    projector = services.start("projector", "project")
    try:
        feeding = asyncio.create_task(load.feed(pause=0.6))  # still coming after the kill
        assert await _projected(isolated, load, 180, at_least=1500), projector.log_tail()
        postmaster = int((postgres.PostgresPaths.of(isolated).data / "postmaster.pid")
                         .read_text().split()[0])  # fmt: skip
        os.kill(postmaster, signal.SIGKILL)
        # The projector says so while it cannot write, and carries on once Postgres is back.
        assert await _health_is(projector.url("/healthz"), 503, 60), projector.log_tail()
        await _restart_postgres(isolated)
        assert await _health_is(projector.url("/healthz"), 200, 120), projector.log_tail()
        await feeding
        assert await load.finished(), worker.log_tail()
        assert await _projected(isolated, load, 180), projector.log_tail()
    finally:
        services.stop()
    await load.check()


async def _restart_postgres(settings: Settings) -> None:
    """Start the killed server again, as a supervisor would: its orphaned backends notice the
    postmaster's death and exit within moments, until then pg_ctl refuses to start."""
    for _ in range(30):
        try:
            await asyncio.to_thread(postgres.start, settings)
            return
        except StackError:
            await asyncio.sleep(1)
    await asyncio.to_thread(postgres.start, settings)


async def _health_is(url: str, status: int, seconds: float) -> bool:
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                got = response.status
        except urllib.error.HTTPError as error:
            got = error.code
        except OSError:
            got = 0
        if got == status:
            return True
        await asyncio.sleep(0.5)
    return False


async def _projected(
    settings: Settings, load: Load, seconds: float, at_least: int | None = None
) -> bool:
    """Whether Postgres holds the run's ledger events (all of them, or `at_least`), each
    once, with checkpoints no further than the topic."""
    want = len(load.want) if at_least is None else at_least
    deadline = asyncio.get_running_loop().time() + seconds
    prefix = f"{settings.topic_prefix.strip('.')}-"
    while asyncio.get_running_loop().time() < deadline:
        try:
            with psycopg.connect(settings.dsn, connect_timeout=3) as conn:
                row = conn.execute(
                    "SELECT count(*), count(DISTINCT event_log_id) FROM ledger_events"
                    " WHERE member_id LIKE %s", (prefix + "%",),
                ).fetchone()  # fmt: skip
            assert row is not None
            assert row[0] == row[1]
            if row[0] >= want:
                return True
        except psycopg.OperationalError:
            pass  # Postgres is coming back
        await asyncio.sleep(1)
    return False
