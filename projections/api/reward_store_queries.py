"""What the reward-store endpoints read (docs/adr/0033-reward-store-api.md), and the member
state the store rules judge a buyer on, rebuilt from it.

One parameterised statement (DESIGN.md §7) reads, for one member id: the `members` row
(status, programmes, markets, profile), the balances of every category (`member_balances`:
a store may be paid from another category than REGULAR), the targeting
standings (`member_offer_standings`) and the offers the member bought
(`member_issued_offers`). `buyer` turns that into the `MemberLedger` and `MemberOffers` that
`processors.rules.rewards.store.purchase_refusal` judges, the same shapes the worker keeps, so
the listings ask the worker's own rule.

What Postgres cannot give back exactly: points reserved by requests in flight (a balance is
shown whole), and a DYNAMIC audience's latest decision when it left the member out (only a
targeting is an event). The purchase's answer is the worker's.

Owns SQL and the mapping of its rows; never checks tokens, never decides, never writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from processors.contract.common import PointsCategory
from processors.contract.enrolments import MemberProfile
from processors.contract.offer_definition import TargetingTiming
from processors.rules.ledger.lots import Lot
from processors.rules.ledger.state import MemberLedger, account_key
from processors.rules.offers.catalogue import Catalogue
from processors.rules.offers.state import (
    TIER_ATTRIBUTE,
    IssuedOffer,
    MemberOffers,
    OfferProgress,
    TargetingDecision,
    TriggerFire,
)


@dataclass(frozen=True)
class IssuedRow:
    """A `member_issued_offers` row."""

    issued_offer_id: str
    member_id: str
    offer_id: str | None
    reward_store_id: str | None
    points_spent: int | None
    command_id: str | None
    ledger_event_log_id: str | None
    issued_at: datetime | None
    status: str
    transaction_id: str | None
    locked_until: datetime | None
    status_at: datetime
    discount_cents: int | None


@dataclass(frozen=True)
class Buyer:
    """A member as the reward-store listings judge them."""

    ledger: MemberLedger
    offers: MemberOffers
    markets: tuple[str, ...]


ISSUED_JSON = """coalesce((SELECT json_agg(json_build_array(i.issued_offer_id, i.offer_id,
            i.reward_store_id, i.points_spent, i.issued_at, i.status, i.transaction_id,
            i.locked_until, i.status_at))
        FROM member_issued_offers i WHERE i.member_id = m.member_id), '[]')"""
"""The member's issued offers (`m`: the `members` row) as one JSON value, read back by
`issued_instances`: the buyer's, and the cart preview's (`cart_queries`)."""

_BUYER = sql.SQL("""
SELECT m.status, m.merged_into, m.market, m.markets, m.program_ids, m.profile,
    coalesce((SELECT json_agg(json_build_array(b.program_id, b.category, b.balance))
        FROM member_balances b WHERE b.member_id = m.member_id), '[]') AS balances,
    coalesce((SELECT json_agg(json_build_array(s.offer_id, s.in_control_group, s.targeted_at,
            s.last_targeted_at, s.targeting_event_ids, s.uses))
        FROM member_offer_standings s WHERE s.member_id = m.member_id), '[]') AS standings,
    {issued} AS issued
FROM members m
WHERE m.member_id = %(member_id)s
""").format(issued=sql.SQL(ISSUED_JSON))

_ISSUED = sql.SQL("""
SELECT issued_offer_id, member_id, offer_id, reward_store_id, points_spent, command_id,
    ledger_event_log_id, issued_at, status, transaction_id, locked_until, status_at,
    discount_cents
FROM member_issued_offers
WHERE member_id = %(member_id)s AND {conditions}
ORDER BY coalesce(issued_at, status_at) DESC, issued_offer_id DESC
LIMIT %(limit)s
""")

_KNOWN = """
SELECT EXISTS (SELECT 1 FROM members WHERE member_id = %(member_id)s)
    OR EXISTS (SELECT 1 FROM member_issued_offers WHERE member_id = %(member_id)s)
