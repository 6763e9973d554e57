"""`POST /v1/carts/evaluate` on the real stack: offers published on a config topic and
followed by the API's ConfigFeed, members projected into Postgres by the real projector, and
carts priced with exact discounts and points (the basket is worked by hand in
tests/cart_given.py). Nothing is written by an evaluation."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import psycopg
import pytest

from processors.codec.avro import AvroCodec
from processors.config_feed import ConfigFeed
from processors.contract.config import OfferWithdrawn, PromotionCodesIssued
from processors.contract.enrolments import MembersMerged
from processors.contract.offer_definition import DiscountKind, DiscountTerms
from processors.contract.offers import BehaviourProgress, OfferLoaded, OfferProgressed
from projections import dump
from projections.api.app import create_app
from projections.api.auth import Role, issue_token
from projections.runner import Projector, ProjectorConfig, contract_topic_map
from tests.builders import enrolment_answered
from tests.cart_given import AT, cart, config_events, enrolment
from tests.integration.test_projections_ledger import produce

pytestmark = pytest.mark.integration

CODEC = AvroCodec()
SECRET = "integration-secret-for-the-cart-api-long-enough-for-hs256"
STAFF = {
    "Authorization": f"Bearer {issue_token(SECRET, 'till-9', Role.STAFF, now=datetime.now(UTC))}"
}


def encoded(events):
    return [(event.partition_key().encode(), CODEC.encode(event)) for event in events]


def progress(member: str, cents: int) -> OfferProgressed:
    """Where the worker left M's accumulated spend offer after earlier visits."""
    return OfferProgressed(
        event_id=f"progressed-{member}", occurred_at=AT - timedelta(days=3), member_id=member,
        offer_id="ACCUMULATE_100", in_control_group=False, cause_event_id=f"tx-{member}",
        use_number=1,
        progress=[BehaviourProgress(behaviour_index=0, metric="SPEND_CENTS",
                                    progress=Decimal(cents), threshold=Decimal(10000))],
    )  # fmt: skip


@dataclass
class Stack:
    http: httpx.AsyncClient
    feed: ConfigFeed
    config_topic: str
    dsn: str
    bootstrap: str
    offers_topic: str
    projector: ProjectorConfig


@pytest.fixture
async def stack(own_database_url, bootstrap_servers, new_topic) -> AsyncIterator[Stack]:
    config_topic = await new_topic("config", config={"cleanup.policy": "compact"})
    # An undecodable record first: the feed logs it, skips it, and goes on.
    await produce(
        bootstrap_servers, config_topic, [(b"junk", b"not avro"), *encoded(config_events())]
    )
    enrolments = await new_topic("enrolments", partitions=2)
    offers = await new_topic("offers", partitions=2)
    ledger = await new_topic("ledger", partitions=2)
    merged = MembersMerged(
        event_id="merge-M3", occurred_at=AT - timedelta(days=5), victim_member_id="M3",
        survivor_member_id="M1", source="APP",
    )  # fmt: skip
    joined = [enrolment("M1"), enrolment("M2"), enrolment("M3")]
    await produce(bootstrap_servers, enrolments, encoded([*joined, merged]))
    # The engine's answers: an enrolment opens its member once accepted.
    outcomes = await new_topic("outcomes", partitions=2)
    await produce(bootstrap_servers, outcomes, encoded(map(enrolment_answered, joined)))
    await produce(bootstrap_servers, offers, encoded([progress("M1", 6000)]))
    projector = ProjectorConfig(
        own_database_url, bootstrap_servers,
        contract_topic_map(ledger, enrolments, offers, outcomes=outcomes),
        group_id=f"test-cart-{uuid.uuid4().hex[:8]}",
    )  # fmt: skip
    await asyncio.wait_for(Projector(projector).run(until_caught_up=True), timeout=60)

    feed = ConfigFeed(bootstrap_servers, config_topic, CODEC)
    app = create_app(dsn=own_database_url, api_secret=SECRET, config_source=feed)
    async with app.router.lifespan_context(app):
        await asyncio.wait_for(feed.ready.wait(), timeout=30)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            yield Stack(
                http, feed, config_topic, own_database_url, bootstrap_servers, offers, projector
            )


