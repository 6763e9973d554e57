"""`GET /v1/rewards` and `GET /v1/members/{id}/rewards` in-process, over an in-memory reward
store: who sees what (anonymous, a member, staff), copy in the locale asked for, the stock
state, "you can afford it", and the wallet's pages (the SQL on the real stack:
tests/integration/test_rewards_api.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from projections.api.app import create_app
from projections.api.auth import Role, issue_token
from projections.api.reward_store import MemberStanding
from projections.api.routes_rewards import LOW_STOCK_BELOW, stock_of
from tests.cart_given import AT
from tests.rewards_given import FakeRewardStore, catalogue_reward, granted

SECRET = "unit-test-secret-for-the-reward-routes-long-enough"
NO_DATABASE = "postgresql://nobody@127.0.0.1:9/none?connect_timeout=1"


@pytest.fixture
def store() -> FakeRewardStore:
    store = FakeRewardStore()
    store.rewards = [
        catalogue_reward("MUFFIN", points_cost=500),
        catalogue_reward("COFFEE", points_cost=200, uses_code_stock=True, codes_stocked=12,
                         codes_given=5),
        catalogue_reward("LATER", available_from=AT + timedelta(hours=1)),
        catalogue_reward("ENDED", available_until=AT),
        catalogue_reward("IN_FRANCE", market="FR"),
    ]  # fmt: skip
    store.standings["M1"] = MemberStanding(
        "M1", is_known=True, status="ACTIVE", program_ids=("CA_REWARDS",),
        balances={"CA_REWARDS": 300},
    )  # fmt: skip
    return store


@pytest.fixture
def client(store) -> Iterator[TestClient]:
    app = create_app(dsn=NO_DATABASE, api_secret=SECRET, clock=lambda: AT, reward_store=store)
    with TestClient(app) as running:
        yield running


def bearer(subject: str = "M1", role: Role = Role.MEMBER) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, subject, role, now=datetime.now(UTC))}"}


# --- the catalogue ----------------------------------------------------------------------------


def test_anyone_sees_the_rewards_for_sale_now_in_the_market_cheapest_first(client):
    response = client.get("/v1/rewards", params={"market": "CA"})

    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["reward_id"] for r in body["rewards"]] == ["COFFEE", "MUFFIN"]
    assert (body["member_id"], body["locale"]) == (None, "en")
    muffin = body["rewards"][1]
    assert muffin["points_cost"] == 500
    assert muffin["copy"] == {
        "locale": "en", "headline": "A free muffin", "short_description": "Any muffin, on us.",
        "long_description": None, "terms": None, "image_url": None,
    }  # fmt: skip
    assert muffin["member"] is None
    assert muffin["stock"] == {"state": "available", "remaining": None}


@pytest.mark.parametrize(
    ("locale", "shown"), [("fr", "fr"), ("fr-CA", "fr"), ("FR", "fr"), ("de", "en"), ("en", "en")]
)
def test_copy_is_in_the_language_asked_for_else_in_english(client, locale, shown):
    response = client.get("/v1/rewards", params={"market": "CA", "locale": locale})
    assert {r["copy"]["locale"] for r in response.json()["rewards"]} == {shown}


def test_a_member_token_sees_whether_it_is_eligible_and_can_afford_each_reward(client):
    response = client.get("/v1/rewards", params={"market": "CA"}, headers=bearer("M1"))

    body = response.json()
    assert body["member_id"] == "M1"
    views = {r["reward_id"]: r["member"] for r in body["rewards"]}
    assert views == {
        "COFFEE": {"eligible": True, "affordable": True, "balance": 300},
        "MUFFIN": {"eligible": True, "affordable": False, "balance": 300},
    }


def test_staff_see_a_members_view_with_member_id(client):
    response = client.get(
        "/v1/rewards", params={"market": "CA", "member_id": "M1"}, headers=bearer("cc", Role.STAFF)
    )
    assert response.json()["member_id"] == "M1"
    assert response.json()["rewards"][0]["member"]["balance"] == 300


def test_an_unknown_member_is_eligible_for_nothing(client):
    response = client.get("/v1/rewards", params={"market": "CA"}, headers=bearer("M9"))
    assert {r["member"]["eligible"] for r in response.json()["rewards"]} == {False}


def test_a_member_token_may_not_ask_for_another_members_view(client):
    response = client.get(
        "/v1/rewards", params={"market": "CA", "member_id": "M2"}, headers=bearer("M1")
    )
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"


def test_a_members_view_without_a_token_is_401_and_a_bad_token_too(client):
    anonymous = client.get("/v1/rewards", params={"market": "CA", "member_id": "M1"})
    forged = client.get("/v1/rewards", params={"market": "CA"},
                        headers={"Authorization": "Bearer not-a-jwt"})  # fmt: skip
    assert (anonymous.status_code, forged.status_code) == (401, 401)


@pytest.mark.parametrize("params", [{}, {"market": "ca"}, {"market": "CA", "locale": "français"}])
def test_a_missing_or_malformed_market_or_locale_is_400(client, params):
    response = client.get("/v1/rewards", params=params)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_parameter"


@pytest.mark.parametrize(
    ("changes", "state", "remaining"),
    [
        ({}, "available", None),
        ({"uses_code_stock": True, "codes_stocked": 20, "codes_given": 10}, "available", 10),
        ({"uses_code_stock": True, "codes_stocked": 20, "codes_given": 11}, "low", 9),
        ({"uses_code_stock": True, "codes_stocked": 3, "codes_given": 3}, "out", 0),
        ({"uses_code_stock": True}, "out", 0),
        ({"grants_total_max": 100, "grants": 95}, "low", 5),
        ({"grants_total_max": 2, "grants": 2}, "out", 0),
        # Both: the smaller is what is left.
        ({"uses_code_stock": True, "codes_stocked": 50, "grants_total_max": 30, "grants": 25},
         "low", 5),
    ],
)  # fmt: skip
def test_the_stock_is_out_at_zero_low_below_the_threshold_else_available(changes, state, remaining):
    assert LOW_STOCK_BELOW == 10
    stock = stock_of(catalogue_reward(**changes))
    assert (stock.state, stock.remaining) == (state, remaining)


# --- the wallet -------------------------------------------------------------------------------


def test_the_wallet_is_newest_first_with_status_code_token_expiry_and_reason(client, store):
    store.grant(
        granted("G1", granted_at=AT - timedelta(days=2)),
        granted("G2", granted_at=AT - timedelta(days=1), code=None, redemption_token="G2",
                reason="BIRTHDAY", points_spent=0),
        granted("G3", granted_at=AT - timedelta(days=40), expires_at=AT - timedelta(days=10),
                status="EXPIRED", closed_at=AT - timedelta(days=9)),
        granted("G4", granted_at=AT - timedelta(days=5), expires_at=AT - timedelta(hours=1)),
    )  # fmt: skip

    response = client.get("/v1/members/M1/rewards", headers=bearer("M1"))

    assert response.status_code == 200, response.text
    rewards = response.json()["rewards"]
    assert [(r["granted_reward_id"], r["status"], r["is_usable"]) for r in rewards] == [
        ("G2", "ISSUED", True), ("G1", "ISSUED", True),
        ("G4", "ISSUED", False),  # past its expiry; the daily run has not expired it yet
        ("G3", "EXPIRED", False),
    ]  # fmt: skip
    g2 = rewards[0]
    assert (g2["code"], g2["redemption_token"], g2["reason"]) == (None, "G2", "BIRTHDAY")
    assert rewards[1]["code"] == rewards[1]["redemption_token"] == "CODE-G1"
    assert rewards[1]["expires_at"] == "2026-04-01T10:00:00Z"


def test_the_wallet_pages_with_a_cursor_and_filters_by_status(client, store):
    store.grant(*(granted(f"G{n}", granted_at=AT - timedelta(hours=n)) for n in range(5)))
    store.grant(granted("USED", status="REDEEMED", closed_at=AT))

    first = client.get("/v1/members/M1/rewards", params={"limit": 2}, headers=bearer()).json()
    second = client.get(
        "/v1/members/M1/rewards",
        params={"limit": 2, "cursor": first["page"]["next_cursor"]},
        headers=bearer(),
    ).json()
    used = client.get("/v1/members/M1/rewards", params={"status": "REDEEMED"}, headers=bearer())

    assert [r["granted_reward_id"] for r in first["rewards"]] == ["USED", "G0"]
    assert first["page"]["has_more"] is True
    assert [r["granted_reward_id"] for r in second["rewards"]] == ["G1", "G2"]
    assert [r["granted_reward_id"] for r in used.json()["rewards"]] == ["USED"]
    assert used.json()["page"] == {"limit": 20, "has_more": False, "next_cursor": None}


def test_a_reward_moved_by_a_merge_is_shown_moved_not_a_500(client, store):
    """Found by trying it as a user: a merged member's wallet, and their redemption's status,
    answered 500 (the projection writes MOVED, the answer knew three statuses)."""
    store.grant(granted("GONE", status="MOVED", closed_at=AT))

    response = client.get("/v1/members/M1/rewards", headers=bearer("M1"))
    moved = client.get("/v1/members/M1/rewards", params={"status": "MOVED"}, headers=bearer())

    assert response.status_code == 200, response.text
    [gone] = response.json()["rewards"]
    assert (gone["status"], gone["is_usable"]) == ("MOVED", False)
    assert [r["granted_reward_id"] for r in moved.json()["rewards"]] == ["GONE"]


def test_a_cursor_this_api_did_not_issue_is_400(client):
    response = client.get("/v1/members/M1/rewards", params={"cursor": "bm9wZQ"}, headers=bearer())
    assert response.status_code == 400
    assert response.json()["parameter"] == "cursor"


def test_an_unknown_member_has_no_wallet(client):
    response = client.get("/v1/members/M9/rewards", headers=bearer("M9"))
    assert response.status_code == 404


def test_a_member_token_reads_only_its_own_wallet_and_staff_read_any(client, store):
    store.grant(granted("G1", member_id="M2"))
    assert client.get("/v1/members/M2/rewards", headers=bearer("M1")).status_code == 403
    assert client.get("/v1/members/M2/rewards").status_code == 401
    staff = client.get("/v1/members/M2/rewards", headers=bearer("cc", Role.STAFF))
    assert [r["granted_reward_id"] for r in staff.json()["rewards"]] == ["G1"]


def test_a_rewards_profile_criteria_decide_whether_a_member_is_eligible(client, store):
    gold = [{"attribute": "TIER", "values": ["GOLD"]}]
    recent = [{"attribute": "DAYS_SINCE_LAST_PURCHASE", "max_value": 30}]
    store.rewards = [
        catalogue_reward("GOLD_ONLY", eligibility=gold),
        catalogue_reward("BUYERS", eligibility=recent),  # history: judged at redemption
        catalogue_reward("ELSEWHERE", market="CA"),
    ]
    store.standings["M1"] = MemberStanding(
        "M1", is_known=True, status="ACTIVE", program_ids=("CA_REWARDS",),
        balances={"CA_REWARDS": 300}, markets=("CA",), profile={"attributes": {"tier": "SILVER"}},
    )  # fmt: skip
    store.standings["M2"] = MemberStanding(
        "M2", is_known=True, status="ACTIVE", program_ids=("CA_REWARDS",),
        balances={"CA_REWARDS": 300}, markets=("US",), profile={"attributes": {"tier": "GOLD"}},
    )  # fmt: skip

    def eligible(member: str) -> dict[str, bool]:
        answer = client.get("/v1/rewards", params={"market": "CA"}, headers=bearer(member))
        assert answer.status_code == 200, answer.text
        return {r["reward_id"]: r["member"]["eligible"] for r in answer.json()["rewards"]}

    assert eligible("M1") == {"GOLD_ONLY": False, "BUYERS": True, "ELSEWHERE": True}
    assert eligible("M2") == {"GOLD_ONLY": False, "BUYERS": False, "ELSEWHERE": False}


def test_a_member_s_catalogue_is_in_their_language_unless_another_is_asked(client, store):
    """Found by trying it as a user: a fr-CA member's feed and inbox were French, their
    reward catalogue English."""
    store.rewards = [catalogue_reward()]
    store.standings["M1"] = MemberStanding(
        "M1", is_known=True, status="ACTIVE", program_ids=("CA_REWARDS",),
        balances={"CA_REWARDS": 300}, markets=("CA",), profile={"preferred_locale": "fr-CA"},
    )  # fmt: skip

    def shown(**params: str) -> tuple[str, str]:
        answer = client.get("/v1/rewards", params={"market": "CA", **params}, headers=bearer("M1"))
        assert answer.status_code == 200, answer.text
        return answer.json()["locale"], answer.json()["rewards"][0]["copy"]["headline"]

    assert shown() == ("fr-CA", "Un muffin gratuit")
    assert shown(locale="en") == ("en", "A free muffin")
    anonymous = client.get("/v1/rewards", params={"market": "CA"}).json()
    assert anonymous["locale"] == "en"
