"""The API answers a waiting request from the worker's answer on Kafka (`projections/api/
answers.py`, docs/adr/0034-answers-from-kafka.md), and Postgres stays the record, on the real
stack: a worker, a projector and the API on topics and a database of this test's own.

With the projector stopped nothing reaches Postgres, so a 201 can only come from the answer
reader: in the test's own app, and in each process of `loyalty api --workers 2` (a request
waits in the process that received it, so each reader answered its own). Once the projector
runs again, the status URL reads the same body from Postgres and a repeated key is 409 with it.
With the reader stopped, the projector's notification answers; with the worker stopped, the
wait runs out (202) and the status URL answers once the worker is back."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from loyalty.audit import uncommitted
from loyalty.producing import publish_events
from loyalty.services import Service, Services, free_port
from processors.base.settings import Settings, get_settings
from projections.api.app import from_settings
from tests.integration.test_rewards_api import bearer, engine, projected  # noqa: F401
from tests.integration.test_worker_runtime import until
from tests.rules.given import PROGRAM, bought, enrolled, program
from tests.rules.test_rewards import reward

pytestmark = pytest.mark.integration

MEMBERS = [f"ak-{n}" for n in range(4)]
PER_PROCESS_REQUESTS = 20
REDEMPTIONS_PROJECTED = (
    "SELECT count(*) FROM request_outcomes WHERE request_type = 'REWARD_REDEMPTION'"
)


@asynccontextmanager
async def api_app() -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """The app `loyalty api` serves (`from_settings`: its answer reader included), started."""
    app = from_settings()
    async with app.router.lifespan_context(app):
        assert app.state.wakeups.answers.reading.is_set(), "the answer reader never started"
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            yield app, http


async def redeem(
    http: httpx.AsyncClient, settings: Settings, member: str, key: str
) -> httpx.Response:
    return await http.post(
        f"/v1/members/{member}/redemptions",
        json={"reward_id": "DIRECT", "program_id": PROGRAM, "quantity": 1},
        headers={**bearer(settings, member), "Idempotency-Key": key},
    )


def answered(via: str) -> float:
    """Waiting requests this process answered from `via` so far."""
    value = REGISTRY.get_sample_value("loyalty_api_decisions_answered_total", {"via": via})
    return value or 0.0


async def funded(settings: Settings, services: Services, tmp_path: Any) -> None:
    """A programme, a reward of 100 points without a code stock, and MEMBERS with 10,000
    points each, projected."""
    await publish_events(settings, [program(), reward("DIRECT", uses_code_stock=False)])
    await publish_events(
        settings, [e for m in MEMBERS for e in (enrolled(m), bought(m, f"{m}-T", cents=1_000_000))]
    )

    async def settled() -> bool:
        members_in = "SELECT count(*) FROM member_balances WHERE balance = 10000"
        return await uncommitted(settings) == 0 and projected(settings, members_in) == len(MEMBERS)

    assert await until(settled, 180), "\n".join(s.log_tail() for s in services.running)


async def serving(base_url: str, api: Service) -> None:
    """Until `loyalty api` answers /healthz (each process serves once its reader reads)."""
    async with httpx.AsyncClient(base_url=base_url) as http:
        for _ in range(450):
            assert api.alive(), api.log_tail()
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get("/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise AssertionError(f"the API never answered:\n{api.log_tail()}")


async def test_answers_come_from_kafka_while_the_projector_is_stopped_and_postgres_agrees(
    engine,  # noqa: F811
    tmp_path,
):
    worker = Services(engine, tmp_path / "worker")
    projector = Services(engine, tmp_path / "projector")
    apis = Services(engine, tmp_path / "api")
    worker.start("worker", "worker")
    projector.start("projector", "project")
    try:
        await funded(engine, projector, tmp_path)
        projector.stop()

        # 1. In this process: only the reader can answer (nothing is projected).
        kafka_before = answered("kafka")
        async with api_app() as (_, http):
            first = await redeem(http, engine, MEMBERS[0], "ak-first")
        assert first.status_code == 201, first.text
        assert answered("kafka") == kafka_before + 1
        assert projected(engine, REDEMPTIONS_PROJECTED) == 0

        # 2. Two API processes: every request answered by the reader of the process it hit.
        port = free_port()
        api = apis.start("api", "api", "--port", str(port), "--workers", "2")
        base_url = f"http://127.0.0.1:{port}"
        await serving(base_url, api)

        async def one(n: int) -> httpx.Response:
            async with httpx.AsyncClient(base_url=base_url) as own:  # a connection each
                return await redeem(own, engine, MEMBERS[1], f"ak-proc-{n}")

        spread = await asyncio.gather(*(one(n) for n in range(PER_PROCESS_REQUESTS)))
        async with httpx.AsyncClient() as http:
            metrics = (await http.get(f"http://127.0.0.1:{api.http_port}/metrics")).text
        apis.stop()
        assert [r.status_code for r in spread] == [201] * PER_PROCESS_REQUESTS, [
            r.text for r in spread
        ]
        via_kafka = [
            line for line in metrics.splitlines()
            if line.startswith("loyalty_api_decisions_answered_total") and 'via="kafka"' in line
        ]  # fmt: skip
        assert via_kafka, metrics
        assert float(via_kafka[0].split()[-1]) == PER_PROCESS_REQUESTS, metrics

        # 3. Postgres is the record: once projected, the status URL and a repeat agree.
        projector.start("projector", "project")

        async def recorded() -> bool:
            return projected(engine, REDEMPTIONS_PROJECTED) == 1 + PER_PROCESS_REQUESTS

        assert await until(recorded, 120), "\n".join(s.log_tail() for s in projector.running)
        async with api_app() as (_, http):
            later = await http.get(first.headers["Location"], headers=bearer(engine, MEMBERS[0]))
            repeat = await redeem(http, engine, MEMBERS[0], "ak-first")
            wallet = await http.get(
                f"/v1/members/{MEMBERS[0]}/rewards", headers=bearer(engine, MEMBERS[0])
            )
    finally:
        apis.stop()
        projector.stop()
        worker.stop()

    assert (later.status_code, later.json()) == (200, first.json())
    assert (repeat.status_code, repeat.json()) == (409, first.json())
    assert wallet.json()["rewards"] == first.json()["granted_rewards"]
    assert first.json()["points_debited"] == 100
    assert projected(
        engine, f"SELECT count(*) FROM ledger_events WHERE member_id = '{MEMBERS[0]}'"
        " AND event_type = 'POINTS_REDEMPTION'"
    ) == 1  # fmt: skip


async def test_without_the_reader_the_projection_answers_and_a_wait_run_out_is_202_then_get(
    engine,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    worker = Services(engine, tmp_path / "worker")
    projector = Services(engine, tmp_path / "projector")
    worker.start("worker", "worker")
    projector.start("projector", "project")
    try:
        await funded(engine, projector, tmp_path)

        # 1. The reader stopped: the projector's commit answers.
        before = (answered("kafka"), answered("projection"))
        async with api_app() as (app, http):
            app.state.answer_reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await app.state.answer_reader
            notified = await redeem(http, engine, MEMBERS[2], "ak-notified")
        assert notified.status_code == 201, notified.text
        assert (answered("kafka"), answered("projection")) == (before[0], before[1] + 1)

        # 2. The worker stopped: the wait runs out, 202; the status URL answers later.
        worker.stop()
        monkeypatch.setenv("LOYALTY_API_DECISION_WAIT_MS", "300")
        get_settings.cache_clear()
        async with api_app() as (_, http):
            pending = await redeem(http, engine, MEMBERS[3], f"ak-late-{uuid.uuid4().hex[:6]}")
            assert pending.status_code == 202, pending.text
            assert pending.json()["status"] == "pending"
            worker.start("worker", "worker")
            status: list[httpx.Response] = []

            async def decided() -> bool:
                status.append(
                    await http.get(pending.headers["Location"], headers=bearer(engine, MEMBERS[3]))
                )
                return status[-1].status_code == 200

            assert await until(decided, 180), "\n".join(s.log_tail() for s in worker.running)
    finally:
        projector.stop()
        worker.stop()

    assert status[-1].json()["status"] == "accepted"
    assert len(status[-1].json()["granted_rewards"]) == 1
