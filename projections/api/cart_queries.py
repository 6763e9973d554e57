"""What the cart preview reads about a member, and the offer state it rebuilds from it.

One parameterised statement (DESIGN.md §7) reads, for one member id: the `members` row
(status, markets, programmes, profile), the uses and points of each offer
(`member_offer_uses`), the use in progress of each offer (`member_offer_progress`), the
offer awards the ledger took back on returns (`ledger_entries`: DEBIT, RETURN, with an
offer_id), the reward-store offers the member bought (`member_issued_offers`), and the
offers the member was targeted for (held out or not; each trigger fire) or loaded to card
(`member_offer_standings`): without them no targeted or load-to-card offer could apply.
`member_offers` turns that into the `MemberOffers` the offer rules evaluate a cart
with, the same shape the worker keeps.

What Postgres cannot give back exactly (docs/adr/0011-cart-evaluation.md):
- accumulated progress comes as one sum per behaviour (what `OfferProgressed` says), dated
  at its event: a rolling window (`window_days`) drops it as a whole, later than the worker
  would drop its oldest part;
- purchases and per-transaction contributions are not rebuilt: a cart never returns anything;
- a triggered offer's fires are known by their ids and the latest fire's time only: each is
  taken as fired then (what decides the cart: is the latest fire still valid, and is one
  left unused).

`held_rewards` reads the granted rewards a cart's `redemption_tokens` name, for the till's
judgement of each (`processors.rules.rewards.till`). `with_held_uses` adds to the state the
uses of offers the member's code reservations hold for their baskets (as the worker keeps
them from `OfferUseHeld`, docs/adr/0037-codes-that-unlock-an-offer.md).

Owns SQL and the mapping of its rows; never checks tokens, never evaluates, never writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from processors.contract.enrolments import MemberProfile
from processors.contract.offer_definition import DiscountTerms, TargetingTiming
from processors.rules.codes.promotions import Promotions
from processors.rules.offers import held_uses
from processors.rules.offers.catalogue import Catalogue
from processors.rules.offers.progress import is_accumulated
from processors.rules.offers.state import (
    TIER_ATTRIBUTE,
    Contribution,
    HeldUse,
    MemberOffers,
    OfferProgress,
    TargetingDecision,
    TriggerFire,
)
from processors.rules.rewards.till import Held
from projections.api.code_store import Reservation
from projections.api.reward_store_queries import ISSUED_JSON, issued_instances

_MEMBER = sql.SQL("""
SELECT m.status, m.merged_into, m.market, m.markets, m.program_ids, m.profile,
    coalesce((SELECT json_agg(json_build_array(u.offer_id, u.uses, u.points_awarded))
        FROM member_offer_uses u WHERE u.member_id = m.member_id), '[]') AS uses,
    coalesce((SELECT json_agg(json_build_array(p.offer_id, p.use_number, p.progress,
            p.updated_at))
        FROM member_offer_progress p WHERE p.member_id = m.member_id), '[]') AS progress,
    coalesce((SELECT json_agg(json_build_array(r.offer_id, r.points))
        FROM (SELECT e.offer_id, sum(e.points) AS points FROM ledger_entries e
            WHERE e.member_id = m.member_id AND e.offer_id IS NOT NULL
                AND e.entry_type = 'DEBIT' AND e.kind = 'RETURN'
            GROUP BY e.offer_id) r), '[]') AS returned,
    {issued} AS issued,
    coalesce((SELECT json_agg(json_build_array(s.offer_id, s.in_control_group, s.targeted_at,
            s.last_targeted_at, s.targeting_event_ids, s.loaded_at))
        FROM member_offer_standings s WHERE s.member_id = m.member_id
            AND (s.targeted_at IS NOT NULL OR s.loaded_at IS NOT NULL)), '[]') AS standings
FROM members m
WHERE m.member_id = %(member_id)s
""").format(issued=sql.SQL(ISSUED_JSON))


@dataclass(frozen=True)
class MemberRow:
    """A member as the cart preview reads it."""

    member_id: str
    status: str
    merged_into: str | None
    markets: list[str]
    program_ids: list[str]
    profile: dict[str, Any] | None
    uses: list[tuple[str, int, int]]
    """(offer_id, uses, points awarded)."""
    progress: list[tuple[str, int, list[dict[str, Any]], datetime]]
    """(offer_id, use_number, progress as OfferProgressed gives it, its occurred_at)."""
    returned: dict[str, int]
    """offer_id → points the ledger took back on returns."""
    issued: list[list[Any]] = field(default_factory=list)
    """The reward-store offers the member bought (`reward_store_queries.ISSUED_JSON`)."""
    standings: list[Standing] = field(default_factory=list)
    """Offers the member was targeted for or loaded to card."""


@dataclass(frozen=True)
class Standing:
    """A `member_offer_standings` row as the cart preview needs it."""

    offer_id: str
    in_control_group: bool
    targeted_at: datetime | None
    last_targeted_at: datetime | None
    targeting_event_ids: list[str]
    loaded_at: datetime | None

    @classmethod
    def of(cls, row: list[Any]) -> Standing:
        offer_id, control, targeted, last, ids, loaded = row
        return cls(offer_id, bool(control), _at(targeted), _at(last), list(ids or []), _at(loaded))


def _at(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


async def find_member(conn: AsyncConnection[Any], member_id: str) -> MemberRow | None:
    """The member's facts and offer standing; None when no enrolment of it was projected."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_MEMBER, {"member_id": member_id})
        row = await cur.fetchone()
    if row is None:
        return None
    return MemberRow(
        member_id=member_id,
        status=row["status"],
        merged_into=row["merged_into"],
        # A row projected before the markets column existed still has its first market.
        markets=list(row["markets"]) or [row["market"]],
        program_ids=list(row["program_ids"]),
        profile=row["profile"],
        uses=[(offer_id, int(uses), int(points)) for offer_id, uses, points in row["uses"]],
        progress=[
            (offer_id, int(use), progress, datetime.fromisoformat(at))
            for offer_id, use, progress, at in row["progress"]
        ],
        returned={offer_id: int(points) for offer_id, points in row["returned"]},
        issued=row["issued"],
        standings=[Standing.of(r) for r in row["standings"]],
    )


