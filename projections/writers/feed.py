"""The offer feed projection: what the offer feeds show (docs/adr/0025-offer-feeds.md).

Owns `offer_feed_items` (one row per published offer, rendered for the feed) and
`member_offer_standings` (one row per member and offer the member has a standing on). Fed by
`OfferPublished`, `OfferEndDateExtended`, `OfferWithdrawn` and `OfferClosed`
(loyalty.config.v1) and by `OfferTargeted`, `OfferLoaded`, `OfferProgressed` and
`OfferCompleted` (loyalty.offers.v1).

It decides nothing the other writers decide, and so runs after them in the batch's
transaction (`projections.projection.apply`):
- an item is rendered from the `offers` row the performance writer's fold left (publication,
  extensions judged by the rules, withdrawal, closing), never from the config events
  themselves;
- a standing's uses, points and progress are copied from `member_offer_uses` and
  `member_offer_progress`, which the offers writer keeps (completions counted once, progress
  moving only forward);
- what only the feed needs is its own: targetings kept by event id (a TRIGGERED offer is
  targeted once per fire), and the first load to card.

Idempotent and independent of batch boundaries: an item is rewritten whole from its catalogue
row; a targeting already known by its id, or a load later than the one held, changes
nothing; a copy rewrites the same values. It never commits (the caller's transaction holds
the checkpoints) and never reads the clock: whether an offer is displayable is decided when
the feed is read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import cached_property
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from processors.codec.json_form import from_json_object
from processors.contract.config import (
    OfferClosed,
    OfferEndDateExtended,
    OfferPublished,
    OfferWithdrawn,
)
from processors.contract.offer_definition import (
    Behaviour,
    BehaviourKind,
    CopyLocale,
    OfferTargeting,
    TargetingKind,
    TargetingTiming,
)
from processors.contract.offers import (
    OfferCompleted,
    OfferLoaded,
    OfferProgressed,
    OfferTargeted,
    ProgressMetric,
)
from processors.rules.offers.progress import is_accumulated, threshold

TABLES = ("offer_feed_items", "member_offer_standings")

FeedEvent = (
    OfferPublished | OfferEndDateExtended | OfferWithdrawn | OfferClosed
    | OfferTargeted | OfferLoaded | OfferProgressed | OfferCompleted
)  # fmt: skip

EVENTS = (
    OfferPublished,
    OfferEndDateExtended,
    OfferWithdrawn,
    OfferClosed,
    OfferTargeted,
    OfferLoaded,
    OfferProgressed,
    OfferCompleted,
)
"""What this projection writes (each is also written, or passed over, by another writer)."""

METRICS = {
    BehaviourKind.SPEND: ProgressMetric.SPEND_CENTS,
    BehaviourKind.QUANTITY: ProgressMetric.QUANTITY,
    BehaviourKind.POINTS_REDEMPTION: ProgressMetric.POINTS_REDEEMED,
    BehaviourKind.VISITS: ProgressMetric.COUNT,
    BehaviourKind.ACTIVITY: ProgressMetric.COUNT,
}
"""What a behaviour's progress counts, as `OfferProgressed` names it."""

_DECIDED_TIMINGS = (TargetingTiming.STATIC, TargetingTiming.DELAYED_STATIC, TargetingTiming.DYNAMIC)


def audience_of(targeting: OfferTargeting) -> str:
    """Who sees the offer, as the rules target it (`processors.rules.offers.targeting.status`):
    TRIGGERED (whatever the kind: a fire targets the member), MASS (every member of the
    programme, no decision recorded), TARGETED (members with an OfferTargeted), or NONE (a
    kind or timing this version does not know: never shown, never generous)."""
    if targeting.timing is TargetingTiming.TRIGGERED:
        return "TRIGGERED"
    if targeting.timing not in _DECIDED_TIMINGS:
        return "NONE"
    if targeting.kind is TargetingKind.MASS:
        return "MASS"
    if targeting.kind in (TargetingKind.AUDIENCE_LIST, TargetingKind.CRITERIA):
        return "TARGETED"
    return "NONE"


def number_text(value: Decimal) -> str:
    """A decimal as the feed writes it: no exponent, no trailing zeros ("5000", "2.5")."""
    text = format(value.normalize(), "f")
    return text if "." not in text else text.rstrip("0").rstrip(".")


