"""The offer feed benchmark's world: markets, offers, members and what the engine said about
them, deterministic from a seed, written into a fresh database by the projection's own writers
in the order `projections.projection.apply` runs them (so the tables are what the projector
would have written, without replaying a million events through Kafka).

The mix (500 offers, 100,000 members by default): three markets (CA 60 %, US 30 %, FR 10 %),
one programme each. An offer is MASS (15 %: every member of its programme, some to load to
card, some with a coupon), for an uploaded list (75 %: 4 % of its market's members each, 10 %
of them held out as control), TRIGGERED (5 %: fired for 2 % of the members) or DYNAMIC on
criteria (5 %: 2 % qualified so far). 80 % are displayable at the run's time, 10 % are
displayed later, 10 % have ended. Copy in English and French with a long description and
terms, as published offers have. A third of the members have progress towards two offers, a
tenth a completed use, loads where the offer asks for one.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from processors.codec.json_form import from_json_object
from processors.contract.base import Event
from processors.contract.common import Source
from processors.contract.config import OfferPublished
from processors.contract.enrolments import MemberEnrolled, MemberProfile
from processors.contract.offers import (
    BehaviourProgress,
    OfferCompleted,
    OfferLoaded,
    OfferProgressed,
    OfferTargeted,
    ProgressMetric,
)
from projections.writers import feed, members, offers, performance

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
"""The business time the world is built around by default (the run passes its own now)."""
MARKETS = {"CA": 6, "US": 3, "FR": 1}
LIST_SHARE, CONTROL_SHARE, FIRED_SHARE = 0.04, 10, 0.02
BATCH = 20_000

_LONG = (
    "Earn bonus points on your favourite products this week. Points are credited to your "
    "account within 48 hours of the qualifying purchase and can be redeemed for rewards in "
    "store and online. "
)
_TERMS = (
    "Offer valid for loyalty members only, while the offer is displayed in the app. Bonus "
    "points exclude taxes, deposits, gift cards and lottery. Limit as stated per member. "
    "Points may be reversed if products are returned. Cannot be combined with other offers "
    "in the same group. Subject to change without notice. "
)


def program_id(market: str) -> str:
    return f"{market}_MAIN"


def member_id(n: int) -> str:
    return f"FM{n:06d}"


@dataclass
class FeedWorld:
    """What the run reads: the config events, the members by market, and the engine's events."""

    config: list[Event]
    enrolments: list[MemberEnrolled]
    by_market: dict[str, list[str]] = field(default_factory=dict)
    offer_events: list[Event] = field(default_factory=list)

    @property
    def offers(self) -> list[OfferPublished]:
        return [e for e in self.config if isinstance(e, OfferPublished)]


def programs(now: datetime = NOW) -> list[Event]:
    return [
        from_json_object(
            {
                "type": "ProgramConfigured",
                "event_id": f"feed-program-{market}",
                "occurred_at": (now - timedelta(days=400)).isoformat(),
                "program_id": program_id(market),
                "name": f"{market} rewards",
                "market": market,
                "currency": "CAD",
                "time_zone": "UTC",
                "categories": ["REGULAR"],
                "points_per_currency_unit": "1",
                "expiry": {"kind": "NONE"},
            }
        )
        for market in MARKETS
    ]


def _copy(n: int, locale: str) -> dict[str, Any]:
    word = "Offre" if locale == "fr" else "Offer"
    return {
        "locale": locale,
        "headline": f"{word} {n}: 500 bonus points",
        "short_description": f"{word} {n}. Spend on the selected products and earn bonus points.",
        "long_description": _LONG * 2,
        "terms": _TERMS * 2,
        "image_url": f"https://images.example.com/offers/{n}.png",
    }


