"""The offer feed projection and the feeds' SQL on real Postgres: config and offer events
through `projection.apply` (the batch protocol the projector runs), read back through the
API's own store and endpoints.

- An extension the rules refuse does not move the feed's end; one they allow does (the fold
  is the performance writer's); a withdrawal hides the offer from its instant on.
- A redelivered batch, and the same events delivered again at later offsets, change nothing;
  the same events cut into one-record batches give byte-identical feed tables.
- Both feeds read through `PostgresFeedStore`: mass offers for anyone; for a member, the mass
  offers of their programme (not the one they are held out of), the offer they were targeted
  with, with their load, progress and uses, and the reward-store offer they bought with its
  instances not used yet.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import psycopg
import pytest

from processors.contract.base import Event
from processors.contract.config import OfferEndDateExtended, OfferWithdrawn
from processors.contract.offers import (
    BehaviourProgress,
    OfferCompleted,
    OfferLoaded,
    OfferProgressed,
    OfferTargeted,
    ProgressMetric,
)
from processors.rules.offers.targeting import in_control
from projections import db, dump
from projections.api.app import create_app
from projections.api.auth import Role, issue_token
from projections.migrate import apply_migrations
from projections.projection import Admitted, PartitionBatch, apply
from projections.writers import feed
from tests.builders import enrolment_answered
from tests.cart_given import enrolment, program
from tests.feed_given import AT, published, window

pytestmark = pytest.mark.integration

SECRET = "integration-secret-for-the-offer-feed-projection"
DAY = timedelta(days=1)
ACCUMULATE = [{"kind": "SPEND", "spend_min_cents": 5000, "accumulation": "ACCUMULATED"}]
HOLDOUT = "HOLDOUT_MASS"


def held_out(control: bool) -> str:
    return next(m for n in range(1000)
                if in_control(HOLDOUT, m := f"M{n}", 50) is control)  # fmt: skip


MEMBER, CONTROL = held_out(False), held_out(True)


def config_events() -> list[Event]:
    return [
        program(),
        published("SPEND_50", rank=2, behaviours=ACCUMULATE,
                  activation={"kind": "LOAD_TO_CARD"}, usage={"uses_per_member_max": 2},
                  schedule=window(-DAY, 10 * DAY)),
        published(HOLDOUT, rank=1, targeting={"kind": "MASS", "timing": "STATIC",
                                              "control_share_percent": 50}),
        published("VIP", rank=3, targeting={"kind": "AUDIENCE_LIST", "timing": "STATIC",
                                            "audience_id": "VIPS"}),
        published("GONE", rank=4),
        published("REFUSED_EXTENSION", schedule=window(-10 * DAY, DAY)),
        OfferEndDateExtended(event_id="ext-1", occurred_at=AT - DAY,
                             offer_id="REFUSED_EXTENSION", ends_at=AT + 30 * DAY,
                             requested_by="ops"),  # the programme does not allow extensions
        OfferWithdrawn(event_id="wd-1", occurred_at=AT - timedelta(hours=1), offer_id="GONE",
                       requested_by="ops"),
    ]  # fmt: skip


def member_events() -> list[Event]:
    def progress(cents: int) -> list[BehaviourProgress]:
        return [BehaviourProgress(behaviour_index=0, metric=ProgressMetric.SPEND_CENTS,
                                  progress=Decimal(cents), threshold=Decimal(5000))]  # fmt: skip

    common = {"occurred_at": AT - timedelta(hours=3), "member_id": MEMBER}
    return [
        OfferTargeted(event_id="tgt-1", offer_id="VIP", in_control_group=False,
                      cause_event_id="pub-VIP", **common),
        OfferLoaded(event_id="load-1", offer_id="SPEND_50", cause_event_id="req-1", **common),
        OfferProgressed(event_id="prog-1", offer_id="SPEND_50", in_control_group=False,
                        cause_event_id="tx-1", use_number=1, progress=progress(4000), **common),
        OfferCompleted(event_id="done-1", offer_id="SPEND_50", in_control_group=False,
                       cause_event_id="tx-2", use_number=1, program_id="MAIN", points_due=100,
                       points_awarded=100, **{**common, "occurred_at": AT - timedelta(hours=2)}),
        OfferProgressed(event_id="prog-2", offer_id="SPEND_50", in_control_group=False,
                        cause_event_id="tx-3", use_number=2, progress=progress(3200),
                        **{**common, "occurred_at": AT - timedelta(hours=1)}),
    ]  # fmt: skip


def batches(records: dict[str, list[Event]], *, start: int = 0, size: int | None = None):
    """The records of each topic (one partition) in batches of `size` (None: one batch)."""
    cut = []
    for topic, events in records.items():
        step = size or len(events)
        for first in range(0, len(events), step):
            chunk = events[first : first + step]
            admitted = [Admitted(start + first + n, e) for n, e in enumerate(chunk)]
            cut.append([PartitionBatch(topic, 0, admitted)])
    return cut


def enrolled_and_accepted() -> dict[str, list[Event]]:
    """The two members' enrolments and the engine's answers, which open them."""
    enrolments = [enrolment(MEMBER), enrolment(CONTROL)]
    return {"enrolments": enrolments, "outcomes": list(map(enrolment_answered, enrolments))}


def everything() -> dict[str, list[Event]]:
    return {"config": config_events(), **enrolled_and_accepted(), "offers": member_events()}


def bearer(member_id: str) -> dict[str, str]:
    token = issue_token(SECRET, member_id, Role.MEMBER, now=datetime.now(UTC))
    return {"Authorization": f"Bearer {token}"}


def feed_dump(conn: psycopg.Connection) -> str:
    return dump.sha256(conn, tables=feed.TABLES)


def test_redelivery_and_batch_boundaries_change_nothing(own_database_url):
    with db.connect(own_database_url, autocommit=True) as conn:
        for batch in batches(everything()):
            apply(conn, batch)
        first = feed_dump(conn)
        for batch in batches(everything()):  # redelivered: behind the checkpoints
            assert apply(conn, batch).events_applied == 0
        for batch in batches(everything(), start=100):  # the same events, logged again
            apply(conn, batch)
        assert feed_dump(conn) == first

    apply_migrations(own_database_url, schema="one_by_one")
    with db.connect(own_database_url, schema="one_by_one", autocommit=True) as conn:
        for batch in batches(everything(), size=1):
            apply(conn, batch)
        assert feed_dump(conn) == first


async def test_both_feeds_read_the_projected_rows(own_database_url):
    with db.connect(own_database_url, autocommit=True) as conn:
        for batch in batches(everything()):
            apply(conn, batch)
        rows = conn.execute(
            "SELECT offer_id, ends_at, visible_until FROM offer_feed_items ORDER BY offer_id"
        ).fetchall()
    ends = {offer_id: (ends_at, visible_until) for offer_id, ends_at, visible_until in rows}
    assert ends["REFUSED_EXTENSION"][0] == AT + DAY  # the rules refused it: not moved
    assert ends["GONE"][1] == AT - timedelta(hours=1)  # visible until its withdrawal

    app = create_app(dsn=own_database_url, api_secret=SECRET, clock=lambda: AT)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            anonymous = await http.get("/v1/offers", params={"market": "CA", "locale": "fr"})
            personal = await http.get(f"/v1/members/{MEMBER}/offers", headers=bearer(MEMBER))
            control = await http.get(f"/v1/members/{CONTROL}/offers", headers=bearer(CONTROL))
            revalidated = await http.get(
                "/v1/offers", params={"market": "CA", "locale": "fr"},
                headers={"If-None-Match": anonymous.headers["ETag"]},
            )  # fmt: skip
            # Withdrawn now: the item's digest changes, so nothing the API holds is shown.
            withdrawn = OfferWithdrawn(event_id="wd-2", occurred_at=AT - timedelta(minutes=1),
                                       offer_id="SPEND_50", requested_by="ops")  # fmt: skip
            with db.connect(own_database_url, autocommit=True) as conn:
                apply(conn, [PartitionBatch("config", 0, [Admitted(50, withdrawn)])])
            # The anonymous answer kept in the API goes once the projector's commit is notified.
            for _ in range(1000):
                after = await http.get("/v1/offers", params={"market": "CA", "locale": "fr"})
                if after.headers["ETag"] != anonymous.headers["ETag"]:
                    break
                await asyncio.sleep(0.01)
            mine_after = await http.get(f"/v1/members/{MEMBER}/offers", headers=bearer(MEMBER))

    assert anonymous.status_code == personal.status_code == control.status_code == 200
    assert [o["offer_id"] for o in anonymous.json()["offers"]] == [
        HOLDOUT,
        "SPEND_50",
        "REFUSED_EXTENSION",
    ]  # by rank; no VIP, nothing withdrawn
    assert revalidated.status_code == 304
    assert [o["offer_id"] for o in personal.json()["offers"]] == [
        HOLDOUT,
        "SPEND_50",
        "VIP",
        "REFUSED_EXTENSION",
    ]
    assert [o["offer_id"] for o in control.json()["offers"]] == ["SPEND_50", "REFUSED_EXTENSION"]

    [spend] = [o for o in personal.json()["offers"] if o["offer_id"] == "SPEND_50"]
    assert spend["activation"]["state"] == "loaded"
    assert (spend["behaviours"][0]["progress"], spend["behaviours"][0]["threshold"]) == (
        "3200",
        "5000",
    )  # the second use's $32 of $50
    assert (spend["usage"]["uses"], spend["usage"]["uses_left"]) == (1, 1)
    assert spend["usage"]["points_awarded"] == 100
    assert spend["days_left"] == 10

    assert [o["offer_id"] for o in after.json()["offers"]] == [HOLDOUT, "REFUSED_EXTENSION"]
    assert after.headers["ETag"] != anonymous.headers["ETag"]
    assert "SPEND_50" not in [o["offer_id"] for o in mine_after.json()["offers"]]


_ISSUED = """
INSERT INTO member_issued_offers (issued_offer_id, member_id, offer_id, reward_store_id,
    points_spent, issued_at, status, locked_until, status_at, status_event_id)