def member_offers(row: MemberRow, catalogue: Catalogue) -> MemberOffers:
    """The member's offer state for a preview, as far as the projection tells it.

    Per offer: uses completed, points awarded net of what returns took back, and the use in
    progress as one contribution per accumulated behaviour (a progress row whose use has
    completed since is stale and ignored). Offers the catalogue no longer knows are left out.
    """
    profile = MemberProfile.model_validate(row.profile) if row.profile is not None else None
    state = MemberOffers(
        member_id=row.member_id,
        markets=row.markets,
        programs=row.program_ids,
        tier=profile.attributes.get(TIER_ATTRIBUTE) if profile is not None else None,
        profile=profile,
    )
    # The store offers bought, so a basket carrying one is previewed with its benefit.
    state.issued = issued_instances(row.issued)
    for offer_id, uses, points in row.uses:
        awarded = max(points - row.returned.get(offer_id, 0), 0)
        state.offers[offer_id] = OfferProgress(uses=uses, points_awarded=awarded)
    for offer_id, use_number, progress, at in row.progress:
        offer = catalogue.definition(offer_id)
        standing = state.offers.get(offer_id)
        if offer is None or (standing is not None and use_number <= standing.uses):
            continue
        standing = state.progress_of(offer_id, len(offer.behaviours))
        for item in progress:
            index, value = int(item["behaviour_index"]), Decimal(item["progress"])
            counts = index < len(offer.behaviours) and is_accumulated(offer.behaviours[index])
            if counts and value > 0:
                cause = f"progress:{offer_id}:{use_number}"
                standing.contributions[index] = [Contribution(at=at, value=value, cause=cause)]
    for held in row.standings:
        _stand(state, held, catalogue)
    return state


def _stand(state: MemberOffers, held: Standing, catalogue: Catalogue) -> None:
    """The member's targeting and load of one offer, as the worker keeps them."""
    if held.loaded_at is not None:
        state.loaded[held.offer_id] = held.loaded_at
    offer = catalogue.definition(held.offer_id)
    if held.targeted_at is None or offer is None:
        return
    state.targeting[held.offer_id] = TargetingDecision(
        targeted=True, in_control=held.in_control_group, at=held.targeted_at, announced=True
    )
    if offer.targeting.timing is TargetingTiming.TRIGGERED:
        fired = held.last_targeted_at or held.targeted_at
        days = offer.targeting.trigger_valid_days
        until = fired + timedelta(days=days) if days is not None else None
        state.triggers[held.offer_id] = [
            TriggerFire(at=fired, cause=cause, valid_until=until)
            for cause in held.targeting_event_ids
        ]


def with_held_uses(
    state: MemberOffers, reserved: Iterable[Reservation], promotions: Promotions, market: str
) -> MemberOffers:
    """`state` holding, for each of `reserved` whose code unlocks an offer, that offer's use
    for its basket (`offers.held_uses`)."""
    for r in reserved:
        found = promotions.lookup(r.code, market)
        offer_id = found.terms.offer_id if found is not None else None
        if offer_id is not None:
            held_uses.keep(state, HeldUse(
                offer_id=offer_id, transaction_id=r.transaction_id,
                promotion_id=r.promotion_id, code=r.code, until=r.reserved_until,
            ))  # fmt: skip
    return state


_HELD = """
SELECT redemption_token, member_id, granted_reward_id, reward_id, status, expires_at, discount
FROM member_rewards
WHERE redemption_token = ANY(%(tokens)s)
ORDER BY member_id IS DISTINCT FROM %(member_id)s, granted_at
"""


async def held_rewards(
    conn: AsyncConnection[Any], tokens: list[str], member_id: str | None
) -> dict[str, Held]:
    """The granted reward each token names, as the till judges it (`rewards.till`); a token
    two rewards' stocks share names the cart member's own first."""
    if not tokens:
        return {}
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_HELD, {"tokens": tokens, "member_id": member_id})
        rows = await cur.fetchall()
    held: dict[str, Held] = {}
    for row in rows:
        terms = row["discount"]
        held.setdefault(row["redemption_token"], Held(
            member_id=row["member_id"], granted_reward_id=row["granted_reward_id"],
            reward_id=row["reward_id"], status=row["status"], expires_at=row["expires_at"],
            discount=None if terms is None else DiscountTerms.model_validate(terms),
        ))  # fmt: skip
    return held
