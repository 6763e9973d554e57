"""Test vs control on the real broker and the real Postgres: an offer published on a config
topic, ten members targeted (two held out as control), completions, purchases and returns,
some of them redelivered, one purchase arriving before its member's targeting and one return
before its purchase; exact figures through SQL (`offer_performance`) and through
`GET /v1/offers/{id}/performance`, and a rebuild from offset 0 that gives the same dump
(DESIGN.md §5.16, §7; docs/adr/0015-offer-performance.md).

The figures, worked by hand. Offer TVC runs from AT - 1 day to AT + 10 days in CA; the
programme does not allow extensions, so its extension to AT + 20 days is refused. A purchase
that counts counts net of its returns (spend less the refunds; no visit if refunded whole);
a return of a purchase that does not count changes nothing.
- test (M01-M08, M08 targeted at AT + 2 days, the others at AT):
  M01 buys 20.00 and 30.00 (the first delivered twice) and gets 10.00 of the second back (the
  return delivered twice): 40.00; M02 buys 40.00 and 25.00, 5.00 of which comes back (the
  return logged before the purchase): 60.00; M08 buys 70.00 before its targeting (not counted,
  nor is its return) and 15.00 after; M03 buys before the start (returned: not counted), M04
  after the end, M05 in the US: not counted. 5 visits, 11500 cents; M01 completes twice, M02
  once (delivered twice): 2 qualifying of 8, 3 redemptions, 300 points.
- control (M09, M10): M09 60.00, M10 10.00 twice, the first returned whole: 2 visits, 7000
  cents; M09 would have completed once (100 points due, none awarded): 1 qualifying of 2.
- uplift (test vs control, per member): qualifying (2/8 against 1/2) -0.5; redemptions
  (3/8 against 1/2) -0.25; visits (5/8 against 2/2) -0.375; spend (1437.5 against 3500)
  -0.58928..., rounded -0.5893.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import psycopg
import pytest

from processors.codec.avro import AvroCodec
from processors.codec.json_form import from_json_object
from processors.contract.config import OfferEndDateExtended
from processors.contract.offers import OfferCompleted, OfferTargeted
from processors.contract.transactions import ReturnedLine, TransactionLine, TransactionReturned
from projections import dump
from projections.api.app import create_app
from projections.api.auth import Role, issue_token
from projections.rebuild import rebuild
from projections.runner import Projector, ProjectorConfig, contract_topic_map
from tests.builders import purchase
from tests.cart_given import AT, offer, program
from tests.integration.test_projections_ledger import produce

pytestmark = pytest.mark.integration

CODEC = AvroCodec()
SECRET = "integration-secret-for-the-performance-api-long-enough"
NOW = datetime.now(UTC)
STAFF = {"Authorization": f"Bearer {issue_token(SECRET, 'analyst', Role.STAFF, now=NOW)}"}
MEMBER = {"Authorization": f"Bearer {issue_token(SECRET, 'M01', Role.MEMBER, now=NOW)}"}
TEST = [f"M{n:02}" for n in range(1, 9)]
CONTROL = ["M09", "M10"]


def encoded(events):
    return [(event.partition_key().encode(), CODEC.encode(event)) for event in events]


def config_events():
    published = offer(
        "TVC",
        schedule={"starts_at": (AT - timedelta(days=1)).isoformat(),
                  "ends_at": (AT + timedelta(days=10)).isoformat()},
        targeting={"kind": "MASS", "timing": "STATIC", "control_share_percent": 20},
        behaviours=[{"kind": "SPEND", "accumulation": "SINGLE_TRANSACTION",
                     "spend_min_cents": 2000}],
        reward={"kind": "FLAT_POINTS", "points": 100},
    )  # fmt: skip
    refused = OfferEndDateExtended(
        event_id="extend-TVC", occurred_at=AT + timedelta(days=1), offer_id="TVC",
        ends_at=AT + timedelta(days=20), requested_by="alice",
    )  # fmt: skip
    other = from_json_object({**published.model_dump(mode="json"), "type": "OfferPublished",
                              "event_id": "offer-QUIET", "offer_id": "QUIET"})  # fmt: skip
    return [program(), published, refused, other]


def targeted(member: str, at: datetime = AT) -> OfferTargeted:
    return OfferTargeted(
        event_id=f"targeted-{member}", occurred_at=at, member_id=member, offer_id="TVC",
        in_control_group=member in CONTROL, cause_event_id="offer-TVC",
    )  # fmt: skip


def completed(member: str, use: int) -> OfferCompleted:
    control = member in CONTROL
    return OfferCompleted(
        event_id=f"completed-{member}-{use}", occurred_at=AT + timedelta(hours=use),
        member_id=member, offer_id="TVC", in_control_group=control,
        cause_event_id=f"tx-{member}-{use}", use_number=use,
        program_id=None if control else "MAIN", points_due=100,
        points_awarded=0 if control else 100,
    )  # fmt: skip


def bought(member: str | None, n: int, after: timedelta, cents: int, **changes):
    line = TransactionLine(
        line_id="1", sku="SKU-1", quantity=Decimal(1), unit_price_cents=cents, amount_cents=cents
    )
    return purchase(
        event_id=f"tx-{member}-{n}", transaction_id=f"T-{member}-{n}", member_id=member,
        occurred_at=AT + after, lines=[line], tenders=[], **changes,
    )  # fmt: skip


def returned(member: str | None, n: int, after: timedelta, cents: int):
    line = ReturnedLine(line_id="1", quantity=Decimal(1), amount_cents=cents)
    template = bought(member, n, after, cents)
    return TransactionReturned(
        event_id=f"rx-{member}-{n}", occurred_at=AT + after, return_id=f"R-{member}-{n}",
        transaction_id=f"T-{member}-{n}", member_id=member, market=template.market,
        currency=template.currency, source=template.source, store=template.store, lines=[line],
    )  # fmt: skip


def transactions():
    day, hour = timedelta(days=1), timedelta(hours=1)
    first = bought("M01", 1, hour, 2000)
    refund = returned("M01", 2, 3 * hour, 1000)
    return [
        first, first,  # redelivered
        bought("M01", 2, 2 * hour, 3000), refund, refund,  # 10.00 back, redelivered
        bought("M02", 1, day, 4000),
        returned("M02", 2, 3 * day, 500),  # before its purchase (see later_transactions)
        bought("M03", 1, -2 * day, 9999),  # before the offer starts
        returned("M03", 1, day, 9999),  # of a purchase that does not count
        bought("M04", 1, 15 * day, 5000),  # after its end (the extension was refused)
        bought("M05", 1, day, 2500, market="US", currency="USD"),  # another market
        bought("M08", 1, day, 7000),  # before M08's targeting
        returned("M08", 1, 4 * day, 7000),  # of a purchase that does not count
        bought("M08", 2, 3 * day, 1500),
        bought("M09", 1, hour, 6000),
        bought("M10", 1, day, 1000),
        returned("M10", 1, 2 * day, 1000),  # returned whole: no spend, no visit
        bought("M10", 2, 2 * day, 1000),
        bought(None, 1, hour, 50_000),  # anonymous
        returned(None, 1, day, 50_000),  # anonymous
    ]  # fmt: skip


def later_transactions():
    """A purchase whose return is earlier in the log (same member, same partition)."""
    return [bought("M02", 2, 2 * timedelta(days=1), 2500)]


def offer_events():
    redelivered = completed("M02", 1)
    return [
        *(targeted(m) for m in TEST[:-1] + CONTROL), targeted("M08", AT + timedelta(days=2)),
        completed("M01", 1), completed("M01", 2), redelivered, redelivered, completed("M09", 1),
    ]  # fmt: skip


async def run_projector(dsn: str, bootstrap: str, topics: dict[str, str]):
    config = ProjectorConfig(dsn, bootstrap, topics, group_id=f"test-perf-{uuid.uuid4().hex[:8]}")
    return await asyncio.wait_for(Projector(config).run(until_caught_up=True), timeout=60)


def schema_objects(dsn: str) -> dict[str, set[str]]:
    """The live schema's triggers (by table), views and functions."""
    with psycopg.connect(dsn) as conn:
        triggers = conn.execute(  # each with the schema of the function it calls
            "SELECT c.relname || '.' || t.tgname || ' -> ' || f.nspname FROM pg_trigger t"
            " JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
            " JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_namespace f ON f.oid = p.pronamespace"
            " WHERE NOT t.tgisinternal AND n.nspname = current_schema()"
        ).fetchall()
        views = conn.execute(
            "SELECT viewname FROM pg_views WHERE schemaname = current_schema()"
        ).fetchall()
        functions = conn.execute(
            "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE n.nspname = current_schema()"
        ).fetchall()
    return {
        "triggers": {r[0] for r in triggers},
        "views": {r[0] for r in views},
        "functions": {r[0] for r in functions},
    }


