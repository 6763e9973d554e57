"""`GET /v1/reward-stores` and `GET /v1/reward-stores/{id}/offers` in-process over a fixed
configuration and members given as projected rows (ADR 33, addendum): which configured stores
a member sees, in which language, with how many offers, and the 404 of an unknown store (the
SQL and the worker on the real stack: tests/integration/test_reward_stores_api.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from processors.contract.offer_definition import (
    LocalizedCopy,
    RewardStoreListing,
    TargetingCriterion,
)
from processors.rules.member import Config
from processors.rules.offers.catalogue import Catalogue
from projections.api.app import create_app
from projections.api.auth import Role, issue_token
from projections.api.reward_store_queries import Buyer, buyer_of
from projections.api.routes_carts import FixedConfig
from tests.rules.given import PROGRAM, T0, program
from tests.rules.test_reward_stores import reward_store, store_offer
from tests.unit.test_reward_store_views import member_row

SECRET = "unit-test-secret-for-the-reward-store-routes-long-enough"
NO_DATABASE = "postgresql://nobody@127.0.0.1:9/none?connect_timeout=1"
GOLD_ONLY = [TargetingCriterion(attribute="TIER", values=["GOLD"])]


class Members:
    """The projected rows of each member, as `RewardStoreQueries.buyer` reads them."""

    def __init__(self, **rows: dict[str, Any]) -> None:
        self.rows = rows

    async def buyer(self, member_id: str, catalogue: Catalogue) -> Buyer | None:
        row = self.rows.get(member_id)
        return None if row is None else buyer_of(member_id, row, catalogue)


def configured(*events: Any) -> Config:
    config = Config()
    for event in (program(), *events):
        assert config.apply(event) == ""
    return config


def offer_in(store_id: str, offer_id: str, points: int = 300) -> Any:
    listing = RewardStoreListing(reward_store_id=store_id, points_cost=points)
    update = {"offer_id": offer_id, "event_id": f"pub-{offer_id}", "reward_store": listing}
    return store_offer().model_copy(update=update)


CONFIG = configured(
    reward_store("CAFE"),
    reward_store("LOUNGE", eligibility=GOLD_ONLY),
    reward_store("SOON", available_from=T0 + timedelta(days=1)),
    reward_store("SHUT", withdrawn=True),
    reward_store("ABROAD", market="US"),
    reward_store(
        "EMPTY",
        localized_copy=[
            LocalizedCopy(locale="en", headline="Empty", short_description="Nothing yet"),
            LocalizedCopy(locale="fr", headline="Vide", short_description="Rien encore"),
        ],
    ),
    offer_in("CAFE", "MUFFIN", 300),
    offer_in("CAFE", "SCONE", 2000),
    offer_in("LOUNGE", "LATTE"),
    offer_in("SHUT", "CLOSED"),
)


@pytest.fixture
def client() -> Iterator[TestClient]:
    gold = member_row() | {"profile": {"attributes": {"tier": "GOLD"}}}
    french = member_row() | {"profile": {"preferred_locale": "fr-CA"}}
    members = Members(m1=member_row(balance=1000), m2=gold, m3=french)
    app = create_app(
        dsn=NO_DATABASE, api_secret=SECRET, clock=lambda: T0, config_source=FixedConfig(CONFIG)
    )
    with TestClient(app) as running:
        app.state.reward_store_queries = members
        yield running


def bearer(subject: str) -> dict[str, str]:
    token = issue_token(SECRET, subject, Role.MEMBER, now=datetime.now(UTC))
    return {"Authorization": f"Bearer {token}"}


def test_a_member_sees_the_open_stores_of_their_market_that_admit_them_in_their_language(
    client,
):
    answer = client.get("/v1/reward-stores", params={"locale": "fr"}, headers=bearer("m1"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["locale"] == "fr"
    cafe, empty = body["reward_stores"]  # not LOUNGE (GOLD only), SOON, SHUT, ABROAD
    assert cafe == {
        "reward_store_id": "CAFE", "market": "CA", "program_id": PROGRAM, "category": "REGULAR",
        "copy": {"locale": "fr", "headline": "Le café", "short_description": "Des gâteries",
                 "long_description": None, "terms": None, "image_url": None},
        "available_until": None, "offers_for_member": 2, "offers_member_may_buy": 1,
        "cheapest_points_cost": 300,
    }  # fmt: skip
    assert (empty["reward_store_id"], empty["copy"]["headline"]) == ("EMPTY", "Vide")
    assert (empty["offers_for_member"], empty["cheapest_points_cost"]) == (0, None)


def test_without_a_locale_a_member_sees_the_stores_in_their_own_language(client):
    """Found by trying it as a user: a fr-CA member's feed was French, their stores English."""
    stores = client.get("/v1/reward-stores", headers=bearer("m3")).json()
    offers = client.get("/v1/reward-stores/CAFE/offers", headers=bearer("m3")).json()
    asked = client.get("/v1/reward-stores", params={"locale": "en"}, headers=bearer("m3")).json()
    unset = client.get("/v1/reward-stores", headers=bearer("m1")).json()

    assert (stores["locale"], stores["reward_stores"][0]["copy"]["headline"]) == (
        "fr-CA", "Le café")  # fmt: skip
    assert offers["locale"] == "fr-CA"
    assert {o["copy"]["locale"] for o in offers["offers"]} == {"fr"}
    assert (asked["locale"], unset["locale"]) == ("en", "en")


def test_a_store_for_gold_members_is_listed_to_a_gold_member(client):
    answer = client.get("/v1/reward-stores", headers=bearer("m2"))
    listed = [s["reward_store_id"] for s in answer.json()["reward_stores"]]
    assert listed == ["CAFE", "EMPTY", "LOUNGE"]
    assert answer.json()["reward_stores"][0]["copy"]["locale"] == "en"


def test_the_offers_of_a_store_the_member_is_not_admitted_to_say_why(client):
    answer = client.get("/v1/reward-stores/LOUNGE/offers", headers=bearer("m1"))
    assert answer.status_code == 200, answer.text
    (latte,) = answer.json()["offers"]
    assert (latte["offer_id"], latte["member"]["refusal"]) == ("LATTE", "not_eligible")
    assert latte["member"]["detail"] == "reward store LOUNGE: the member does not meet TIER"


@pytest.mark.parametrize("store_id", ["NOWHERE", "SHUT"])
def test_an_unknown_or_withdrawn_store_is_not_found(client, store_id):
    answer = client.get(f"/v1/reward-stores/{store_id}/offers", headers=bearer("m1"))
    assert answer.status_code == 404, answer.text
    assert answer.json()["reason"] == f"no reward store '{store_id}'"


def test_an_unknown_member_is_not_found(client):
    answer = client.get("/v1/reward-stores", headers=bearer("stranger"))
    assert answer.status_code == 404, answer.text


def test_the_listing_is_documented_with_its_example(client):
    described = client.get("/openapi.json").json()["paths"]["/v1/reward-stores"]["get"]
    example = described["responses"]["200"]["content"]["application/json"]["example"]
    assert example["reward_stores"][0]["copy"]["locale"] == "fr"


@pytest.mark.parametrize(
    ("asked", "preferred", "shown"),
    [("en", "fr-CA", "en"), (None, "fr-CA", "fr-CA"), (None, None, "en"),
     (None, "not a tag", "en"), (None, "", "en")],
)  # fmt: skip
def test_a_member_s_view_is_in_the_language_asked_else_their_own_else_english(
    asked, preferred, shown
):
    from projections.api.locales import for_member

    assert for_member(asked, preferred) == shown