def _offer(rng: random.Random, n: int, now: datetime) -> tuple[OfferPublished, str]:
    market = rng.choices(list(MARKETS), weights=list(MARKETS.values()))[0]
    pick = rng.random()
    audience = (
        "MASS" if pick < 0.15 else "LIST" if pick < 0.90 else "TRIGGERED" if pick < 0.95
        else "DYNAMIC"
    )  # fmt: skip
    targetings: dict[str, dict[str, Any]] = {
        "MASS": {"kind": "MASS", "timing": "STATIC"},
        "LIST": {"kind": "AUDIENCE_LIST", "timing": "STATIC", "audience_id": f"LIST_{n}",
                 "control_share_percent": CONTROL_SHARE},
        "TRIGGERED": {"kind": "MASS", "timing": "TRIGGERED", "trigger_activity_kind": "LOGIN",
                      "trigger_fires_per_member_max": 3, "trigger_valid_days": 14},
        "DYNAMIC": {"kind": "CRITERIA", "timing": "DYNAMIC",
                    "criteria": [{"attribute": "SPEND_CENTS", "lookback_days": 30,
                                  "min_value": 10_000}]},
    }  # fmt: skip
    targeting = targetings[audience]
    when = rng.random()
    starts = now - timedelta(days=rng.randint(1, 30))
    ends: datetime | None = now + timedelta(days=rng.randint(1, 60))
    if when < 0.8:
        ends = ends if rng.random() < 0.8 else None
    elif when < 0.9:
        starts, ends = now + timedelta(days=rng.randint(2, 20)), None
    else:
        starts, ends = now - timedelta(days=60), now - timedelta(days=rng.randint(1, 20))
    accumulated = rng.random() < 0.5
    behaviour = (
        {"kind": "SPEND", "spend_min_cents": rng.choice([2500, 5000, 10000]),
         "accumulation": "ACCUMULATED" if accumulated else "SINGLE_TRANSACTION",
         "products": {"categories": [f"C{rng.randrange(60):02d}"]}}
        if rng.random() < 0.8 else {"kind": "VISITS", "count_min": rng.choice([3, 5])}
    )  # fmt: skip
    body: dict[str, Any] = {
        "type": "OfferPublished",
        "event_id": f"feed-offer-{n}",
        "occurred_at": (now - timedelta(days=90)).isoformat(),
        "offer_id": f"FEED_{n:04d}",
        "program_id": program_id(market),
        "market": market,
        "localized_copy": [_copy(n, "en"), _copy(n, "fr")],
        "rank": rng.randint(1, 9),
        "schedule": {
            "starts_at": starts.isoformat(),
            "ends_at": ends.isoformat() if ends else None,
            "display_at": (starts - timedelta(days=rng.choice([0, 0, 3]))).isoformat(),
        },
        "targeting": targeting,
        "activation": {"kind": "AUTOMATIC"},
        "behaviours": [behaviour],
        "reward": {"kind": "FLAT_POINTS", "points": rng.choice([100, 250, 500])},
        "usage": {"uses_per_member_max": rng.choice([None, 1, 3]),
                  "points_per_member_max": rng.choice([None, 2000])},
    }  # fmt: skip
    if audience == "MASS" and rng.random() < 0.3:
        body["activation"] = {"kind": "LOAD_TO_CARD"}
    elif audience == "MASS" and rng.random() < 0.1:
        body["activation"] = {"kind": "COUPON_CODE", "coupon_code": f"FEED{n:04d}"}
    event = from_json_object(body)
    assert isinstance(event, OfferPublished)
    return event, audience


def _enrolment(n: int, market: str, now: datetime) -> MemberEnrolled:
    return MemberEnrolled(
        event_id=f"feed-enrol-{n}", occurred_at=now - timedelta(days=200),
        member_id=member_id(n), market=market, program_ids=[program_id(market)],
        source=Source.APP, profile=MemberProfile(first_name=f"Member {n}"),
    )  # fmt: skip


