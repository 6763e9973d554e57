"""Loading an offer to card through the HTTP API, end to end on the real stack: the app as
`loyalty api` builds it (`from_settings`: a ConfigFeed and a KafkaCommandSink on this test's
own topic prefix), the real worker deciding the load, and a qualifying purchase paying only
the member who loaded the offer. A repeated Idempotency-Key loads the offer once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from loyalty import stack
from loyalty.producing import publish_events
from loyalty.services import Services
from processors.base.settings import Settings, get_settings
from processors.contract.ledger import LedgerEventRecorded, LedgerEventType
from processors.contract.offers import OfferLoaded
from processors.contract.outcomes import RequestAccepted, RequestRejected
from projections.api.app import from_settings
from projections.api.auth import Role, issue_token
from tests.cart_given import offer, single
from tests.integration.test_worker_ledger import Collector
from tests.rules.given import bought, enrolled, program

pytestmark = pytest.mark.integration


@pytest.fixture
def run_id() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def isolated(stack_settings, run_id, monkeypatch) -> Settings:
    """The stack under a topic prefix of this test's own, and the environment `from_settings`
    reads pointed at it."""
    settings = stack_settings.model_copy(update={"topic_prefix": f"t{run_id}."})
    stack.up(settings)
    monkeypatch.setenv("KAFKA_BOOTSTRAP", settings.bootstrap_servers)
    monkeypatch.setenv("DATABASE_URL", settings.dsn)
    monkeypatch.setenv("LOYALTY_TOPIC_PREFIX", settings.topic_prefix)
    monkeypatch.setenv("LOYALTY_PARTITIONS", str(settings.partitions))
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


@asynccontextmanager
async def _api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app `loyalty api` serves, with its lifespan (config feed, command producer)."""
    app = from_settings()
    assert app.state.outcome_topic == settings.topic("loyalty.outcomes.v1")
    async with app.router.lifespan_context(app):
        await asyncio.wait_for(app.state.config_source.ready.wait(), timeout=60)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            yield http


def collector(settings: Settings, topic: str, run_id: str) -> Collector:
    mine = lambda e: getattr(e, "member_id", "").startswith(run_id)  # noqa: E731
    return Collector(settings.bootstrap_servers, settings.topic(topic), settings.partitions, mine)


async def load(
    http: httpx.AsyncClient, settings: Settings, member: str, offer_id: str, key: str
) -> httpx.Response:
    token = issue_token(
        settings.api_secret.get_secret_value(), member, Role.MEMBER, now=datetime.now(UTC)
    )
    return await http.post(
        f"/v1/members/{member}/offers/{offer_id}/load",
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
    )


async def test_a_loaded_offer_pays_its_member_only_and_a_repeated_key_loads_once(
    isolated, tmp_path, run_id
):
    now = datetime.now(UTC)
    config = program(f"P_{run_id}", event_id=f"cfg-{run_id}")
    offer_id = f"L2C_{run_id}"
    published = offer(
        offer_id,
        event_id=f"offer-{run_id}",
        program_id=config.program_id,
        schedule={"starts_at": (now - timedelta(days=1)).isoformat(), "ends_at": None},
        activation={"kind": "LOAD_TO_CARD"},
        behaviours=[single("SPEND", spend_min_cents=2000)],
        reward={"kind": "FLAT_POINTS", "points": 200},
    )
    loader, bystander = f"{run_id}-loader", f"{run_id}-bystander"
    ledger = collector(isolated, "loyalty.ledger.v1", run_id)
    offers = collector(isolated, "loyalty.offers.v1", run_id)
    outcomes = collector(isolated, "loyalty.outcomes.v1", run_id)
    for reader in (ledger, offers, outcomes):
        await reader.start()
    await publish_events(isolated, [config, published])
    services = Services(isolated, tmp_path)
    worker = services.start("worker", "worker")
    try:
        # Enrolled (and known to the worker) before loading, or the load is unknown_member.
        await publish_events(
            isolated,
            [enrolled(m, programs=[config.program_id], at=now - timedelta(hours=1))
             for m in (loader, bystander)],
        )  # fmt: skip
        registered = await ledger.until(
            lambda es: {e.member_id for e in es} >= {loader, bystander}, 120
        )
        assert registered, worker.log_tail()

        async with _api(isolated) as http:
            first = await load(http, isolated, loader, offer_id, f"{run_id}-k1")
            again = await load(http, isolated, loader, offer_id, f"{run_id}-k1")
            later = await load(http, isolated, loader, offer_id, f"{run_id}-k2")
        assert first.status_code == 202, first.text
        assert again.json() == first.json()
        assert first.json()["outcome_topic"] == isolated.topic("loyalty.outcomes.v1")
        assert later.status_code == 202
        assert later.json()["event_id"] != first.json()["event_id"]

        answered = await outcomes.until(
            lambda es: {e.command_id for e in es} >= {f"{run_id}-k1", f"{run_id}-k2"}, 120
        )
        assert answered, worker.log_tail()
        assert await offers.until(lambda es: any(isinstance(e, OfferLoaded) for e in es), 60)

        # A qualifying purchase each, after the load: only the loader is paid.
        at = datetime.now(UTC)
        await publish_events(
            isolated,
            [bought(m, f"{run_id}-T-{m}", cents=2500, at=at) for m in (loader, bystander)],
        )

        def paid(events: list[LedgerEventRecorded]) -> bool:
            kinds = {(e.member_id, e.event_type) for e in events}
            return {
                (loader, LedgerEventType.OFFER_AWARD),
                (loader, LedgerEventType.TRANSACTION_ADD),
                (bystander, LedgerEventType.TRANSACTION_ADD),
            } <= kinds

        assert await ledger.until(paid, 120), worker.log_tail()
        await ledger.poll(2.0)  # anything late for the bystander would show now
        await offers.poll(1.0)
    finally:
        services.stop()
        for reader in (ledger, offers, outcomes):
            await reader.stop()

    awards = {
        e.event_log_id: (e.member_id, e.points_on_event)
        for e in ledger.events
        if e.event_type is LedgerEventType.OFFER_AWARD
    }
    assert list(awards.values()) == [(loader, 200)]
    loaded = {e.event_id: (e.member_id, e.offer_id, e.command_id)
              for e in offers.events if isinstance(e, OfferLoaded)}  # fmt: skip
    assert list(loaded.values()) == [(loader, offer_id, f"{run_id}-k1")]
    answers = {(type(e).__name__, e.command_id, e.event_id, e.request_event_id)
               for e in outcomes.events}  # fmt: skip
    assert all(isinstance(e, RequestAccepted | RequestRejected) for e in outcomes.events)
    # The repeated key was answered with the original outcome (one id), the new key accepted.
    k1 = {a for a in answers if a[1] == f"{run_id}-k1"}
    k2 = {a for a in answers if a[1] == f"{run_id}-k2"}
    assert [(kind, request) for kind, _, _, request in k1] == [
        ("RequestAccepted", first.json()["event_id"])
    ]
    assert [(kind, request) for kind, _, _, request in k2] == [
        ("RequestAccepted", later.json()["event_id"])
    ]