def performance_rows(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT audience_group, members, qualifying_members, qualifying_rate, redemptions,"
            " redemptions_per_member, visits, visits_per_member, spend_cents,"
            " spend_per_member_cents, points_due, points_awarded, qualifying_rate_uplift,"
            " redemptions_per_member_uplift, visits_per_member_uplift, spend_per_member_uplift"
            " FROM offer_performance WHERE offer_id = 'TVC' ORDER BY in_control_group"
        ).fetchall()


EXPECTED = [
    ("test", 8, 2, Decimal("0.2500"), 3, Decimal("0.3750"), 5, Decimal("0.6250"), 11500,
     Decimal("1437.5000"), 300, 300,
     Decimal("-0.5000"), Decimal("-0.2500"), Decimal("-0.3750"), Decimal("-0.5893")),
    ("control", 2, 1, Decimal("0.5000"), 1, Decimal("0.5000"), 2, Decimal("1.0000"), 7000,
     Decimal("3500.0000"), 100, 0, None, None, None, None),
]  # fmt: skip


@pytest.fixture
async def topics(bootstrap_servers, new_topic) -> dict[str, str]:
    names = {
        "ledger": await new_topic("ledger", partitions=2),
        "enrolments": await new_topic("enrolments", partitions=2),
        "offers": await new_topic("offers", partitions=2),
        "transactions": await new_topic("transactions", partitions=2),
        "config": await new_topic("config", config={"cleanup.policy": "compact"}),
    }
    return contract_topic_map(
        names["ledger"], names["enrolments"], names["offers"],
        transactions=names["transactions"], config=names["config"],
    )  # fmt: skip


