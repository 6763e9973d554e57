"""A spent offer closes in the read models too (docs/adr/0029-gaps-closed.md): OfferClosed
from the config topic through `projection.apply` marks the catalogue row, ends the feed item's
display at the closing, keeps the offer out of both feeds, and makes a later extension refused
as completed; publishing the offer again opens it."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from processors.codec.json_form import from_json_object, to_json_object
from processors.contract.config import OfferClosed, OfferClosure, OfferEndDateExtended
from projections import db
from projections.api.app import create_app
from projections.projection import Admitted, PartitionBatch, apply
from tests.cart_given import AT, program
from tests.feed_given import published, window

pytestmark = pytest.mark.integration

SECRET = "integration-secret-for-the-offer-closed-projection"
DAY = timedelta(days=1)
CLOSED_AT = AT - timedelta(hours=2)


def extendable():
    body = to_json_object(program())
    return from_json_object({**body, "offer_end_date_extension_enabled": True})


def config(*events, start: int = 0) -> list[PartitionBatch]:
    admitted = [Admitted(start + n, e) for n, e in enumerate(events)]
    return [PartitionBatch("config", 0, admitted)]


CAPPED = published("FIRST100", usage={"uses_total_max": 100}, schedule=window(-DAY, 10 * DAY))
CLOSED = OfferClosed(
    event_id="closed-1",
    occurred_at=CLOSED_AT,
    offer_id="FIRST100",
    reason=OfferClosure.BUDGET_EXHAUSTED,
    cause_event_id="spent-1",
)
EXTENDED = OfferEndDateExtended(
    event_id="ext-1", occurred_at=AT - DAY / 2, offer_id="FIRST100", ends_at=AT + 40 * DAY,
    requested_by="ops",
)  # fmt: skip


async def test_a_closed_offer_leaves_the_feeds_and_is_not_extended(own_database_url):
    with db.connect(own_database_url, autocommit=True) as conn:
        apply(conn, config(extendable(), CAPPED, published("OPEN"), CLOSED, EXTENDED))
        offer_row = conn.execute(
            "SELECT closed_at, ends_at FROM offers WHERE offer_id = 'FIRST100'"
        ).fetchone()
        item = conn.execute(
            "SELECT closed_at, visible_until FROM offer_feed_items WHERE offer_id = 'FIRST100'"
        ).fetchone()
    assert offer_row == (CLOSED_AT, AT + 10 * DAY)  # the extension was refused: completed
    assert item == (CLOSED_AT, CLOSED_AT)

    app = create_app(dsn=own_database_url, api_secret=SECRET, clock=lambda: AT)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            shown = await http.get("/v1/offers", params={"market": "CA", "locale": "en"})
    assert shown.status_code == 200
    assert [o["offer_id"] for o in shown.json()["offers"]] == ["OPEN"]


def test_publishing_the_offer_again_opens_it(own_database_url):
    again = published("FIRST100", usage={"uses_total_max": 500}, schedule=window(-DAY, 10 * DAY),
                      event_id="pub-FIRST100-v2")  # fmt: skip
    with db.connect(own_database_url, autocommit=True) as conn:
        apply(conn, config(extendable(), CAPPED, CLOSED, again))
        assert conn.execute(
            "SELECT o.closed_at, f.closed_at, f.visible_until FROM offers o"
            " JOIN offer_feed_items f USING (offer_id) WHERE offer_id = 'FIRST100'"
        ).fetchone() == (None, None, AT + 10 * DAY)
