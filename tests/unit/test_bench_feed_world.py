"""The offer feed benchmark's world is the same every run and shaped as its docstring says
(`loyalty/bench/feed_world.py`); the run itself is `loyalty bench-feed`, never a test."""

from collections import Counter

from loyalty.bench.feed_world import MARKETS, build_world
from processors.contract.offers import OfferTargeted
from projections.writers.feed import audience_of


def test_the_world_is_the_same_for_the_same_seed():
    first = build_world(offers_count=60, members_count=300)
    again = build_world(offers_count=60, members_count=300)
    assert [e.event_id for e in first.offer_events] == [e.event_id for e in again.offer_events]
    assert [o.offer_id for o in first.offers] == [o.offer_id for o in again.offers]


def test_every_market_has_members_and_most_offers_are_for_lists():
    world = build_world(offers_count=500, members_count=2000)
    assert set(world.by_market) == set(MARKETS)
    assert all(world.by_market[market] for market in MARKETS)
    audiences = Counter(audience_of(offer.targeting) for offer in world.offers)
    assert audiences["TARGETED"] > audiences["MASS"] > audiences["TRIGGERED"] > 0
    targeted = [e for e in world.offer_events if isinstance(e, OfferTargeted)]
    assert {e.member_id for e in targeted} <= {e.member_id for e in world.enrolments}