def _without_products(value: Any) -> Any:
    # Product selections can list thousands of SKUs: the copy describes them to a person.
    if isinstance(value, dict):
        return {k: _without_products(v) for k, v in value.items() if k != "products"}
    if isinstance(value, list):
        return [_without_products(v) for v in value]
    return value


def _behaviour(index: int, behaviour: Behaviour) -> dict[str, Any]:
    needed = threshold(behaviour)
    metric = METRICS.get(behaviour.kind, ProgressMetric.UNKNOWN)
    return {
        "behaviour_index": index,
        "kind": behaviour.kind.value,
        "metric": metric.value,
        "threshold": number_text(needed) if needed is not None else None,
        "is_accumulated": is_accumulated(behaviour),
        "window_days": behaviour.window_days,
    }


@dataclass(frozen=True)
class FeedItem:
    """An `offer_feed_items` row: what this writer renders and the API reads (the one
    definition of an item; `visible_until` is computed from it, as Postgres computes the
    column of that name the feeds' queries filter on)."""

    offer_id: str
    program_id: str
    market: str
    rank: int
    display_at: datetime
    starts_at: datetime
    ends_at: datetime
    withdrawn_at: datetime | None
    audience: str
    control_share_percent: int
    trigger_valid_days: int | None
    activation: str
    coupon_code: str | None
    in_reward_store: bool
    uses_per_member_max: int | None
    points_per_member_max: int | None
    copy: dict[str, dict[str, Any]]
    details: dict[str, Any]
    published_event_id: str
    closed_at: datetime | None = None
    digest: str = field(default="")

    @cached_property
    def visible_until(self) -> datetime:
        """The end of the display: the end after accepted extensions, the withdrawal, or the
        engine's closing, whichever comes first (migration 0016's generated column)."""
        return min(t for t in (self.ends_at, self.withdrawn_at, self.closed_at) if t is not None)


def item_of(
    offer: OfferPublished,
    *,
    ends_at: datetime,
    withdrawn_at: datetime | None,
    closed_at: datetime | None = None,
) -> FeedItem:
    """The feed's row of an offer, from its catalogue row: the definition in force, its end
    after accepted extensions, its withdrawal, its closing by the engine. Pure."""
    targeting, usage = offer.targeting, offer.usage
    copy = {
        c.locale.value: c.model_dump(mode="json", exclude={"locale"})
        for c in offer.localized_copy
        if c.locale is not CopyLocale.UNKNOWN
    }
    details = {
        "reward": _without_products(offer.reward.model_dump(mode="json")),
        "behaviour_operator": offer.behaviour_operator.value,
        "behaviours": [_behaviour(i, b) for i, b in enumerate(offer.behaviours)],
    }
    item = FeedItem(
        offer_id=offer.offer_id,
        program_id=offer.program_id,
        market=offer.market,
        rank=offer.rank,
        display_at=offer.schedule.display_at,
        starts_at=offer.schedule.starts_at,
        ends_at=ends_at,
        withdrawn_at=withdrawn_at,
        closed_at=closed_at,
        audience=audience_of(targeting),
        control_share_percent=targeting.control_share_percent,
        trigger_valid_days=targeting.trigger_valid_days,
        activation=offer.activation.kind.value,
        coupon_code=offer.activation.coupon_code,
        in_reward_store=offer.reward_store is not None,
        uses_per_member_max=usage.uses_per_member_max,
        points_per_member_max=usage.points_per_member_max,
        copy=copy,
        details=details,
        published_event_id=offer.event_id,
    )
    shown = json.dumps(asdict(item), sort_keys=True, default=str, separators=(",", ":"))
    return FeedItem(**{**asdict(item), "digest": hashlib.sha256(shown.encode()).hexdigest()})


@dataclass
class FeedRows:
    """What a batch of events asks of the feed tables, before any is written."""

    offers: list[str] = field(default_factory=list)
    """Offers whose catalogue row may have changed, in first-seen order, once each."""
    targetings: dict[tuple[str, str], tuple[bool, datetime, datetime, list[str]]] = field(
        default_factory=dict
    )
    """(member, offer) → (control, first at, last at, sorted distinct targeting event ids)."""
    loads: dict[tuple[str, str], datetime] = field(default_factory=dict)
    """(member, offer) → the earliest load of the batch."""
    copied: list[tuple[str, str]] = field(default_factory=list)
    """(member, offer) pairs whose uses and progress the offers writer may have changed."""


