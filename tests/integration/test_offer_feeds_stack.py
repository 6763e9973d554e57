"""Both offer feeds end to end on the real stack: offers published on the config topic, members
enrolled, an offer loaded through the API, purchases sent, the real worker deciding and the
real projector filling the feed tables of a database of this test's own; the feeds read
through the app `loyalty api` serves (`from_settings`).

The offers (programme CA_MAIN, live since a day before T0, no end):
- SPEND_50 (rank 2): load to card, then 500 points once 50.00 is spent across purchases, twice
  at most per member;
- VISITS_3 (rank 3): 100 points for 3 visits; half its audience held out as control;
- VIP (rank 1): for the members of the VIPS list only, 100 points for 10.00 in one purchase;
- LATER: displayed in 2099.
Member A is listed, loads SPEND_50, then buys 20.00 and 12.00: VIP is used twice, SPEND_50
stands at 3200 of 5000 cents, VISITS_3 at 2 of 3. Member B is held out of VISITS_3 and buys
10.00. Anyone sees SPEND_50 and VISITS_3; A sees VIP, SPEND_50 (loaded) and VISITS_3 with
that progress; B sees SPEND_50 only.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from loyalty.producing import publish_events
from loyalty.services import Services
from processors.base.settings import Settings, get_settings
from processors.contract.offer_definition import (
    ActivationKind,
    OfferActivation,
    OfferSchedule,
    OfferTargeting,
    TargetingKind,
    TargetingTiming,
)
from processors.rules.offers.targeting import in_control
from projections.api.app import from_settings
from projections.api.auth import Role, issue_token
from tests.integration.test_worker_runtime import until
from tests.rules.given import bought, enrolled, program
from tests.rules.offers.given_offers import STARTS, flat, offer, spend, usage, visits
from tests.rules.offers.given_targeting import audience

pytestmark = pytest.mark.integration

RUN = uuid.uuid4().hex[:6]
A = next(m for n in range(100) if not in_control("VISITS_3", m := f"A{RUN}{n}", 50))
B = next(m for n in range(100) if in_control("VISITS_3", m := f"B{RUN}{n}", 50))


def offers() -> list[Any]:
    evergreen = OfferSchedule(starts_at=STARTS, ends_at=None, display_at=None)
    mass = OfferTargeting(kind=TargetingKind.MASS, timing=TargetingTiming.DYNAMIC)
    return [
        offer("SPEND_50", spend(5000, accumulated=True), reward=flat(500), rank=2,
              schedule=evergreen, activation=OfferActivation(kind=ActivationKind.LOAD_TO_CARD),
              usage=usage(uses_per_member_max=2)),
        offer("VISITS_3", visits(3), reward=flat(100), rank=3, schedule=evergreen,
              targeting=mass.model_copy(update={"control_share_percent": 50})),
        offer("LATER", rank=1, schedule=OfferSchedule(
            starts_at=datetime(2099, 1, 1, tzinfo=UTC), ends_at=None, display_at=None)),
    ]  # fmt: skip


def vip() -> Any:
    listed = OfferTargeting(kind=TargetingKind.AUDIENCE_LIST, timing=TargetingTiming.STATIC,
                            audience_id="VIPS")  # fmt: skip
    evergreen = OfferSchedule(starts_at=STARTS, ends_at=None, display_at=None)
    return offer("VIP", rank=1, schedule=evergreen, targeting=listed,
                 usage=usage(uses_per_member_max=3))  # fmt: skip


@pytest.fixture
def engine(isolated, own_database_url, monkeypatch) -> Iterator[Settings]:
    """The stack under this test's topic prefix, over a database of its own, and the
    environment `from_settings` and the child processes read pointed at both."""
    settings = isolated.model_copy(update={"database_url": own_database_url})
    monkeypatch.setenv("KAFKA_BOOTSTRAP", settings.bootstrap_servers)
    monkeypatch.setenv("DATABASE_URL", settings.dsn)
    monkeypatch.setenv("LOYALTY_TOPIC_PREFIX", settings.topic_prefix)
    monkeypatch.setenv("LOYALTY_PARTITIONS", str(settings.partitions))
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


@asynccontextmanager
async def api() -> AsyncIterator[httpx.AsyncClient]:
    """The app `loyalty api` serves, with its lifespan (pools, config feed, producer)."""
    app = from_settings()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            yield http


def bearer(settings: Settings, subject: str, role: Role = Role.MEMBER) -> dict[str, str]:
    secret = settings.api_secret.get_secret_value()
    return {"Authorization": f"Bearer {issue_token(secret, subject, role, now=datetime.now(UTC))}"}


def by_id(feed: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["offer_id"]: o for o in feed["offers"]}


async def test_both_feeds_on_the_real_stack(engine, tmp_path):
    services = Services(engine, tmp_path)
    worker = services.start("worker", "worker")
    projector = services.start("projector", "project")
    logs = lambda: worker.log_tail() + projector.log_tail()  # noqa: E731
    try:
        await publish_events(engine, [program(), *offers()])
        await publish_events(engine, [enrolled(A), enrolled(B)])
        async with api() as http:

            async def feed(member: str) -> dict[str, Any]:
                response = await http.get(f"/v1/members/{member}/offers",
                                          headers=bearer(engine, member))  # fmt: skip
                return response.json() if response.status_code == 200 else {"offers": []}

            async def shows(member: str, *offer_ids: str) -> bool:
                return set(offer_ids) <= set(by_id(await feed(member)))

            assert await until(lambda: shows(A, "SPEND_50", "VISITS_3"), 180), logs()
            # The list is published once the members exist: the worker's tick decides it.
            await publish_events(engine, [audience("VIPS", A), vip()])
            assert await until(lambda: shows(A, "VIP"), 180), logs()

            async def load() -> bool:
                response = await http.post(
                    f"/v1/members/{A}/offers/SPEND_50/load",
                    headers={**bearer(engine, A), "Idempotency-Key": f"load-{RUN}"},
                )
                return response.status_code == 202  # 503 until the config feed caught up

            assert await until(load, 120)

            async def loaded() -> bool:
                spend50 = by_id(await feed(A)).get("SPEND_50")
                return spend50 is not None and spend50["activation"]["state"] == "loaded"

            assert await until(loaded, 180), logs()
            now = datetime.now(UTC)
            await publish_events(engine, [
                bought(A, f"{A}-T1", cents=2000, at=now),
                bought(A, f"{A}-T2", cents=1200, at=now + timedelta(seconds=1)),
                bought(B, f"{B}-T1", cents=1000, at=now),
            ])  # fmt: skip

            async def progressed() -> bool:
                mine = by_id(await feed(A))
                return (
                    "SPEND_50" in mine
                    and mine["SPEND_50"]["behaviours"][0]["progress"] == "3200"
                    and mine["VISITS_3"]["behaviours"][0]["progress"] == "2"
                    and mine["VIP"]["usage"]["uses"] == 2
                )

            assert await until(progressed, 180), f"{await feed(A)}\n{logs()}"
            assert await until(
                lambda: projected(engine, f"member_id = '{B}' AND offer_id = 'VISITS_3'"), 180
            ), logs()

            anonymous = await http.get("/v1/offers", params={"market": "CA", "locale": "fr-CA"})
            mine = await http.get(f"/v1/members/{A}/offers", headers=bearer(engine, A))
            theirs = await http.get(f"/v1/members/{B}/offers", headers=bearer(engine, B))
            not_mine = await http.get(f"/v1/members/{B}/offers", headers=bearer(engine, A))
            staff = await http.get(f"/v1/members/{B}/offers",
                                   headers=bearer(engine, "care", Role.STAFF))  # fmt: skip
            again = await http.get(f"/v1/members/{A}/offers", headers={
                **bearer(engine, A), "If-None-Match": mine.headers["ETag"]})  # fmt: skip
            events = [
                await http.post("/v1/offer-feed/events", json={
                    "event_id": f"view-{RUN}", "kind": "PAGE_VIEWED", "market": "CA",
                    "offer_ids": ["VIP", "SPEND_50", "VISITS_3"]}, headers=bearer(engine, A)),
                await http.post("/v1/offer-feed/events", json={
                    "event_id": f"click-{RUN}", "kind": "OFFER_CLICKED", "market": "CA",
                    "offer_id": "SPEND_50"}, headers=bearer(engine, A)),
                await http.post("/v1/offer-feed/events", json={
                    "event_id": f"anon-{RUN}", "kind": "PAGE_VIEWED", "market": "CA",
                    "offer_ids": ["SPEND_50", "VISITS_3"]}),
            ]  # fmt: skip
    finally:
        services.stop()

    assert anonymous.status_code == 200
    assert [o["offer_id"] for o in anonymous.json()["offers"]] == ["SPEND_50", "VISITS_3"]
    assert anonymous.json()["offers"][0]["copy"]["locale"] == "fr"
    assert anonymous.headers["Cache-Control"].startswith("public")

    assert mine.status_code == 200
    assert [o["offer_id"] for o in mine.json()["offers"]] == ["VIP", "SPEND_50", "VISITS_3"]
    offers_of_a = by_id(mine.json())
    spend50 = offers_of_a["SPEND_50"]
    assert spend50["activation"]["state"] == "loaded"
    assert (spend50["behaviours"][0]["progress"], spend50["behaviours"][0]["threshold"]) == (
        "3200", "5000")  # $32 of $50  # fmt: skip
    assert spend50["usage"]["uses_left"] == 2
    visits3 = offers_of_a["VISITS_3"]["behaviours"][0]
    assert (visits3["progress"], visits3["threshold"]) == ("2", "3")  # 2 of 3 visits
    assert offers_of_a["VIP"]["usage"] == {"uses": 2, "uses_per_member_max": 3, "uses_left": 1,
                                          "points_awarded": 200, "points_per_member_max": None,
                                          "points_left": None}  # fmt: skip

    assert [o["offer_id"] for o in theirs.json()["offers"]] == ["SPEND_50"]  # B is control
    assert (not_mine.status_code, staff.status_code) == (403, 200)
    assert staff.json() == theirs.json()
    assert again.status_code == 304

    assert [e.status_code for e in events] == [204, 204, 204]
    with psycopg.connect(engine.dsn) as conn:
        rates = dict(conn.execute("SELECT offer_id, click_rate FROM offer_click_rates").fetchall())
        visits_ = conn.execute("SELECT visits, member_visits, anonymous_visits FROM"
                               " offers_page_visits WHERE market = 'CA'").fetchone()  # fmt: skip
    assert str(rates["SPEND_50"]) == "0.5000"  # one click for two impressions
    assert visits_ == (2, 1, 1)


async def projected(settings: Settings, where: str) -> bool:
    """Whether member_offer_standings has a row matching `where` (a constant of this test)."""
    with psycopg.connect(settings.dsn) as conn:
        row = conn.execute(f"SELECT count(*) FROM member_offer_standings WHERE {where}").fetchone()
    return row is not None and row[0] > 0