async def evaluate(stack: Stack, body: dict) -> httpx.Response:
    return await stack.http.post("/v1/carts/evaluate", json=body, headers=STAFF)


def state_of_postgres(dsn: str) -> tuple[str, list]:
    with psycopg.connect(dsn) as conn:
        checkpoints = conn.execute(
            "SELECT projection, topic, partition, next_offset, updated_at"
            " FROM projection_checkpoints ORDER BY 1, 2, 3"
        ).fetchall()
        return dump.sha256(conn), checkpoints


async def test_the_feed_follows_the_config_topic_and_skips_what_it_cannot_read(stack):
    assert stack.feed.ready.is_set()
    assert stack.feed.skipped == 1
    assert len(stack.feed.config.catalogue) == 4
    assert list(stack.feed.config.programs) == ["MAIN"]


async def test_a_member_close_to_an_accumulated_offer_gets_every_discount_and_point(stack):
    response = await evaluate(stack, cart("M1"))

    assert response.status_code == 200, response.text
    body = response.json()
    assert [(line["line_id"], line["net_amount_cents"]) for line in body["lines"]] == [
        ("1", 572),
        ("2", 4358),
    ]
    assert body["total_discount_cents"] == 570
    assert body["points"] == [
        {"program_id": "MAIN", "base_points": 49, "offer_points": 600, "total_points": 649}
    ]
    assert body["total_points"] == 649
    applied = {(o["offer_id"], o["points"], o["discount_cents"]) for o in body["offers_applied"]}
    assert applied == {
        ("ACCUMULATE_100", 500, 0),
        ("BONUS_100_OVER_20", 100, 0),
        ("CART_5_OFF_50", 0, 500),
        ("SNACKS_10PCT", 0, 70),
    }
    assert body["offers_progressed"] == []


async def test_a_member_without_progress_earns_the_bonus_and_sees_the_progress_the_cart_makes(
    stack,
):
    body = (await evaluate(stack, cart("M2"))).json()

    assert body["points"] == [
        {"program_id": "MAIN", "base_points": 49, "offer_points": 100, "total_points": 149}
    ]
    assert body["offers_progressed"] == [
        {
            "offer_id": "ACCUMULATE_100",
            "use_number": 1,
            "progress": [
                {
                    "behaviour_index": 0,
                    "metric": "SPEND_CENTS",
                    "progress": "4930.000",
                    "threshold": "10000.000",
                }
            ],
        }
    ]


async def test_an_unknown_member_is_404_and_a_merged_one_409(stack):
    unknown = await evaluate(stack, cart("NOBODY"))
    merged = await evaluate(stack, cart("M3"))

    assert (unknown.status_code, unknown.json()["error"]) == (404, "not_found")
    assert (merged.status_code, merged.json()["error"]) == (409, "member_merged")
    assert "'M1'" in merged.json()["reason"]


async def test_evaluating_writes_nothing(stack):
    before = state_of_postgres(stack.dsn)

    for member in ("M1", "M2", None):
        assert (await evaluate(stack, cart(member))).status_code == 200

    assert state_of_postgres(stack.dsn) == before
    # And the member state it was built from is the same the next time.
    first, second = await evaluate(stack, cart("M1")), await evaluate(stack, cart("M1"))
    assert first.json() == second.json()


async def test_an_offer_withdrawn_on_the_config_topic_stops_applying(stack):
    withdrawn = OfferWithdrawn(
        event_id="withdraw-CART_5_OFF_50", occurred_at=AT - timedelta(hours=1),
        offer_id="CART_5_OFF_50", requested_by="ops",
    )  # fmt: skip
    await produce(stack.bootstrap, stack.config_topic, encoded([withdrawn]))

    deadline = asyncio.get_running_loop().time() + 30
    while stack.feed.config.catalogue.get("CART_5_OFF_50") is not None:
        assert asyncio.get_running_loop().time() < deadline, "the feed did not follow"
        await asyncio.sleep(0.1)
    body = (await evaluate(stack, cart())).json()

    assert body["total_discount_cents"] == 70
    assert body["cart_discounts"] == []