def rows_of(events: Iterable[FeedEvent]) -> FeedRows:
    """Map events (in log order) to what the feed tables need. Pure.

    Per (member, offer): the first targeting of the log gives the group (it is sticky: a hash
    of the pair), the targetings' ids are kept once each, and the earliest load holds.
    """
    rows = FeedRows()
    offers: dict[str, None] = {}
    copied: dict[tuple[str, str], None] = {}
    for event in events:
        if isinstance(event, OfferPublished | OfferEndDateExtended | OfferWithdrawn | OfferClosed):
            offers.setdefault(event.offer_id)
        elif isinstance(event, OfferTargeted):
            key = (event.member_id, event.offer_id)
            at = event.occurred_at
            known = rows.targetings.get(key)
            if known is None:
                rows.targetings[key] = (event.in_control_group, at, at, [event.event_id])
            else:
                control, first, last, ids = known
                merged = sorted({*ids, event.event_id})
                rows.targetings[key] = (control, min(first, at), max(last, at), merged)
        elif isinstance(event, OfferLoaded):
            key = (event.member_id, event.offer_id)
            earlier = rows.loads.get(key)
            rows.loads[key] = (
                event.occurred_at if earlier is None else min(earlier, event.occurred_at)
            )
        else:
            copied.setdefault((event.member_id, event.offer_id))
    rows.offers = list(offers)
    rows.copied = list(copied)
    return rows


_ITEM = """
INSERT INTO offer_feed_items AS current (offer_id, program_id, market, rank, display_at,
    starts_at, ends_at, withdrawn_at, closed_at, audience, control_share_percent,
    trigger_valid_days, activation, coupon_code, in_reward_store, uses_per_member_max,
    points_per_member_max, copy, details, published_event_id, digest)
VALUES (%(offer_id)s, %(program_id)s, %(market)s, %(rank)s, %(display_at)s, %(starts_at)s,
    %(ends_at)s, %(withdrawn_at)s, %(closed_at)s, %(audience)s, %(control_share_percent)s,
    %(trigger_valid_days)s, %(activation)s, %(coupon_code)s, %(in_reward_store)s,
    %(uses_per_member_max)s, %(points_per_member_max)s, %(copy)s, %(details)s,
    %(published_event_id)s, %(digest)s)
ON CONFLICT (offer_id) DO UPDATE
    SET program_id = excluded.program_id, market = excluded.market, rank = excluded.rank,
        display_at = excluded.display_at, starts_at = excluded.starts_at,
        ends_at = excluded.ends_at, withdrawn_at = excluded.withdrawn_at,
        closed_at = excluded.closed_at, audience = excluded.audience,
        control_share_percent = excluded.control_share_percent,
        trigger_valid_days = excluded.trigger_valid_days, activation = excluded.activation,
        coupon_code = excluded.coupon_code, in_reward_store = excluded.in_reward_store,
        uses_per_member_max = excluded.uses_per_member_max,
        points_per_member_max = excluded.points_per_member_max, copy = excluded.copy,
        details = excluded.details, published_event_id = excluded.published_event_id,
        digest = excluded.digest
    WHERE current.digest <> excluded.digest
"""

# A targeting whose ids are all known already (a redelivery) changes nothing; least/greatest
# ignore the nulls of a row that so far only had progress. Event ids are printable ASCII, so
# each row's ids travel joined by a unit separator.
_TARGETED = """
INSERT INTO member_offer_standings AS s (member_id, offer_id, in_control_group, targeted_at,
    last_targeted_at, targeting_event_ids)
SELECT member_id, offer_id, in_control_group, targeted_at, last_targeted_at,
    string_to_array(ids, E'\\x1f')
FROM unnest(%s::text[], %s::text[], %s::bool[], %s::timestamptz[], %s::timestamptz[],
    %s::text[]) AS t (member_id, offer_id, in_control_group, targeted_at, last_targeted_at, ids)
ON CONFLICT (member_id, offer_id) DO UPDATE
    SET in_control_group = coalesce(s.in_control_group, excluded.in_control_group),
        targeted_at = least(s.targeted_at, excluded.targeted_at),
        last_targeted_at = greatest(s.last_targeted_at, excluded.last_targeted_at),
        targeting_event_ids = ARRAY(
            SELECT e FROM unnest(s.targeting_event_ids || excluded.targeting_event_ids) AS e
            GROUP BY e ORDER BY e COLLATE "C")
    WHERE NOT excluded.targeting_event_ids <@ s.targeting_event_ids
"""
_SEPARATOR = "\x1f"


