"""The offer feed projection before any database: what an offer becomes in `offer_feed_items`
and what a batch asks of `member_offer_standings` (the statements run on real Postgres in
tests/integration/test_offer_feed_projection.py)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from processors.contract.config import OfferEndDateExtended, OfferPublished, OfferWithdrawn
from processors.contract.offers import (
    BehaviourProgress,
    OfferCompleted,
    OfferLoaded,
    OfferProgressed,
    OfferTargeted,
    ProgressMetric,
)
from projections.writers import feed, offers, performance
from tests.cart_given import AT, offer


def published(offer_id: str, **definition) -> OfferPublished:
    """A live MASS offer, automatic: 100 points for 20.00 in one purchase (JSON form fields
    overridden)."""
    once = {"kind": "SPEND", "spend_min_cents": 2000, "accumulation": "SINGLE_TRANSACTION"}
    given = {"behaviours": [once], "reward": {"kind": "FLAT_POINTS", "points": 100}}
    event = offer(offer_id, **{**given, **definition})
    assert isinstance(event, OfferPublished)
    return event


def copy(locale: str, headline: str) -> dict:
    return {"locale": locale, "headline": headline, "short_description": f"{headline}."}


def targeted(member: str, offer_id: str, event_id: str, *, at=AT, control=False) -> OfferTargeted:
    return OfferTargeted(event_id=event_id, occurred_at=at, member_id=member, offer_id=offer_id,
                         in_control_group=control, cause_event_id="cause")  # fmt: skip


def loaded(member: str, offer_id: str, event_id: str, *, at=AT) -> OfferLoaded:
    return OfferLoaded(event_id=event_id, occurred_at=at, member_id=member, offer_id=offer_id,
                       cause_event_id="load")  # fmt: skip


def progressed(member: str, offer_id: str) -> OfferProgressed:
    step = BehaviourProgress(behaviour_index=0, metric=ProgressMetric.COUNT,
                             progress=Decimal(1), threshold=Decimal(3))  # fmt: skip
    return OfferProgressed(event_id=f"p-{member}", occurred_at=AT, member_id=member,
                           offer_id=offer_id, in_control_group=False, cause_event_id="tx",
                           use_number=1, progress=[step])  # fmt: skip


def completed(member: str, offer_id: str) -> OfferCompleted:
    return OfferCompleted(
        event_id=f"c-{member}", occurred_at=AT, member_id=member, offer_id=offer_id,
        in_control_group=False, cause_event_id="tx", use_number=1, program_id="MAIN",
        points_due=5, points_awarded=5,
    )  # fmt: skip


# --- items ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("targeting", "audience"),
    [
        ({"kind": "MASS", "timing": "STATIC"}, "MASS"),
        ({"kind": "MASS", "timing": "DYNAMIC"}, "MASS"),
        ({"kind": "MASS", "timing": "DELAYED_STATIC",
          "targeting_at": (AT - timedelta(days=2)).isoformat()}, "MASS"),
        ({"kind": "AUDIENCE_LIST", "timing": "STATIC", "audience_id": "A"}, "TARGETED"),
        ({"kind": "CRITERIA", "timing": "DYNAMIC",
          "criteria": [{"attribute": "PROVINCE", "values": ["QC"]}]}, "TARGETED"),
        ({"kind": "MASS", "timing": "TRIGGERED", "trigger_activity_kind": "FIRST_LOGIN",
          "trigger_fires_per_member_max": 1}, "TRIGGERED"),
        ({"kind": "UNKNOWN", "timing": "STATIC"}, "NONE"),
        ({"kind": "MASS", "timing": "UNKNOWN"}, "NONE"),
    ],
)  # fmt: skip
def test_an_offers_audience_is_who_the_rules_target(targeting, audience):
    offer = published("WHO", targeting=targeting)
    assert (
        feed.item_of(offer, ends_at=offer.schedule.ends_at, withdrawn_at=None).audience == audience
    )


def test_an_item_holds_copy_by_locale_and_the_reward_and_behaviours_without_product_lists():
    skus = {"skus": ["A", "B"]}
    offer = published(
        "ITEM",
        rank=2,
        localized_copy=[copy("en", "Two for one"), copy("fr", "Deux pour un")],
        activation={"kind": "COUPON_CODE", "coupon_code": "TWO4ONE"},
        behaviours=[{"kind": "QUANTITY", "quantity_min": "2.500", "products": skus,
                     "accumulation": "ACCUMULATED", "window_days": 30}],
        reward={"kind": "DISCOUNT", "discount": {"kind": "FREE_ITEM", "free_units": 1,
                                                 "products": skus}},
        usage={"uses_per_member_max": 2, "points_per_member_max": None},
    )  # fmt: skip

    item = feed.item_of(offer, ends_at=offer.schedule.ends_at, withdrawn_at=None)

    assert (item.rank, item.activation, item.coupon_code, item.uses_per_member_max) == (
        2,
        "COUPON_CODE",
        "TWO4ONE",
        2,
    )
    assert item.copy["fr"]["headline"] == "Deux pour un"
    assert set(item.copy) == {"en", "fr"}
    assert "products" not in item.details["reward"]["discount"]
    assert item.details["behaviours"] == [
        {"behaviour_index": 0, "kind": "QUANTITY", "metric": "QUANTITY", "threshold": "2.5",
         "is_accumulated": True, "window_days": 30},
    ]  # fmt: skip
    assert not item.in_reward_store


def test_an_items_digest_changes_with_what_is_shown_and_only_then():
    offer = published("DIGEST")
    base = feed.item_of(offer, ends_at=offer.schedule.ends_at, withdrawn_at=None)
    same = feed.item_of(offer, ends_at=offer.schedule.ends_at, withdrawn_at=None)
    withdrawn = feed.item_of(offer, ends_at=offer.schedule.ends_at, withdrawn_at=AT)
    extended = feed.item_of(offer, ends_at=AT + timedelta(days=400), withdrawn_at=None)
    reranked = published("DIGEST", rank=1)
    assert base.digest == same.digest
    assert len({base.digest, withdrawn.digest, extended.digest,
                feed.item_of(reranked, ends_at=offer.schedule.ends_at,
                             withdrawn_at=None).digest}) == 4  # fmt: skip


@pytest.mark.parametrize(
    ("value", "text"),
    [(Decimal("5000.000"), "5000"), (Decimal("2.500"), "2.5"), (Decimal("0.000"), "0"),
     (Decimal("5E+3"), "5000"), (Decimal("0.125"), "0.125")],
)  # fmt: skip
def test_numbers_are_written_without_exponent_or_trailing_zeros(value, text):
    assert feed.number_text(value) == text


# --- what a batch asks -----------------------------------------------------------------------


def test_config_events_name_the_offers_to_render_once_each_in_first_seen_order():
    extended = OfferEndDateExtended(event_id="x", occurred_at=AT, offer_id="B_OFFER",
                                    ends_at=AT + timedelta(days=9), requested_by="ops")  # fmt: skip
    withdrawn = OfferWithdrawn(event_id="w", occurred_at=AT, offer_id="A_OFFER", requested_by="o")
    rows = feed.rows_of([published("B_OFFER"), withdrawn, extended, published("A_OFFER")])
    assert rows.offers == ["B_OFFER", "A_OFFER"]


def test_targetings_keep_each_event_once_the_first_group_and_the_span():
    later = AT + timedelta(days=3)
    rows = feed.rows_of([
        targeted("M1", "TRIG", "t2", at=later),
        targeted("M1", "TRIG", "t1"),
        targeted("M1", "TRIG", "t2", at=later),  # the same targeting, delivered twice
        targeted("M2", "TRIG", "t9", control=True),
    ])  # fmt: skip
    assert rows.targetings == {
        ("M1", "TRIG"): (False, AT, later, ["t1", "t2"]),
        ("M2", "TRIG"): (True, AT, AT, ["t9"]),
    }


def test_the_earliest_load_holds_and_progress_and_completions_are_copied_once_a_pair():
    rows = feed.rows_of([
        loaded("M1", "LTC", "l2", at=AT + timedelta(hours=1)),
        loaded("M1", "LTC", "l1"),
        progressed("M1", "ACC"),
        completed("M1", "ACC"),
        completed("M2", "ACC"),
    ])  # fmt: skip
    assert rows.loads == {("M1", "LTC"): AT}
    assert rows.copied == [("M1", "ACC"), ("M2", "ACC")]


def test_the_feed_takes_the_offer_events_the_other_writers_take_and_the_loads_they_pass_over():
    assert {OfferCompleted, OfferProgressed} <= set(feed.EVENTS)  # the offers writer's too
    assert {OfferTargeted, OfferEndDateExtended, OfferWithdrawn} <= set(performance.EVENTS)
    assert OfferLoaded in offers.PASSED_OVER
    assert OfferLoaded in feed.EVENTS
    assert set(feed.TABLES) == {"offer_feed_items", "member_offer_standings"}