async def test_a_cart_discount_code_s_discount_comes_off_the_points_as_at_checkout(stack):
    """Found by trying it as a user: a $12 cart with a $5 code previewed 120 points where the
    purchase the till sends, net of the code, earned 70 (ADR 11, addendum)."""
    thirty_off = PromotionCodesIssued(
        event_id="issue-THIRTY", occurred_at=AT - timedelta(days=1), promotion_id="THIRTY",
        market="CA", codes=["THIRTY-OFF"], starts_at=AT - timedelta(days=1),
        ends_at=AT + timedelta(days=30),
        discount=DiscountTerms(kind=DiscountKind.AMOUNT_OFF_CART, amount_off_cents=3000),
    )  # fmt: skip
    await produce(stack.bootstrap, stack.config_topic, encoded([thirty_off]))
    deadline = asyncio.get_running_loop().time() + 30
    while stack.feed.config.promotions.lookup("THIRTY-OFF", "CA") is None:
        assert asyncio.get_running_loop().time() < deadline, "the feed did not follow"
        await asyncio.sleep(0.1)

    body = (await evaluate(stack, cart("M2", promo_codes=["thirty-off"]))).json()

    [code] = body["promo_codes"]
    assert (code["status"], code["discount_cents"]) == ("applies", 3000)
    assert body["total_discount_cents"] == 570  # the offers' own, judged before the code's
    # $55 less the offers' $5.70 and the code's $30: $19.30, below the bonus's $20.
    assert body["points"] == [
        {"program_id": "MAIN", "base_points": 19, "offer_points": 0, "total_points": 19}
    ]
    [progressed] = body["offers_progressed"]
    assert progressed["progress"][0]["progress"] == "1930.000"


async def test_an_offer_the_member_loaded_to_card_applies_once_projected(stack):
    """Found by trying it as a user: the feed said `loaded`, the worker paid the offer on the
    purchase, and the till's preview of the same basket gave nothing (the member's standings
    were not read)."""
    from tests.cart_given import offer, single

    loadable = offer(
        "LOADED_40", behaviours=[single("SPEND", spend_min_cents=500)],
        reward={"kind": "FLAT_POINTS", "points": 40}, activation={"kind": "LOAD_TO_CARD"},
    )  # fmt: skip
    await produce(stack.bootstrap, stack.config_topic, encoded([loadable]))
    deadline = asyncio.get_running_loop().time() + 30
    while stack.feed.config.catalogue.get("LOADED_40") is None:
        assert asyncio.get_running_loop().time() < deadline, "the feed did not follow"
        await asyncio.sleep(0.1)

    def applied(body: dict) -> set[str]:
        return {o["offer_id"] for o in body["offers_applied"]}

    before = (await evaluate(stack, cart("M2"))).json()
    loaded = OfferLoaded(
        event_id="loaded-M2", occurred_at=AT - timedelta(days=1), member_id="M2",
        offer_id="LOADED_40", cause_event_id="load-request-M2",
    )  # fmt: skip
    await produce(stack.bootstrap, stack.offers_topic, encoded([loaded]))
    await asyncio.wait_for(Projector(stack.projector).run(until_caught_up=True), timeout=60)
    after = (await evaluate(stack, cart("M2"))).json()
    other = (await evaluate(stack, cart("M1"))).json()

    assert "LOADED_40" not in applied(before)
    assert "LOADED_40" in applied(after)
    assert "LOADED_40" not in applied(other)  # loaded by M2 only


async def test_the_cart_benchmark_measures_every_cart_it_posts(stack_settings, own_database_url):
    from loyalty.bench.cart import run_cart_bench

    report = await run_cart_bench(
        stack_settings, own_database_url, offers=60, members=20, carts=40,
        log_dir=stack_settings.stack_dir / "logs" / "test-bench-cart", warmup=5,
        scaling_carts=10, scaling_offers=50,
    )  # fmt: skip

    latency = report.context["latency_ms"]
    assert [latency[name]["count"] for name in ("cart", "healthz", "evaluate_cart")] == [40, 40, 40]
    assert {m.name: m.count for m in report.measurements} == {
        "cart": 40, "healthz": 40, "evaluate_cart": 40,
        "evaluate_cart, 10 offers that do not apply": 10,
        "evaluate_cart, 50 offers that do not apply": 10,
    }  # fmt: skip
    assert [v.target.split(" ")[0] for v in report.verdicts] == ["#16.4", "#16.4"]
    assert report.context["outcomes"]["offers_applied"] > 0