"""


def _instant(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


class RewardStoreQueries:
    """The reward-store reads, through the app's read-only pool (one checkout per call)."""

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self.pool = pool

    async def buyer(self, member_id: str, catalogue: Catalogue) -> Buyer | None:
        """The member's state for the store rules; None when no enrolment was projected."""
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(_BUYER, {"member_id": member_id})
            row = await cur.fetchone()
        if row is None:
            return None
        return buyer_of(member_id, row, catalogue)

    async def issued(
        self,
        member_id: str,
        *,
        limit: int,
        after: tuple[datetime, str] | None = None,
        status: str | None = None,
        command_id: str | None = None,
        issued_offer_id: str | None = None,
    ) -> list[IssuedRow] | None:
        """The member's issued offers, newest first (`limit`, after the cursor `after`, only
        those in `status`, the one bought by `command_id`, or the one of `issued_offer_id`);
        None for an unknown member."""
        conditions = [sql.SQL("TRUE")]
        params: dict[str, Any] = {"member_id": member_id, "limit": limit}
        if status is not None:
            conditions.append(sql.SQL("status = %(status)s"))
            params["status"] = status
        if command_id is not None:
            conditions.append(sql.SQL("command_id = %(command_id)s"))
            params["command_id"] = command_id
        if issued_offer_id is not None:
            conditions.append(sql.SQL("issued_offer_id = %(issued_offer_id)s"))
            params["issued_offer_id"] = issued_offer_id
        if after is not None:
            conditions.append(
                sql.SQL("(coalesce(issued_at, status_at), issued_offer_id) < (%(at)s, %(id)s)")
            )
            params |= {"at": after[0], "id": after[1]}
        query = _ISSUED.format(conditions=sql.SQL(" AND ").join(conditions))
        async with self.pool.connection() as conn:
            known = await (await conn.execute(_KNOWN, {"member_id": member_id})).fetchone()
            if known is None or not known[0]:
                return None
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(query, params)
                rows = await cur.fetchall()
        return [IssuedRow(**row) for row in rows]


def buyer_of(member_id: str, row: dict[str, Any], catalogue: Catalogue) -> Buyer:
    """The ledger and offer state a `_BUYER` row stands for (see the module). Pure."""
    programs = list(row["program_ids"] or ())
    ledger = MemberLedger(
        member_id=member_id, status=row["status"], merged_into=row["merged_into"],
        programs=programs,
        accounts={
            account_key(program_id, PointsCategory(category)):
                (Lot(expires_at=None, points=int(balance)),)
            for program_id, category, balance in row["balances"]
        },
    )  # fmt: skip
    markets = tuple(row["markets"] or ()) or (row["market"],)
    profile = MemberProfile.model_validate(row["profile"]) if row.get("profile") else None
    offers = MemberOffers(
        member_id=member_id, markets=list(markets), programs=programs, profile=profile,
        tier=profile.attributes.get(TIER_ATTRIBUTE) if profile is not None else None,
    )  # fmt: skip
    for offer_id, control, targeted_at, last_at, event_ids, uses in row["standings"]:
        offers.offers[offer_id] = OfferProgress(uses=int(uses))
        if targeted_at is None:
            continue
        offers.targeting[offer_id] = TargetingDecision(
            targeted=True,
            in_control=bool(control),
            at=datetime.fromisoformat(targeted_at),
            announced=True,
        )
        offer = catalogue.definition(offer_id)
        if offer is not None and offer.targeting.timing is TargetingTiming.TRIGGERED:
            # Each targeting is one fire; only how many and the latest matter to the rules.
            fired = _instant(last_at) or _instant(targeted_at)
            assert fired is not None
            days = offer.targeting.trigger_valid_days
            until = fired + timedelta(days=days) if days is not None else None
            offers.triggers[offer_id] = [
                TriggerFire(at=fired, cause=cause, valid_until=until) for cause in event_ids
            ]
    offers.issued = issued_instances(row["issued"])
    return Buyer(ledger=ledger, offers=offers, markets=markets)


def issued_instances(issued: list[list[Any]]) -> dict[str, IssuedOffer]:
    """The instances an `ISSUED_JSON` value lists, as the offer rules keep them. Pure."""
    instances = {}
    for issued_id, offer_id, store_id, points, issued_at, status, tx, until, at in issued:
        instances[issued_id] = IssuedOffer(
            issued_offer_id=issued_id, offer_id=offer_id or "", reward_store_id=store_id or "",
            points=int(points or 0), issued_at=datetime.fromisoformat(issued_at or at),
            status=status, transaction_id=tx, locked_until=_instant(until),
        )  # fmt: skip
    return instances
