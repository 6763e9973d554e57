"""`POST /v1/carts/evaluate` in-process, on a configuration built here: who may call it, what a
bad cart is told, and the shape and sums of the answer for an anonymous cart (member carts
need Postgres: tests/integration/test_cart_evaluate.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from projections.api.app import create_app
from projections.api.auth import Role, issue_token
from projections.api.routes_carts import FixedConfig, NoConfig
from tests.cart_given import AT, cart, config

SECRET = "unit-test-secret-for-the-cart-api-long-enough-for-hs256"
# Never connected to: anonymous carts and refusals need no database.
NO_DATABASE = "postgresql://nobody@127.0.0.1:9/none?connect_timeout=1"


def client_for(source=None, *, now: datetime = AT) -> TestClient:
    app = create_app(
        dsn=NO_DATABASE,
        api_secret=SECRET,
        clock=lambda: now,
        config_source=FixedConfig(config()) if source is None else source,
    )
    return TestClient(app)


@pytest.fixture
def client() -> Iterator[TestClient]:
    with client_for() as running:
        yield running


def bearer(role: Role = Role.STAFF, subject: str = "till-7") -> dict[str, str]:
    token = issue_token(SECRET, subject, role, now=datetime.now(UTC))
    return {"Authorization": f"Bearer {token}"}


def evaluate(client: TestClient, body: dict, headers: dict[str, str] | None = None):
    headers = bearer() if headers is None else headers
    return client.post("/v1/carts/evaluate", json=body, headers=headers)


# --- who may ask ----------------------------------------------------------------------------


def test_a_cart_without_a_token_is_refused_with_401(client):
    response = evaluate(client, cart(), headers={})
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_member_token_may_not_price_carts(client):
    response = evaluate(client, cart("M1"), headers=bearer(Role.MEMBER, "M1"))
    assert response.status_code == 403
    assert response.json() == {
        "error": "forbidden",
        "reason": "this is a till's call: it needs a till (POS) or staff token",
    }


@pytest.mark.parametrize("name", ["store-0412-t1", "M1"])
def test_a_till_token_prices_carts_and_reads_no_member_s_data(client, name):
    # Even a till named like a member (M1) is no member: every member or staff route refuses
    # it before any database read (there is none here: a read would answer 503).
    till = bearer(Role.TILL, name)
    assert evaluate(client, cart(), headers=till).status_code == 200
    for path in (
        "/v1/members/M1/ledger", "/v1/members/M1/balance", "/v1/members/M1/rewards",
        "/v1/members/M1/preferences", "/v1/members/M1/inbox", "/v1/members/M1/offers",
        "/v1/members/M1/challenges", "/v1/members/M1/issued-offers",
        "/v1/rewards?market=CA", "/v1/reward-stores?member_id=M1", "/v1/reward-stores",
        "/v1/offers/OFFER/performance", "/v1/promo-codes/CODE?market=CA",
    ):  # fmt: skip
        response = client.get(path, headers=till)
        assert response.status_code == 403, (path, response.text)
    events = client.post("/v1/offer-feed/events", headers=till, json={"events": []})
    assert events.status_code == 403, events.text


def test_the_token_is_checked_before_the_body(client):
    assert evaluate(client, {"lines": []}, headers={}).status_code == 401


# --- what a bad cart is told ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "parameter", "reason"),
    [
        ({"market": None}, "market", "string"),
        ({"lines": []}, "lines", "at least 1"),
        ({"occurred_at": "2026-03-02T10:00:00"}, "occurred_at", "timezone"),
        ({"currency": "cad"}, "currency", "pattern"),
        ({"currency": "USD"}, "currency", "the programmes of market ca keep cad"),
        ({"reserve": "yes"}, "reserve", "valid boolean"),  # not a truthy string: a reservation
        ({"surprise": 1}, "surprise", "not permitted"),
        ({"store": {"province": "ON"}}, "store.store_id", "required"),
    ],
)
def test_a_malformed_field_is_a_400_naming_the_field(client, change, parameter, reason):
    response = evaluate(client, {**cart(), **change})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_parameter"
    assert body["parameter"] == parameter
    assert reason in body["reason"].lower()


def test_a_negative_amount_names_the_line_field(client):
    body = cart()
    body["lines"][1]["amount_cents"] = -1
    response = evaluate(client, body)
    assert response.status_code == 400
    assert response.json()["parameter"] == "lines.1.amount_cents"


@pytest.mark.parametrize("given", [True, "700", 700.0])
def test_money_is_an_integer_as_given_not_a_boolean_a_string_or_a_float(client, given):
    # Found by a user's trial: `"unit_price_cents": true` was read as 1 cent.
    body = cart()
    body["lines"][0]["unit_price_cents"] = given
    response = evaluate(client, body)
    assert response.status_code == 400, response.text
    assert response.json()["parameter"] == "lines.0.unit_price_cents"
    assert "valid integer" in response.json()["reason"]


def test_two_lines_with_one_id_are_refused(client):
    body = cart()
    body["lines"][1]["line_id"] = "1"
    response = evaluate(client, body)
    assert response.status_code == 400
    assert response.json()["parameter"] == "lines"
    assert "repeated: 1" in response.json()["reason"]


def test_until_the_configuration_is_loaded_the_answer_is_503_with_the_reason():
    with client_for(NoConfig()) as client:
        response = evaluate(client, cart())
    assert response.status_code == 503
    assert response.json()["error"] == "config_unavailable"
    assert "without a config source" in response.json()["reason"]
    assert response.headers["retry-after"] == "1"


# --- the answer ---------------------------------------------------------------------------------


def test_an_anonymous_cart_gets_its_discounts_per_line_and_no_points(client):
    response = evaluate(client, cart())

    assert response.status_code == 200
    body = response.json()
    cents = ("item_discount_cents", "cart_discount_cents", "net_amount_cents")
    assert [(line["line_id"], *(line[k] for k in cents)) for line in body["lines"]] == [
        ("1", 70, 58, 572),
        ("2", 0, 442, 4358),
    ]
    assert body["lines"][0]["discounts"] == [
        {"offer_id": "SNACKS_10PCT", "cents": 70, "cart_level": False},
        {"offer_id": "CART_5_OFF_50", "cents": 58, "cart_level": True},
    ]
    assert body["cart_discounts"] == [{"offer_id": "CART_5_OFF_50", "cents": 500}]
    totals = ("total_before_cents", "total_discount_cents", "total_after_cents")
    assert [body[k] for k in totals] == [5500, 570, 4930]
    assert body["points"] == []
    assert body["total_points"] == 0
    assert {(o["offer_id"], o["discount_cents"], o["points"]) for o in body["offers_applied"]} == {
        ("SNACKS_10PCT", 70, 0),
        ("CART_5_OFF_50", 500, 0),
    }
    assert body["member_id"] is None
    assert body["transaction_id"] == "CART-1"


def test_every_amount_is_an_integer(client):
    body = evaluate(client, cart()).json()
    numbers = [body[k] for k in ("total_before_cents", "total_discount_cents", "total_after_cents")]
    numbers += [line[k] for line in body["lines"] for k in line if k.endswith("_cents")]
    numbers += [d["cents"] for line in body["lines"] for d in line["discounts"]]
    assert all(type(n) is int for n in numbers)


def test_a_cart_without_a_time_is_judged_at_the_request_time():
    before_the_offers = AT - timedelta(days=2)
    body = cart()
    del body["occurred_at"], body["transaction_id"]
    with client_for(now=before_the_offers) as early, client_for(now=AT) as on_time:
        too_early = evaluate(early, body).json()
        live = evaluate(on_time, body).json()
    assert too_early["occurred_at"] == "2026-02-28T10:00:00Z"
    assert too_early["total_discount_cents"] == 0
    assert live["total_discount_cents"] == 570
    assert live["transaction_id"].startswith("cart-")


def coupon_offer(offer_id: str, code: str, *, spend_min_cents: int, off_cents: int):
    """A live offer of its own coupon code: `off_cents` off a cart of `spend_min_cents`."""
    from tests.cart_given import discount, offer, single

    return offer(
        offer_id,
        behaviours=[single("SPEND", spend_min_cents=spend_min_cents)],
        activation={"kind": "COUPON_CODE", "coupon_code": code},
        reward=discount("AMOUNT_OFF_CART", amount_off_cents=off_cents),
    )


def test_a_coupon_offer_applies_only_with_its_code_in_the_cart():
    given = config()
    given.apply(coupon_offer("COUPON_2_OFF", "SAVE2", spend_min_cents=100, off_cents=200))
    with client_for(FixedConfig(given)) as client:
        without = evaluate(client, cart()).json()
        scanned = evaluate(client, cart(promo_codes=["save2"])).json()
    assert "COUPON_2_OFF" not in {d["offer_id"] for d in without["cart_discounts"]}
    assert {"offer_id": "COUPON_2_OFF", "cents": 200} in scanned["cart_discounts"]
    assert scanned["total_discount_cents"] == 770


def test_an_offers_coupon_is_reported_with_its_offer_and_never_counted_as_a_guess():
    """Found by trying it as a user: a coupon that activated its offer was listed as refused
    `code_unknown`, and a till scanning it a dozen times a minute was answered 429."""
    given = config()
    given.apply(coupon_offer("COUPON_2_OFF", "SAVE2", spend_min_cents=100, off_cents=200))
    given.apply(
        coupon_offer("COUPON_BIG_SPEND", "BIG50", spend_min_cents=1_000_000, off_cents=5000)
    )
    with client_for(FixedConfig(given)) as client:
        answers = [evaluate(client, cart(promo_codes=["big50", "save2"])) for _ in range(12)]

    assert {a.status_code for a in answers} == {200}
    big, save = answers[-1].json()["promo_codes"]
    assert (save["code"], save["status"], save["offer_id"]) == ("SAVE2", "applies", "COUPON_2_OFF")
    assert save["discount_cents"] == 200
    assert (big["code"], big["status"], big["reason"]) == (
        "BIG50",
        "refused",
        "code_not_applicable",
    )
    assert "COUPON_BIG_SPEND" in big["detail"]


def test_evaluating_changes_nothing_so_the_same_cart_gets_the_same_answer(client):
    source: FixedConfig = client.app.state.config_source
    offers_before = len(source.config.catalogue)
    first = evaluate(client, cart()).json()
    second = evaluate(client, cart()).json()
    assert first == second
    assert len(source.config.catalogue) == offers_before


def test_a_body_that_is_not_json_or_not_an_object_is_said_plainly(client):
    """Found by trying it as a user: malformed JSON answered "JSON decode error" naming the
    character position as the parameter, and a JSON body sent without its Content-Type
    "Input should be a valid dictionary"."""
    broken = client.post("/v1/carts/evaluate", content=b'{"lines": [1,',
                         headers={**bearer(), "Content-Type": "application/json"})  # fmt: skip
    untyped = client.post("/v1/carts/evaluate", content=b'{"lines": []}', headers=bearer())

    assert broken.status_code == untyped.status_code == 400
    assert broken.json()["parameter"] == untyped.json()["parameter"] == "body"
    assert broken.json()["reason"] == "the body is not valid JSON at character 13: Expecting value"
    assert "Content-Type: application/json" in untyped.json()["reason"]