def build_world(
    *, offers_count: int, members_count: int, now: datetime = NOW, seed: int = 14
) -> FeedWorld:
    """The offers, the members and the engine's events about them, around `now` (see the
    module)."""
    rng = random.Random(seed)
    drawn = [_offer(rng, n, now) for n in range(offers_count)]
    world = FeedWorld(config=[*programs(now), *(offer for offer, _ in drawn)], enrolments=[])
    world.by_market = {market: [] for market in MARKETS}
    for n in range(members_count):
        market = rng.choices(list(MARKETS), weights=list(MARKETS.values()))[0]
        world.by_market[market].append(member_id(n))
        world.enrolments.append(_enrolment(n, market, now))
    events = world.offer_events
    at = now - timedelta(days=1)
    for offer, audience in drawn:
        audience_of = world.by_market[offer.market]
        share = {"LIST": LIST_SHARE, "TRIGGERED": FIRED_SHARE, "DYNAMIC": FIRED_SHARE}.get(audience)
        if share is None:
            continue
        for member in rng.sample(audience_of, int(len(audience_of) * share)):
            events.append(OfferTargeted.model_construct(
                event_id=f"feed-tgt-{offer.offer_id}-{member}", occurred_at=at, member_id=member,
                offer_id=offer.offer_id, in_control_group=rng.random() < CONTROL_SHARE / 100,
                cause_event_id=offer.event_id,
            ))  # fmt: skip
    mass = {
        market: [o for o, a in drawn if a == "MASS" and o.market == market] for market in MARKETS
    }
    for market, ids in world.by_market.items():
        if not mass[market]:
            continue
        for member in ids[::3]:
            for offer in rng.sample(mass[market], min(2, len(mass[market]))):
                events += _history(rng, member, offer, at)
    return world


def _history(rng: random.Random, member: str, offer: OfferPublished, at: datetime) -> list[Event]:
    out: list[Event] = []
    if offer.activation.kind.value == "LOAD_TO_CARD":
        out.append(OfferLoaded.model_construct(
            event_id=f"feed-load-{offer.offer_id}-{member}", occurred_at=at - timedelta(hours=1),
            member_id=member, offer_id=offer.offer_id, cause_event_id="load", command_id=None,
            issued_offer_id=None, reward_store_id=None, points_spent=0,
        ))  # fmt: skip
    threshold = Decimal(offer.behaviours[0].threshold or 1)
    uses = 1 if rng.random() < 0.3 else 0
    if uses:
        out.append(OfferCompleted.model_construct(
            event_id=f"feed-done-{offer.offer_id}-{member}", occurred_at=at, member_id=member,
            offer_id=offer.offer_id, in_control_group=False, cause_event_id="tx", use_number=1,
            program_id=offer.program_id, points_due=100, points_awarded=100, multiples=1,
            tier=None, transaction_id=None, discount_cents=0,
        ))  # fmt: skip
    metric = ProgressMetric.COUNT if offer.behaviours[0].kind.value == "VISITS" else (
        ProgressMetric.SPEND_CENTS)  # fmt: skip
    done = (threshold * Decimal(rng.randint(1, 9)) / 10).quantize(Decimal("0.001"))
    out.append(OfferProgressed.model_construct(
        event_id=f"feed-prog-{offer.offer_id}-{member}", occurred_at=at + timedelta(hours=1),
        member_id=member, offer_id=offer.offer_id, in_control_group=False, cause_event_id="tx2",
        transaction_id=None, use_number=uses + 1,
        progress=[BehaviourProgress(behaviour_index=0, metric=metric, progress=done,
                                    threshold=threshold)],
    ))  # fmt: skip
    return out


def _chunks(events: Sequence[Event], size: int) -> Iterator[Sequence[Event]]:
    for first in range(0, len(events), size):
        yield events[first : first + size]


def write_world(dsn: str, world: FeedWorld) -> None:
    """Write the world as the projector would: each writer in `apply`'s order, in batches,
    each batch one transaction."""
    with psycopg.connect(dsn) as conn:
        with conn.transaction():
            performance.write(conn, world.config)  # type: ignore[arg-type]
            feed.write(conn, world.offers)
        for chunk in _chunks(world.enrolments, BATCH):
            with conn.transaction():
                members.open_enrolled(conn, chunk)  # type: ignore[arg-type]
        for chunk in _chunks(world.offer_events, BATCH):
            with conn.transaction():
                done = [e for e in chunk if isinstance(e, OfferCompleted | OfferProgressed)]
                offers.write(conn, done)
                performance.write(conn, [e for e in chunk if isinstance(e, OfferTargeted)])
                feed.write(conn, chunk)  # type: ignore[arg-type]
        conn.execute("ANALYZE")
