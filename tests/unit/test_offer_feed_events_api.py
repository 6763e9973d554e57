"""`POST /v1/offer-feed/events` in-process, over an in-memory feed store: page views and
clicks recorded once, anonymous or as the member of the token, never as staff, and malformed
events refused (the table and the analysts' views on real Postgres:
tests/integration/test_offer_feeds_stack.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from projections.api.app import create_app
from projections.api.auth import Role, issue_token
from projections.api.feed_schemas import FeedEventRequest
from tests.feed_given import AT, FakeFeedStore

SECRET = "unit-test-secret-for-the-offer-feed-events-long-enough"
NO_DATABASE = "postgresql://nobody@127.0.0.1:9/none?connect_timeout=1"


@pytest.fixture
def store() -> FakeFeedStore:
    return FakeFeedStore()


@pytest.fixture
def client(store) -> Iterator[TestClient]:
    app = create_app(dsn=NO_DATABASE, api_secret=SECRET, clock=lambda: AT, feed_store=store)
    with TestClient(app) as running:
        yield running


def bearer(subject: str = "M1", role: Role = Role.MEMBER) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, subject, role, now=datetime.now(UTC))}"}


def test_page_views_and_clicks_are_recorded_once_anonymous_or_as_the_member(store, client):
    view = {"event_id": "ev-1", "kind": "PAGE_VIEWED", "market": "CA", "locale": "fr",
            "offer_ids": ["A_OFFER", "B_OFFER"]}  # fmt: skip
    click = {"event_id": "ev-2", "kind": "OFFER_CLICKED", "market": "CA", "offer_id": "A_OFFER"}

    answers = [
        client.post("/v1/offer-feed/events", json=view),
        client.post("/v1/offer-feed/events", json=view),  # the app retried
        client.post("/v1/offer-feed/events", json=click, headers=bearer("M1")),
    ]

    assert [a.status_code for a in answers] == [204, 204, 204]
    assert [(e.kind, e.member_id, e.offer_id, e.offer_ids, e.received_at)
            for e in store.recorded] == [
        ("PAGE_VIEWED", None, None, ("A_OFFER", "B_OFFER"), AT),
        ("OFFER_CLICKED", "M1", "A_OFFER", (), AT),
    ]  # fmt: skip


def test_a_staff_token_records_no_app_event_and_a_bad_token_is_a_401(store, client):
    click = {"event_id": "ev-3", "kind": "OFFER_CLICKED", "market": "CA", "offer_id": "A_OFFER"}
    staff = client.post("/v1/offer-feed/events", json=click, headers=bearer("care", Role.STAFF))
    bad = client.post("/v1/offer-feed/events", json=click,
                      headers={"Authorization": "Bearer nonsense"})  # fmt: skip
    assert (staff.status_code, bad.status_code) == (403, 401)
    assert store.recorded == []


@pytest.mark.parametrize(
    "body",
    [
        {"event_id": "e", "kind": "OFFER_CLICKED", "market": "CA"},
        {"event_id": "e", "kind": "PAGE_VIEWED", "market": "CA", "offer_id": "A_OFFER"},
        {"event_id": "e", "kind": "OFFER_CLICKED", "market": "CA", "offer_id": "A_OFFER",
         "offer_ids": ["A_OFFER"]},
        {"event_id": "e", "kind": "PAGE_VIEWED", "market": "CA", "offer_ids": ["A_OF", "A_OF"]},
        {"event_id": "e", "kind": "PAGE_VIEWED", "market": "CA", "offer_ids": ["bad-id"]},
        {"event_id": "e", "kind": "PAGE_VIEWED", "market": "CA",
         "offer_ids": [f"O{n:03d}" for n in range(201)]},
        {"event_id": "e", "kind": "SCROLLED", "market": "CA"},
        {"event_id": "e", "kind": "PAGE_VIEWED", "market": "ca"},
        {"event_id": "e", "kind": "PAGE_VIEWED", "market": "CA", "member_id": "M2"},
    ],
)  # fmt: skip
def test_a_malformed_app_event_is_a_400_and_nothing_is_recorded(store, client, body):
    response = client.post("/v1/offer-feed/events", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_parameter"
    assert store.recorded == []


def test_the_documented_examples_are_bodies_the_schema_accepts():
    for example in FeedEventRequest.model_json_schema()["examples"]:
        FeedEventRequest.model_validate(example)


def test_more_app_events_a_minute_than_allowed_are_a_429_with_retry_after(store):
    app = create_app(dsn=NO_DATABASE, api_secret=SECRET, clock=lambda: AT, feed_store=store,
                     feed_events_per_minute=2)  # fmt: skip

    def view(n: int) -> dict[str, object]:
        return {"event_id": f"ev-{n}", "kind": "PAGE_VIEWED", "market": "CA"}

    with TestClient(app) as running:
        anonymous = [running.post("/v1/offer-feed/events", json=view(n)) for n in range(3)]
        as_member = [running.post("/v1/offer-feed/events", json=view(10 + n), headers=bearer("M1"))
                     for n in range(3)]  # fmt: skip

    # Anonymous callers are counted by address, a member by member: one does not spend the
    # other's allowance (many members share a carrier's address).
    for answers in (anonymous, as_member):
        assert [a.status_code for a in answers] == [204, 204, 429]
        assert answers[2].json()["error"] == "too_many_requests"
        assert answers[2].headers["Retry-After"] == "60"
    assert [e.event_id for e in store.recorded] == ["ev-0", "ev-1", "ev-10", "ev-11"]