def named(topics: dict[str, str], contract_topic: str) -> str:
    return next(name for name, carried in topics.items() if carried == contract_topic)


async def test_test_and_control_are_compared_in_sql_and_through_the_api_and_survive_a_rebuild(
    own_database_url, bootstrap_servers, topics
):
    dsn, bootstrap = own_database_url, bootstrap_servers
    # Purchases and the offer first, with nobody targeted yet: no figures but the offer's.
    await produce(bootstrap, named(topics, "loyalty.config.v1"), encoded(config_events()))
    await produce(bootstrap, named(topics, "loyalty.transactions.v1"), encoded(transactions()))
    first = await run_projector(dsn, bootstrap, topics)
    assert first.refused == 0
    assert [row[:3] for row in performance_rows(dsn)] == [("test", 0, 0), ("control", 0, 0)]
    with psycopg.connect(dsn) as conn:  # every member return is kept, its purchase or not
        stored = conn.execute(
            "SELECT return_id, transaction_id, member_id, refunded_cents FROM member_returns"
            " ORDER BY return_id"
        ).fetchall()
    assert stored == [
        ("R-M01-2", "T-M01-2", "M01", 1000), ("R-M02-2", "T-M02-2", "M02", 500),
        ("R-M03-1", "T-M03-1", "M03", 9999), ("R-M08-1", "T-M08-1", "M08", 7000),
        ("R-M10-1", "T-M10-1", "M10", 1000),
    ]  # fmt: skip

    # Then the targeting, the completions and the purchase M02's return was waiting for: the
    # purchases and returns already stored now count.
    await produce(bootstrap, named(topics, "loyalty.offers.v1"), encoded(offer_events()))
    await produce(
        bootstrap, named(topics, "loyalty.transactions.v1"), encoded(later_transactions())
    )
    await run_projector(dsn, bootstrap, topics)

    assert performance_rows(dsn) == EXPECTED
    with psycopg.connect(dsn) as conn:
        window = conn.execute(
            "SELECT starts_at, ends_at, withdrawn_at, control_share_percent FROM offers"
            " WHERE offer_id = 'TVC'"
        ).fetchone()
        activity = conn.execute(
            "SELECT member_id, visits, spend_cents, completions FROM offer_member_activity"
            " WHERE offer_id = 'TVC' AND (visits > 0 OR completions > 0) ORDER BY member_id"
        ).fetchall()
    assert window == (AT - timedelta(days=1), AT + timedelta(days=10), None, 20)
    assert activity == [  # net of returns, to the cent
        ("M01", 2, 4000, 2), ("M02", 2, 6000, 1), ("M08", 1, 1500, 0), ("M09", 1, 6000, 1),
        ("M10", 1, 1000, 0),
    ]  # fmt: skip

    app = create_app(dsn=dsn, api_secret=SECRET)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            response = await http.get("/v1/offers/TVC/performance", headers=STAFF)
            quiet = await http.get("/v1/offers/QUIET/performance", headers=STAFF)
            unknown = await http.get("/v1/offers/NOPE/performance", headers=STAFF)
            as_member = await http.get("/v1/offers/TVC/performance", headers=MEMBER)
            anonymous = await http.get("/v1/offers/TVC/performance")

    assert response.status_code == 200, response.text
    assert response.json() == {
        "offer_id": "TVC", "program_id": "MAIN", "market": "CA",
        "starts_at": "2026-03-01T10:00:00Z", "ends_at": "2026-03-12T10:00:00Z",
        "withdrawn_at": None, "control_share_percent": 20,
        "test": {
            "members": 8, "qualifying_members": 2, "qualifying_rate": "0.2500",
            "redemptions": 3, "redemptions_per_member": "0.3750", "visits": 5,
            "visits_per_member": "0.6250", "spend_cents": 11500,
            "spend_per_member_cents": "1437.5000", "points_due": 300, "points_awarded": 300,
            "discount_cents": 0,
        },
        "control": {
            "members": 2, "qualifying_members": 1, "qualifying_rate": "0.5000",
            "redemptions": 1, "redemptions_per_member": "0.5000", "visits": 2,
            "visits_per_member": "1.0000", "spend_cents": 7000,
            "spend_per_member_cents": "3500.0000", "points_due": 100, "points_awarded": 0,
            "discount_cents": 0,
        },
        "uplift": {
            "qualifying_rate": "-0.5000", "redemptions_per_member": "-0.2500",
            "visits_per_member": "-0.3750", "spend_per_member": "-0.5893",
        },
    }  # fmt: skip
    assert quiet.status_code == 200
    assert quiet.json()["test"]["members"] == 0
    assert quiet.json()["test"]["qualifying_rate"] is None
    assert quiet.json()["uplift"]["spend_per_member"] is None
    assert (unknown.status_code, unknown.json()["error"]) == (404, "not_found")
    assert as_member.status_code == 403
    assert anonymous.status_code == 401

    # Replay equals live: every topic from offset 0 into fresh tables, swapped in; the views
    # read the swapped-in tables, and every trigger and view is still there.
    before = schema_objects(dsn)
    report = await asyncio.wait_for(
        rebuild(dsn, bootstrap, topics=topics, verify=True), timeout=120
    )
    assert report.comparable
    assert report.identical is True
    assert report.swapped
    assert performance_rows(dsn) == EXPECTED
    assert schema_objects(dsn) == before
    with psycopg.connect(dsn) as conn:
        assert dump.sha256(conn) == report.rebuilt_sha256


