"""`GET /v1/offers` and `GET /v1/members/{id}/offers` in-process, over an in-memory feed
store: which offers are shown and in which order, the display window, control hold-outs,
triggered offers, copy in the language asked for, activation, progress and caps left,
anonymous against personalised, who may read which feed, and HTTP caching (ETag, 304,
Cache-Control). The SQL is checked on the real stack
(tests/integration/test_offer_feed_projection.py, test_offer_feeds_stack.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from processors.rules.offers.targeting import in_control
from projections.api.app import create_app
from projections.api.auth import Role, issue_token
from projections.api.feed_schemas import MarketFeed, MemberFeed
from projections.api.offer_feed import Fragments, Issued, MarketFeeds, Standing, offer_json
from tests.feed_given import AT, FakeFeedStore, copy, item, member, targeted, window

SECRET = "unit-test-secret-for-the-offer-feeds-long-enough"
NO_DATABASE = "postgresql://nobody@127.0.0.1:9/none?connect_timeout=1"

ACCUMULATE = [{"kind": "SPEND", "spend_min_cents": 5000, "accumulation": "ACCUMULATED"}]
VISITS = [{"kind": "VISITS", "count_min": 3}]
ONE_PURCHASE = [{"kind": "SPEND", "spend_min_cents": 2000, "accumulation": "SINGLE_TRANSACTION"}]
LISTED = {"kind": "AUDIENCE_LIST", "timing": "STATIC", "audience_id": "VIP"}


def member_in(offer_id: str, share: int, *, control: bool) -> str:
    """A member id the rules' sticky hash puts in (or out of) the offer's control group."""
    return next(m for n in range(1000) if in_control(offer_id, m := f"M{n}", share) is control)


@pytest.fixture
def store() -> FakeFeedStore:
    return FakeFeedStore(members={"M1": member("M1")})


@pytest.fixture
def client(store) -> Iterator[TestClient]:
    app = create_app(dsn=NO_DATABASE, api_secret=SECRET, clock=lambda: AT, feed_store=store)
    with TestClient(app) as running:
        yield running


def bearer(subject: str = "M1", role: Role = Role.MEMBER) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, subject, role, now=datetime.now(UTC))}"}


def market_feed(client: TestClient, **params: str) -> dict:
    response = client.get("/v1/offers", params={"market": "CA", **params})
    assert response.status_code == 200, response.text
    MarketFeed.model_validate_json(response.content)  # the body is what the schema says
    return response.json()


def member_feed(client: TestClient, member_id: str = "M1", **params: str) -> dict:
    response = client.get(f"/v1/members/{member_id}/offers", params=params,
                          headers=bearer(member_id))  # fmt: skip
    assert response.status_code == 200, response.text
    MemberFeed.model_validate_json(response.content)
    return response.json()


def ids(feed: dict) -> list[str]:
    return [o["offer_id"] for o in feed["offers"]]


def shown(feed: dict, offer_id: str) -> dict:
    [found] = [o for o in feed["offers"] if o["offer_id"] == offer_id]
    return found


# --- order ---------------------------------------------------------------------------------


def test_offers_are_ordered_by_rank_then_the_earliest_end_then_id(store, client):
    store.items = [
        item("RANK5_NO_END", rank=5),
        item("RANK5_ENDS_LATER", rank=5, schedule=window(-timedelta(days=1), timedelta(days=9))),
        item("RANK5_ENDS_SOON", rank=5, schedule=window(-timedelta(days=1), timedelta(days=2))),
        item("RANK1", rank=1),
        item("RANK5_B_SAME_END", rank=5, schedule=window(-timedelta(days=1), timedelta(days=2))),
        item("RANK9", rank=9, schedule=window(-timedelta(days=1), timedelta(hours=1))),
    ]  # fmt: skip
    expected = ["RANK1", "RANK5_B_SAME_END", "RANK5_ENDS_SOON", "RANK5_ENDS_LATER",
                "RANK5_NO_END", "RANK9"]  # fmt: skip

    assert ids(market_feed(client)) == expected
    assert ids(member_feed(client)) == expected


# --- the display window --------------------------------------------------------------------


def test_an_offer_is_shown_from_its_display_date_until_its_end_or_withdrawal(store, client):
    day = timedelta(days=1)
    store.items = [
        item("SHOWN_BEFORE_START", schedule=window(day, 10 * day, display=-timedelta(seconds=1))),
        item("DISPLAYED_RIGHT_NOW", schedule=window(day, 10 * day, display=timedelta(0))),
        item("NOT_YET_DISPLAYED", schedule=window(day, 10 * day, display=timedelta(seconds=1))),
        item("ENDS_RIGHT_NOW", schedule=window(-day, timedelta(0))),
        item("ENDED", schedule=window(-10 * day, -day)),
        item("WITHDRAWN", withdrawn_at=AT),
        item("WITHDRAWN_LATER", withdrawn_at=AT + timedelta(seconds=1)),
        item("EXTENDED", schedule=window(-10 * day, -day), ends_at=AT + day),
        item("EVERGREEN"),
    ]  # fmt: skip
    expected = {"SHOWN_BEFORE_START", "DISPLAYED_RIGHT_NOW", "WITHDRAWN_LATER", "EXTENDED",
                "EVERGREEN"}  # fmt: skip

    anonymous, personal = market_feed(client), member_feed(client)

    assert set(ids(anonymous)) == set(ids(personal)) == expected
    early = shown(personal, "SHOWN_BEFORE_START")
    assert (early["is_live"], early["days_left"]) == (False, 10)
    assert early["starts_at"] == "2026-03-03T10:00:00Z"
    assert shown(personal, "EXTENDED")["ends_at"] == "2026-03-03T10:00:00Z"
    assert (shown(personal, "EVERGREEN")["ends_at"], shown(personal, "EVERGREEN")["days_left"]) \
        == (None, None)  # fmt: skip


def test_days_left_are_whole_days_rounded_up(store, client):
    store.items = [
        item("FIVE_HOURS", schedule=window(-timedelta(days=1), timedelta(hours=5))),
        item("THREE_DAYS", schedule=window(-timedelta(days=1), timedelta(days=3))),
        item("THREE_DAYS_AND_A_BIT", schedule=window(-timedelta(days=1),
                                                     timedelta(days=3, seconds=1))),
    ]  # fmt: skip
    days = {o["offer_id"]: o["days_left"] for o in market_feed(client)["offers"]}
    assert days == {"FIVE_HOURS": 1, "THREE_DAYS": 3, "THREE_DAYS_AND_A_BIT": 4}


# --- who sees what -------------------------------------------------------------------------


def test_a_control_member_does_not_see_the_mass_offer_they_are_held_out_of(store, client):
    held_out = member_in("HELD_OUT", 50, control=True)
    tested = member_in("HELD_OUT", 50, control=False)
    store.members |= {held_out: member(held_out), tested: member(tested)}
    store.items = [item("HELD_OUT", targeting={"kind": "MASS", "timing": "STATIC",
                                              "control_share_percent": 50})]  # fmt: skip

    assert ids(member_feed(client, held_out)) == []
    assert ids(member_feed(client, tested)) == ["HELD_OUT"]
    assert ids(market_feed(client)) == ["HELD_OUT"]  # anonymous visitors are in no group


def test_a_targeted_offer_is_shown_to_targeted_members_only_and_never_to_control(store, client):
    store.members |= {"M2": member("M2"), "M3": member("M3")}
    store.items = [item("VIP_ONLY", targeting=LISTED)]
    store.standings[("M1", "VIP_ONLY")] = targeted()
    store.standings[("M2", "VIP_ONLY")] = targeted(control=True)

    assert ids(member_feed(client, "M1")) == ["VIP_ONLY"]
    assert ids(member_feed(client, "M2")) == []  # held out as control
    assert ids(member_feed(client, "M3")) == []  # not targeted
    assert ids(market_feed(client)) == []  # never anonymous


def test_a_member_sees_only_the_offers_of_their_programmes(store, client):
    store.items = [item("OTHER_PROGRAMME", program_id="ELSEWHERE"), item("MINE")]
    assert ids(member_feed(client)) == ["MINE"]


def test_a_triggered_offer_is_shown_while_a_fire_is_unused_and_valid(store, client):
    trigger = {"kind": "MASS", "timing": "TRIGGERED", "trigger_activity_kind": "APP_DOWNLOAD",
               "trigger_fires_per_member_max": 2, "trigger_valid_days": 7}  # fmt: skip
    store.items = [item("WELCOME", targeting=trigger)]
    store.members |= {n: member(n) for n in ("FRESH", "USED", "EXPIRED", "AGAIN")}
    fired = AT - timedelta(days=2)
    store.standings |= {
        ("FRESH", "WELCOME"): targeted(at=fired),
        ("USED", "WELCOME"): targeted(at=fired, uses=1),
        ("EXPIRED", "WELCOME"): targeted(at=AT - timedelta(days=7)),
        ("AGAIN", "WELCOME"): Standing(
            in_control_group=False, targeted_at=fired - timedelta(days=1),
            last_targeted_at=fired, targetings=2, uses=1,
        ),
    }  # fmt: skip

    fresh = member_feed(client, "FRESH")
    assert ids(fresh) == ["WELCOME"]
    assert (shown(fresh, "WELCOME")["ends_at"], shown(fresh, "WELCOME")["days_left"]) == (
        "2026-03-07T10:00:00Z",
        5,
    )  # the member's own window: 7 days from the fire
    assert ids(member_feed(client, "USED")) == []  # its one use is spent
    assert ids(member_feed(client, "EXPIRED")) == []  # 7 days are over
    assert ids(member_feed(client, "AGAIN")) == ["WELCOME"]  # fired twice, used once
    assert ids(market_feed(client)) == []


STORE = {"reward_store_id": "STORE", "points_cost": 500}


def test_a_reward_store_offer_is_in_the_feed_of_a_member_holding_an_unused_instance(store, client):
    store.items = [item("BOUGHT", reward_store=STORE), item("NOT_BOUGHT", reward_store=STORE),
                   item("ALL_USED", reward_store=STORE)]  # fmt: skip
    store.standings[("M1", "BOUGHT")] = Standing(issued=(Issued("I-1", "ISSUED"),))
    store.standings[("M1", "NOT_BOUGHT")] = Standing(loaded_at=AT)  # a standing, no instance
    store.members["M2"] = member("M2")
    store.standings[("M2", "BOUGHT")] = Standing(issued=(Issued("I-2", "ISSUED"),))

    assert ids(member_feed(client)) == ["BOUGHT"]
    assert ids(market_feed(client)) == []  # never anonymously


def test_each_instance_bought_shows_its_state_by_the_apis_clock(store, client):
    store.items = [item("BOUGHT", reward_store=STORE), item("MASS_ONE")]
    store.standings[("M1", "BOUGHT")] = Standing(issued=(
        Issued("I-1", "ISSUED", "STORE", 500, AT - timedelta(days=2)),
        Issued("I-2", "LOCKED", "STORE", 500, AT - timedelta(days=1),
               locked_until=AT + timedelta(minutes=10)),
        Issued("I-3", "LOCKED", "STORE", 500, AT - timedelta(days=1),
               locked_until=AT - timedelta(minutes=1)),  # the lock lapsed
        Issued("I-4", "REDEEMED", "STORE", 500, AT - timedelta(hours=1)),
    ))  # fmt: skip

    offers = {o["offer_id"]: o for o in member_feed(client)["offers"]}

    assert [(i["issued_offer_id"], i["state"], i["locked_until"])
            for i in offers["BOUGHT"]["issued"]] == [
        ("I-1", "ready", None), ("I-2", "locked", "2026-03-02T10:10:00Z"), ("I-3", "ready", None),
        ("I-4", "redeemed", None),
    ]  # fmt: skip
    assert offers["BOUGHT"]["issued"][0] == {
        "issued_offer_id": "I-1", "reward_store_id": "STORE", "points_spent": 500,
        "issued_at": "2026-02-28T10:00:00Z", "state": "ready", "locked_until": None,
    }  # fmt: skip
    assert offers["MASS_ONE"]["issued"] is None  # not a store offer
    MemberFeed.model_validate(member_feed(client))


# --- copy ----------------------------------------------------------------------------------

BILINGUAL = [copy("en", "Spend and earn"), copy("fr", "Dépensez et gagnez")]


@pytest.mark.parametrize(
    ("asked", "locale", "headline"),
    [("fr", "fr", "Dépensez et gagnez"), ("fr-CA", "fr", "Dépensez et gagnez"),
     ("FR", "fr", "Dépensez et gagnez"), ("en-GB", "en", "Spend and earn"),
     ("de", "en", "Spend and earn"), ("es-MX", "en", "Spend and earn")],
)  # fmt: skip
def test_copy_is_in_the_language_asked_for_then_its_language_then_english(
    store, client, asked, locale, headline
):
    store.items = [item("BILINGUAL", localized_copy=BILINGUAL)]
    for feed in (market_feed(client, locale=asked), member_feed(client, locale=asked)):
        assert feed["locale"] == asked
        assert shown(feed, "BILINGUAL")["copy"]["locale"] == locale
        assert shown(feed, "BILINGUAL")["copy"]["headline"] == headline


def test_a_member_gets_their_preferred_language_unless_they_ask_for_another(store, client):
    store.members["M1"] = member("M1", preferred_locale="fr-CA")
    store.items = [item("BILINGUAL", localized_copy=BILINGUAL)]
    assert shown(member_feed(client), "BILINGUAL")["copy"]["locale"] == "fr"
    assert shown(member_feed(client, locale="en"), "BILINGUAL")["copy"]["locale"] == "en"
    assert shown(market_feed(client), "BILINGUAL")["copy"]["locale"] == "en"


def test_copy_is_plain_text_as_published_with_its_line_breaks(store, client):
    text = {**copy("en", "L'offre « spéciale » & plus"), "terms": "Line 1\nLine 2 <3"}
    store.items = [item("PLAIN", localized_copy=[text, copy("fr", "Offre")])]
    sent = shown(market_feed(client), "PLAIN")["copy"]
    assert sent["headline"] == "L'offre « spéciale » & plus"
    assert sent["terms"] == "Line 1\nLine 2 <3"


# --- activation, progress and caps ---------------------------------------------------------


def test_activation_states_as_the_member_and_as_anyone_sees_them(store, client):
    store.items = [
        item("AUTO"),
        item("TO_LOAD", activation={"kind": "LOAD_TO_CARD"}),
        item("LOADED", activation={"kind": "LOAD_TO_CARD"}),
        item("COUPON", activation={"kind": "COUPON_CODE", "coupon_code": "SAVE5"}),
        item("BY_PROMO_CODE", activation={"kind": "PROMOTION_CODE"}),
    ]
    store.standings[("M1", "LOADED")] = Standing(loaded_at=AT - timedelta(hours=2))

    personal = {o["offer_id"]: o["activation"] for o in member_feed(client)["offers"]}
    anonymous = {o["offer_id"]: o["activation"] for o in market_feed(client)["offers"]}

    assert {k: v["state"] for k, v in personal.items()} == {
        "AUTO": "automatic", "TO_LOAD": "needs_loading", "LOADED": "loaded",
        "COUPON": "coupon_code_required", "BY_PROMO_CODE": "promo_code_required",
    }  # fmt: skip
    assert personal["LOADED"]["loaded_at"] == "2026-03-02T08:00:00Z"
    assert personal["COUPON"]["coupon_code"] == "SAVE5"
    assert anonymous["LOADED"] == {"kind": "LOAD_TO_CARD", "state": "needs_loading",
                                   "coupon_code": None, "loaded_at": None}  # fmt: skip
    assert anonymous["COUPON"]["coupon_code"] is None  # the code is for targeted members


def progress(use: int, *values: tuple[str, str]) -> list[dict]:
    return [{"behaviour_index": n, "metric": "SPEND_CENTS", "progress": p, "threshold": t}
            for n, (p, t) in enumerate(values)]  # fmt: skip


def test_progress_towards_each_behaviour_is_the_latest_of_the_use_in_progress(store, client):
    both = [ACCUMULATE[0], VISITS[0]]
    store.items = [
        item("SPEND_AND_VISITS", behaviours=both, reward={"kind": "FLAT_POINTS", "points": 500}),
        item("UNTOUCHED", behaviours=both, reward={"kind": "FLAT_POINTS", "points": 500}),
        item("JUST_COMPLETED", behaviours=ACCUMULATE, reward={"kind": "FLAT_POINTS", "points": 1}),
        item("ONE_PURCHASE", behaviours=ONE_PURCHASE, reward={"kind": "FLAT_POINTS", "points": 1}),
    ]  # fmt: skip
    store.standings[("M1", "SPEND_AND_VISITS")] = Standing(
        progress_use_number=1,
        progress=progress(1, ("3200.000", "5000.000"), ("2.000", "3.000")),
    )
    store.standings[("M1", "JUST_COMPLETED")] = Standing(
        uses=1, points_awarded=1, progress_use_number=1,
        progress=progress(1, ("4900.000", "5000.000")),
    )  # fmt: skip

    feed = member_feed(client)

    spend, visits = shown(feed, "SPEND_AND_VISITS")["behaviours"]
    assert (spend["metric"], spend["progress"], spend["threshold"], spend["percent"]) == (
        "SPEND_CENTS",
        "3200",
        "5000",
        64,
    )  # $32 of $50
    assert (visits["metric"], visits["progress"], visits["threshold"], visits["percent"]) == (
        "COUNT",
        "2",
        "3",
        66,
    )  # 2 of 3 visits
    assert [(b["progress"], b["percent"]) for b in shown(feed, "UNTOUCHED")["behaviours"]] == [
        ("0", 0),
        ("0", 0),
    ]
    # The next use starts from nothing: the 4900 belonged to the use just completed.
    assert shown(feed, "JUST_COMPLETED")["behaviours"][0]["progress"] == "0"
    [single] = shown(feed, "ONE_PURCHASE")["behaviours"]
    assert (single["is_accumulated"], single["progress"], single["threshold"]) == (
        False,
        None,
        "2000",
    )


def test_uses_and_points_left_under_the_caps_never_go_below_zero(store, client):
    store.items = [
        item("CAPPED", usage={"uses_per_member_max": 3, "points_per_member_max": 1000}),
        item("SPENT", usage={"uses_per_member_max": 2, "points_per_member_max": 500}),
        item("UNCAPPED"),
    ]
    store.standings[("M1", "CAPPED")] = Standing(uses=1, points_awarded=300)
    store.standings[("M1", "SPENT")] = Standing(uses=2, points_awarded=500)

    usage = {o["offer_id"]: o["usage"] for o in member_feed(client)["offers"]}

    assert usage["CAPPED"] == {"uses": 1, "uses_per_member_max": 3, "uses_left": 2,
                               "points_awarded": 300, "points_per_member_max": 1000,
                               "points_left": 700}  # fmt: skip
    assert (usage["SPENT"]["uses_left"], usage["SPENT"]["points_left"]) == (0, 0)
    assert usage["UNCAPPED"] == {"uses": 0, "uses_per_member_max": None, "uses_left": None,
                                 "points_awarded": 0, "points_per_member_max": None,
                                 "points_left": None}  # fmt: skip


def test_the_reward_is_shown_without_its_product_lists(store, client):
    skus = {"skus": [f"SKU{n}" for n in range(500)]}
    store.items = [item(
        "FREE_CHIPS",
        behaviours=[{"kind": "QUANTITY", "quantity_min": "2", "accumulation": "SINGLE_TRANSACTION",
                     "products": skus}],
        reward={"kind": "DISCOUNT", "discount": {"kind": "FREE_ITEM", "free_units": 1,
                                                 "products": skus}},
    )]  # fmt: skip
    offer = shown(market_feed(client), "FREE_CHIPS")
    assert offer["reward"]["discount"]["kind"] == "FREE_ITEM"
    assert "products" not in offer["reward"]["discount"]
    assert offer["behaviours"][0]["threshold"] == "2"


# --- anonymous against personalised --------------------------------------------------------


def test_the_anonymous_feed_holds_nothing_personal_and_reads_no_token(store, client):
    store.items = [item("ACCUMULATE", behaviours=ACCUMULATE,
                        usage={"uses_per_member_max": 1})]  # fmt: skip
    store.standings[("M1", "ACCUMULATE")] = Standing(
        progress_use_number=1, progress=progress(1, ("100.000", "5000.000"))
    )
    with_token = client.get("/v1/offers", params={"market": "CA"}, headers=bearer("M1"))
    with_bad_token = client.get("/v1/offers", params={"market": "CA"},
                                headers={"Authorization": "Bearer nonsense"})  # fmt: skip
    anonymous = market_feed(client)

    assert with_token.json() == with_bad_token.json() == anonymous  # no token is read
    [offer] = anonymous["offers"]
    assert offer["usage"] is None
    assert offer["behaviours"][0]["progress"] is None
    assert shown(member_feed(client), "ACCUMULATE")["behaviours"][0]["progress"] == "100"


def test_the_anonymous_feed_is_the_markets(store, client):
    store.items = [item("IN_CANADA"), item("IN_FRANCE", market="FR")]
    assert ids(market_feed(client)) == ["IN_CANADA"]
    assert ids(market_feed(client, market="FR")) == ["IN_FRANCE"]
    assert ids(market_feed(client, market="US")) == []


@pytest.mark.parametrize(
    "params", [{}, {"market": "ca"}, {"market": "CA", "locale": "not a locale"},
               {"market": "C"}, {"market": "CA", "locale": "f"}],
)  # fmt: skip
def test_a_malformed_market_or_locale_is_a_400(client, params):
    response = client.get("/v1/offers", params=params)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_parameter"


# --- who may read a member's feed ----------------------------------------------------------


def test_a_member_token_reads_only_its_own_feed_and_staff_read_any(store, client):
    store.members["M2"] = member("M2")
    store.items = [item("MINE")]

    own = client.get("/v1/members/M1/offers", headers=bearer("M1"))
    other = client.get("/v1/members/M2/offers", headers=bearer("M1"))
    unknown = client.get("/v1/members/NOBODY/offers", headers=bearer("M1"))
    staff = client.get("/v1/members/M2/offers", headers=bearer("care", Role.STAFF))
    anonymous = client.get("/v1/members/M1/offers")

    assert own.status_code == 200
    assert (other.status_code, other.json()["error"]) == (403, "forbidden")
    assert unknown.status_code == 403  # the same answer whether or not the member exists
    assert (staff.status_code, staff.json()["member_id"]) == (200, "M2")
    assert (anonymous.status_code, anonymous.json()["error"]) == (401, "unauthorized")


def test_an_unknown_member_is_a_404_and_a_merged_one_a_409_naming_the_survivor(store, client):
    store.members["VICTIM"] = member("VICTIM", status="MERGED", merged_into="SURVIVOR")
    unknown = client.get("/v1/members/NOBODY/offers", headers=bearer("NOBODY"))
    merged = client.get("/v1/members/VICTIM/offers", headers=bearer("VICTIM"))
    assert (unknown.status_code, unknown.json()["error"]) == (404, "not_found")
    assert (merged.status_code, merged.json()["error"]) == (409, "member_merged")
    assert "SURVIVOR" in merged.json()["reason"]


# --- HTTP caching --------------------------------------------------------------------------


def test_an_unchanged_feed_is_answered_304_without_a_body(store, client):
    store.items = [item("ONE")]
    for path, headers in (("/v1/offers?market=CA", {}), ("/v1/members/M1/offers", bearer())):
        first = client.get(path, headers=headers)
        etag = first.headers["ETag"]
        again = client.get(path, headers=headers)
        assert again.headers["ETag"] == etag  # the same bytes, the same tag
        for sent in (etag, f"W/{etag}", f'"other", {etag}', "*"):
            revalidated = client.get(path, headers={**headers, "If-None-Match": sent})
            assert revalidated.status_code == 304, sent
            assert revalidated.content == b""
            assert revalidated.headers["ETag"] == etag
            assert revalidated.headers["Cache-Control"] == first.headers["Cache-Control"]
        stale = client.get(path, headers={**headers, "If-None-Match": '"something-else"'})
        assert stale.status_code == 200


def test_a_change_in_the_feed_changes_its_etag(store, client):
    store.items = [item("ONE", behaviours=ACCUMULATE, reward={"kind": "FLAT_POINTS", "points": 5})]
    before = client.get("/v1/members/M1/offers", headers=bearer()).headers["ETag"]
    anonymous = client.get("/v1/offers?market=CA").headers["ETag"]
    store.standings[("M1", "ONE")] = Standing(
        progress_use_number=1, progress=progress(1, ("10.000", "5000.000"))
    )
    after = client.get("/v1/members/M1/offers", headers=bearer())
    assert after.headers["ETag"] != before
    assert client.get("/v1/members/M1/offers", headers={**bearer(), "If-None-Match": before}) \
        .status_code == 200  # fmt: skip
    assert client.get("/v1/offers?market=CA").headers["ETag"] == anonymous  # nothing public


def test_the_anonymous_feed_is_public_for_a_minute_at_most_and_never_past_a_change(store, client):
    store.items = [item("EVERGREEN")]
    assert client.get("/v1/offers?market=CA").headers["Cache-Control"] == "public, max-age=60"
    store.items.append(
        item("ENDS_SOON", schedule=window(-timedelta(days=1), timedelta(seconds=20)))
    )
    assert client.get("/v1/offers?market=CA").headers["Cache-Control"] == "public, max-age=20"
    store.items.append(
        item("SHOWN_SOON", schedule=window(timedelta(days=1), None, display=timedelta(seconds=7)))
    )
    assert client.get("/v1/offers?market=CA").headers["Cache-Control"] == "public, max-age=7"


def test_days_left_ticking_down_bounds_the_public_cache_too(store, client):
    store.items = [
        item("TWO_DAYS", schedule=window(-timedelta(days=1), timedelta(days=2, seconds=30)))
    ]
    assert client.get("/v1/offers?market=CA").headers["Cache-Control"] == "public, max-age=30"


def test_the_member_feed_is_private_and_revalidated(store, client):
    response = client.get("/v1/members/M1/offers", headers=bearer())
    assert response.headers["Cache-Control"] == "private, no-cache"


def test_progress_percent_is_rounded_down_and_capped(store, client):
    store.items = [item("OVER", behaviours=ACCUMULATE)]
    store.standings[("M1", "OVER")] = Standing(
        progress_use_number=2, uses=1, progress=progress(2, ("7500.000", "5000.000"))
    )
    [behaviour] = shown(member_feed(client), "OVER")["behaviours"]
    assert (behaviour["progress"], behaviour["percent"]) == ("7500", 100)
    assert Decimal(behaviour["progress"]) == 7500


@pytest.mark.parametrize("model", [MarketFeed, MemberFeed])
def test_the_documented_examples_are_bodies_the_schema_accepts(model):
    for example in model.model_json_schema()["examples"]:
        model.model_validate(example)


# --- what is built once ------------------------------------------------------------------


def test_a_public_answer_is_reused_while_exact_and_rebuilt_when_an_offer_changes():
    feeds, fragments = MarketFeeds(), Fragments()
    ends = window(-timedelta(days=1), timedelta(days=2, hours=1))
    items = [item("TWO_DAYS", schedule=ends)]

    first = feeds.answer(items, "CA", "en", AT, fragments)
    later = feeds.answer(items, "CA", "en", AT + timedelta(minutes=59), fragments)
    ticked = feeds.answer(items, "CA", "en", AT + timedelta(hours=1), fragments)
    republished = feeds.answer([item("TWO_DAYS", schedule=ends, rank=1)], "CA", "en",
                               AT + timedelta(minutes=59), fragments)  # fmt: skip

    assert later is first  # the same bytes and ETag, not built again
    assert first.until == AT + timedelta(hours=1)  # when days_left goes from 3 to 2
    assert b'"days_left":3' in first.body
    assert b'"days_left":2' in ticked.body
    assert republished.etag != first.etag  # another digest: another answer
    assert b'"rank":1' in republished.body


def test_an_offers_fixed_json_is_encoded_once_per_version_and_language():
    fragments = Fragments()
    bilingual = item("BILINGUAL", localized_copy=BILINGUAL)
    english = fragments.head(bilingual, "en-GB")
    assert fragments.head(bilingual, "en") is english  # en-GB and en show the same copy
    assert fragments.head(bilingual, "fr") != english
    changed = item("BILINGUAL", localized_copy=BILINGUAL, rank=2)
    assert '"rank":2' in fragments.head(changed, "en")


def test_the_markets_answer_is_served_without_a_look_until_its_market_is_notified():
    feeds, fragments = MarketFeeds(), Fragments()
    items = [item("MASS_ONE")]
    made = feeds.answer(items, "CA", "en", AT, fragments, seen=feeds.generation("CA"))
    soon = AT + timedelta(milliseconds=500)

    assert feeds.current("CA", "en", soon) is made
    assert feeds.current("CA", "fr", soon) is None  # never built in French
    feeds.changed("feed:US")  # another market's offers
    assert feeds.current("CA", "en", soon) is made
    feeds.changed("feed:CA")
    assert feeds.current("CA", "en", soon) is None


def test_an_answer_built_from_rows_read_before_a_notification_is_not_current():
    feeds, fragments = MarketFeeds(), Fragments()
    seen = feeds.generation("CA")  # read before the query ...
    feeds.changed("feed:CA")  # ... the projector commits while it runs ...
    feeds.answer([item("MASS_ONE")], "CA", "en", AT, fragments, seen=seen)
    assert feeds.current("CA", "en", AT) is None  # ... so the next request looks again


@pytest.mark.parametrize("key", [None, MarketFeeds.EVERY_MARKET])
def test_a_lost_or_new_listener_or_a_rebuild_forgets_every_current_answer(key):
    feeds, fragments = MarketFeeds(), Fragments()
    for market in ("CA", "US"):
        feeds.answer([item("MASS_ONE")], market, "en", AT, fragments, seen=feeds.generation(market))
    feeds.changed(key)
    assert feeds.current("CA", "en", AT) is None
    assert feeds.current("US", "en", AT) is None


def test_a_current_answer_is_trusted_for_a_moment_and_never_past_its_change():
    feeds, fragments = MarketFeeds(), Fragments()
    ends = window(-timedelta(days=1), timedelta(milliseconds=300))
    made = feeds.answer([item("ENDING", schedule=ends)], "CA", "en", AT, fragments,
                        seen=feeds.generation("CA"))  # fmt: skip
    assert feeds.current("CA", "en", AT + timedelta(milliseconds=200)) is made
    # the offer ends (the answer's own end of exactness) before the second is over
    assert feeds.current("CA", "en", AT + timedelta(milliseconds=300)) is None
    again = feeds.answer([item("MASS_ONE")], "CA", "fr", AT, fragments,
                         seen=feeds.generation("CA"))  # fmt: skip
    assert feeds.current("CA", "fr", AT + MarketFeeds.FOLLOWED_AT_MOST) is None
    assert feeds.current("CA", "fr", AT) is again


def test_an_offer_the_member_has_no_standing_on_is_built_once_for_everyone_that_day():
    fragments = Fragments()
    mass = item("MASS_ONE", behaviours=ACCUMULATE, schedule=window(-timedelta(days=1),
                                                                   timedelta(days=3)))  # fmt: skip
    first = offer_json(mass, AT, "en", None, personal=True, fragments=fragments)

    assert offer_json(mass, AT + timedelta(hours=1), "en", None, personal=True,
                      fragments=fragments) is first  # fmt: skip
    # A standing with nothing in it shows the same bytes, built the long way.
    assert offer_json(mass, AT, "en", targeted(), personal=True, fragments=fragments) == first
    assert '"progress":"0"' in first
    assert '"usage":{' in first
    assert offer_json(mass, AT, "en", None, personal=False, fragments=fragments) != first
    next_day = offer_json(mass, AT + timedelta(days=1), "en", None, personal=True,
                          fragments=fragments)  # fmt: skip
    assert '"days_left":3' in first
    assert '"days_left":2' in next_day