_LOADED = """
INSERT INTO member_offer_standings AS s (member_id, offer_id, loaded_at)
SELECT * FROM unnest(%s::text[], %s::text[], %s::timestamptz[])
ON CONFLICT (member_id, offer_id) DO UPDATE
    SET loaded_at = least(s.loaded_at, excluded.loaded_at)
    WHERE s.loaded_at IS NULL OR excluded.loaded_at < s.loaded_at
"""

_COPIED = """
INSERT INTO member_offer_standings AS s (member_id, offer_id, uses, points_awarded,
    progress_use_number, progress, progress_updated_at)
SELECT k.member_id, k.offer_id, coalesce(u.uses, 0), coalesce(u.points_awarded, 0),
    p.use_number, p.progress, p.updated_at
FROM unnest(%s::text[], %s::text[]) AS k (member_id, offer_id)
LEFT JOIN member_offer_uses u ON u.member_id = k.member_id AND u.offer_id = k.offer_id
LEFT JOIN member_offer_progress p ON p.member_id = k.member_id AND p.offer_id = k.offer_id
ON CONFLICT (member_id, offer_id) DO UPDATE
    SET uses = excluded.uses, points_awarded = excluded.points_awarded,
        progress_use_number = excluded.progress_use_number, progress = excluded.progress,
        progress_updated_at = excluded.progress_updated_at
"""

_CATALOGUE = """SELECT definition, ends_at, withdrawn_at, closed_at
    FROM offers WHERE offer_id = ANY(%s)"""


def _items(conn: psycopg.Connection, offer_ids: Sequence[str]) -> list[FeedItem]:
    items = []
    for definition, ends_at, withdrawn_at, closed_at in conn.execute(
        _CATALOGUE, (list(offer_ids),)
    ):
        offer = from_json_object(definition)
        assert isinstance(offer, OfferPublished), "offers.definition holds OfferPublished"
        items.append(
            item_of(offer, ends_at=ends_at, withdrawn_at=withdrawn_at, closed_at=closed_at)
        )
    return items


def _columns(pairs: Iterable[tuple[str, str]]) -> tuple[list[str], list[str]]:
    members, offers = [], []
    for member_id, offer_id in pairs:
        members.append(member_id)
        offers.append(offer_id)
    return members, offers


def write(conn: psycopg.Connection, events: Sequence[FeedEvent]) -> None:
    """Project `events` (in log order per partition) in the caller's transaction, after the
    offers and offer performance writers have written the same batch.

    1. Items of the offers whose catalogue row the batch may have changed, re-rendered whole.
    2. Targetings, then loads, merged into the standings.
    3. Uses and progress copied for every pair a progress or a completion touched.
    """
    if not events:
        return
    rows = rows_of(events)
    items = _items(conn, rows.offers) if rows.offers else []
    with conn.pipeline(), conn.cursor() as cursor:
        for item in items:
            params = asdict(item)
            params["copy"], params["details"] = Jsonb(item.copy), Jsonb(item.details)
            cursor.execute(_ITEM, params)
        if rows.targetings:
            members, offers = _columns(rows.targetings)
            values = list(rows.targetings.values())
            cursor.execute(
                _TARGETED,
                (
                    members,
                    offers,
                    [control for control, _, _, _ in values],
                    [first for _, first, _, _ in values],
                    [last for _, _, last, _ in values],
                    [_SEPARATOR.join(ids) for _, _, _, ids in values],
                ),
            )
        if rows.loads:
            members, offers = _columns(rows.loads)
            cursor.execute(_LOADED, (members, offers, list(rows.loads.values())))
        if rows.copied:
            cursor.execute(_COPIED, _columns(rows.copied))