def test_a_spent_budget_lands_in_its_table_once(own_database_url):
    from processors.contract.offers import BudgetExhaustion, OfferBudgetExhausted
    from projections import db
    from projections.writers import performance

    spent = OfferBudgetExhausted(
        event_id="OBE-1", occurred_at=datetime(2026, 3, 2, tzinfo=UTC), offer_id="OFFER_X",
        reason=BudgetExhaustion.BUDGET_SPENT, uses_granted=334, points_granted=100_000,
        budget_points_max=100_000, last_member_id="M9", request_event_id="REQ-9",
    )  # fmt: skip
    with db.connect(own_database_url) as conn:
        performance.write(conn, [spent])
        performance.write(conn, [spent])  # redelivered
        rows = conn.execute(
            "SELECT offer_id, reason, uses_granted, points_granted, budget_points_max"
            " FROM offer_budget_exhaustions"
        ).fetchall()
    assert rows == [("OFFER_X", "BUDGET_SPENT", 334, 100_000, 100_000)]


def test_a_return_counts_at_most_what_each_line_cost_as_the_ledger_takes_it(own_database_url):
    # Found by a user's trial: a purchase of three 10.00 lines, then line 1 returned, line 1
    # again (the engine refused it) and line 2 for 50.00 (the engine took 10.00) counted as
    # 70.00 refunded: no spend and no visit, where the ledger took back 20.00 of it.
    from projections import db
    from projections.writers import performance

    lines = [
        TransactionLine(line_id=n, sku=f"SKU-{n}", quantity=Decimal(1), unit_price_cents=1000,
                        amount_cents=1000)
        for n in ("1", "2", "3")
    ]  # fmt: skip
    bought_three = bought("M01", 7, timedelta(hours=1), 3000).model_copy(update={"lines": lines})

    def back(n: int, line_id: str, cents: int) -> TransactionReturned:
        template = returned("M01", 7, timedelta(hours=2 + n), cents)
        return template.model_copy(update={
            "event_id": f"rx-M01-7-{n}", "return_id": f"R-M01-7-{n}",
            "lines": [ReturnedLine(line_id=line_id, quantity=Decimal(1), amount_cents=cents)],
        })  # fmt: skip

    with db.connect(own_database_url) as conn:
        performance.write(conn, [*config_events(), targeted("M01")])
        performance.write(conn, [bought_three, back(1, "1", 1000), back(2, "1", 1000),
                                 back(3, "2", 5000)])  # fmt: skip
        activity = conn.execute(
            "SELECT visits, spend_cents FROM offer_member_activity"
            " WHERE offer_id = 'TVC' AND member_id = 'M01'"
        ).fetchone()
    assert activity == (1, 1000)  # 30.00 less the 20.00 the ledger took back