VALUES (%s, %s, 'STORE_DOUBLE', 'STORE', 500, %s, %s, %s, %s, %s)
"""


async def test_a_reward_store_offer_is_read_with_the_members_unused_instances(own_database_url):
    sold = {"reward_store_id": "STORE", "points_cost": 500}
    store_offer = published("STORE_DOUBLE", rank=1, reward_store=sold)
    records = {"config": [program(), store_offer], **enrolled_and_accepted()}
    with db.connect(own_database_url, autocommit=True) as conn:
        for batch in batches(records):
            apply(conn, batch)
        for n, (status, bought, locked_until) in enumerate([
            ("ISSUED", AT - 2 * DAY, None),
            ("LOCKED", AT - DAY, AT + timedelta(minutes=10)),
            ("USED", AT - 3 * DAY, None),  # spent: no longer the member's to use
        ]):  # fmt: skip
            conn.execute(_ISSUED, (f"ISS-{n}", MEMBER, bought, status, locked_until, bought,
                                   f"status-{n}"))  # fmt: skip

    app = create_app(dsn=own_database_url, api_secret=SECRET, clock=lambda: AT)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            anonymous = await http.get("/v1/offers", params={"market": "CA"})
            buyer = await http.get(f"/v1/members/{MEMBER}/offers", headers=bearer(MEMBER))
            other = await http.get(f"/v1/members/{CONTROL}/offers", headers=bearer(CONTROL))

    assert anonymous.json()["offers"] == other.json()["offers"] == []
    [bought] = buyer.json()["offers"]
    assert bought["offer_id"] == "STORE_DOUBLE"
    assert [(i["issued_offer_id"], i["state"], i["locked_until"]) for i in bought["issued"]] == [
        ("ISS-0", "ready", None),
        ("ISS-1", "locked", "2026-03-02T10:10:00Z"),
    ]  # oldest first; the used one is not shown
    assert bought["issued"][0]["issued_at"] == "2026-02-28T10:00:00Z"


async def test_the_feeds_read_in_autocommit_and_cannot_write(own_database_url):
    # One statement a feed, no BEGIN/COMMIT around it: read-only is the server's, not a BEGIN's.
    app = create_app(dsn=own_database_url, api_secret=SECRET, clock=lambda: AT)
    async with app.router.lifespan_context(app), app.state.feed_store.read.connection() as conn:
        assert conn.autocommit
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            await conn.execute("CREATE TABLE written_by_a_feed (x int)")
