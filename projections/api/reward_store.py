"""What the reward endpoints read and write: one protocol, `RewardStore`, and its Postgres
implementation, so the routes are tested with an in-memory store as commands are with a
recording sink.

Owns the SQL of the reward routes (every statement parameterised, DESIGN.md §7): the catalogue
with its stock counts (`rewards`, `reward_stock`), a member's programmes and REGULAR balances
(`members`, `member_balances`), the wallet (`member_rewards`), a redemption's outcome
(`request_outcomes`) and the API's own table of Idempotency-Keys (`redemption_requests`,
docs/adr/0022-redemption-endpoint.md). Never checks tokens, never decides what a row means to a
client (the routes do), never reads the clock: every time is given.

Reads go through the app's read-only pool, one short checkout per call, so a request waiting
for a decision holds no connection between two looks. The key table is written through a
small pool of its own, in autocommit: each write is one statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from psycopg import sql
from psycopg.abc import Query
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from processors.contract.redemptions import RequestType


@dataclass(frozen=True)
class CatalogueReward:
    """A reward of the catalogue with its stock counts (`reward_stock`, zeros when none)."""

    reward_id: str
    program_id: str
    market: str
    points_cost: int
    uses_code_stock: bool
    available_from: datetime
    available_until: datetime | None
    granted_valid_days: int | None
    grants_per_member_max: int | None
    grants_total_max: int | None
    localized_copy: dict[str, dict[str, Any]]
    """locale → its copy (headline, short_description, long_description, terms, image_url)."""
    discount: dict[str, Any] | None
    eligibility: list[dict[str, Any]] | None = None
    """Its eligibility criteria (TargetingCriterion, JSON form); None or empty: none."""
    codes_stocked: int = 0
    codes_given: int = 0
    grants: int = 0


@dataclass(frozen=True)
class MemberStanding:
    """What the catalogue needs to know about a member: can they buy, can they afford."""

    member_id: str
    is_known: bool
    status: str | None = None
    program_ids: tuple[str, ...] = ()
    balances: dict[str, int] | None = None
    """REGULAR points per programme (what a redemption spends)."""
    markets: tuple[str, ...] = ()
    profile: dict[str, Any] | None = None
    """The member's latest profile (JSON form), for the rewards' eligibility criteria."""


@dataclass(frozen=True)
class GrantedReward:
    """A row of the wallet."""

    granted_reward_id: str
    member_id: str
    reward_id: str
    reason: str
    program_id: str | None
    points_spent: int
    code: str | None
    redemption_token: str
    expires_at: datetime | None
    granted_at: datetime
    command_id: str | None
    offer_id: str | None
    challenge_id: str | None
    status: str
    closed_at: datetime | None


@dataclass(frozen=True)
class WalletPage:
    """Newest first; `has_more` when rewards older than the last one remain."""

    rewards: list[GrantedReward]
    has_more: bool


@dataclass(frozen=True)
class Outcome:
    """The worker's answer to one reward redemption (a `request_outcomes` row)."""

    command_id: str
    request_event_id: str
    accepted: bool
    reason: str | None
    detail: str | None
    points_debited: int
    ledger_event_log_id: str | None
    granted_reward_ids: tuple[str, ...]
    decided_at: datetime


@dataclass(frozen=True)
class RedemptionRecord:
    """What a member's Idempotency-Key was first used for on the redemption endpoint."""

    member_id: str
    command_id: str
    body_digest: str
    request_event_id: str
    reward_id: str
    program_id: str
    quantity: int
    received_at: datetime
    claimed_at: datetime
    written_at: datetime | None = None


WalletCursor = tuple[datetime, str]
"""(granted_at, granted_reward_id) of the last reward of the previous page."""


class RewardStore(Protocol):
    """Where the reward routes read and write (see the module)."""

    async def catalogue(self, market: str, at: datetime) -> list[CatalogueReward]:
        """The rewards for sale in `market` at `at`, cheapest first, then by id."""
        ...

    async def standing(self, member_id: str) -> MemberStanding:
        """The member's status, programmes and REGULAR balances."""
        ...

    async def wallet(
        self, member_id: str, *, limit: int, after: WalletCursor | None, status: str | None
    ) -> WalletPage | None:
        """A page of the member's granted rewards, newest first; None for an unknown member
        (never enrolled here, nothing granted)."""
        ...

    async def outcome(self, member_id: str, command_id: str) -> Outcome | None:
        """The outcome of the member's reward redemption `command_id`, if projected yet."""
        ...

    async def granted(self, member_id: str, ids: Sequence[str]) -> list[GrantedReward]:
        """The member's wallet rows of those ids that are projected yet (any order)."""
        ...

    async def record(self, member_id: str, command_id: str) -> RedemptionRecord | None:
        """The key's record, if the endpoint ever accepted it."""
        ...

    async def claim(self, record: RedemptionRecord) -> RedemptionRecord | None:
        """Insert `record` unless the key has one: None when this call inserted it (the
        caller writes the request), else the record already there."""
        ...

    async def reclaim(
        self, member_id: str, command_id: str, seen_claimed_at: datetime, at: datetime
    ) -> bool:
        """Take over an unwritten key whose claim is still the one seen: True for exactly one
        of several callers."""
        ...

    async def written(self, member_id: str, command_id: str, at: datetime) -> None:
        """The broker acknowledged the key's request at `at`."""
        ...

    async def release(self, member_id: str, command_id: str) -> None:
        """Forget an unwritten key (its request could not be written): a retry starts over."""
        ...


_CATALOGUE = """
SELECT r.reward_id, r.program_id, r.market, r.points_cost, r.uses_code_stock, r.available_from,
    r.available_until, r.granted_valid_days, r.grants_per_member_max, r.grants_total_max,
    r.localized_copy, r.definition -> 'discount' AS discount,
    r.definition -> 'eligibility' AS eligibility,
    coalesce(s.codes_stocked, 0) AS codes_stocked, coalesce(s.codes_given, 0) AS codes_given,
    coalesce(s.grants, 0) AS grants
FROM rewards r LEFT JOIN reward_stock s ON s.reward_id = r.reward_id
WHERE r.market = %(market)s AND r.points_cost IS NOT NULL
    AND r.available_from <= %(at)s AND (r.available_until IS NULL OR %(at)s < r.available_until)
ORDER BY r.points_cost, r.reward_id COLLATE "C"
"""

_STANDING = """
SELECT m.status, m.program_ids, m.markets, m.profile,
    coalesce((SELECT json_object_agg(b.program_id, b.balance) FROM member_balances b
        WHERE b.member_id = q.member_id AND b.category = 'REGULAR'), '{}') AS balances
FROM (SELECT %(member_id)s::text AS member_id) q
LEFT JOIN members m ON m.member_id = q.member_id
"""

_WALLET = sql.SQL("""
SELECT granted_reward_id, member_id, reward_id, reason, program_id, points_spent, code,
    redemption_token, expires_at, granted_at, command_id, offer_id, challenge_id, status,
    closed_at
FROM member_rewards
WHERE member_id = %(member_id)s AND {conditions}
""")
_WALLET_PAGE = sql.SQL("{} ORDER BY granted_at DESC, granted_reward_id DESC LIMIT %(limit)s")

_KNOWN = """
SELECT EXISTS (SELECT 1 FROM members WHERE member_id = %(member_id)s)
    OR EXISTS (SELECT 1 FROM member_rewards WHERE member_id = %(member_id)s)
"""

_OUTCOME = """
SELECT command_id, request_event_id, accepted, reason, detail, points_debited,
    ledger_event_log_id, granted_reward_ids, decided_at
FROM request_outcomes
WHERE member_id = %(member_id)s AND command_id = %(command_id)s
    AND request_type = %(request_type)s
"""

_RECORD = """
SELECT member_id, command_id, body_digest, request_event_id, reward_id, program_id, quantity,
    received_at, claimed_at, written_at
FROM redemption_requests
WHERE member_id = %s AND command_id = %s
"""

_CLAIM = """
INSERT INTO redemption_requests (member_id, command_id, body_digest, request_event_id,
    reward_id, program_id, quantity, received_at, claimed_at, written_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, NULL)
ON CONFLICT (member_id, command_id) DO NOTHING
RETURNING 1
"""


class PostgresRewardStore:
    """`RewardStore` over the projection tables (`read`, the app's read-only pool) and the
    API's key table (`write`)."""

    def __init__(self, read: AsyncConnectionPool[Any], write: AsyncConnectionPool[Any]) -> None:
        self.read = read
        self.write = write

    async def _rows(self, query: Query, params: dict[str, Any]) -> list[dict[str, Any]]:
        async with self.read.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query, params)
            rows: list[dict[str, Any]] = await cur.fetchall()
            return rows

    async def catalogue(self, market: str, at: datetime) -> list[CatalogueReward]:
        rows = await self._rows(_CATALOGUE, {"market": market, "at": at})
        return [CatalogueReward(**row) for row in rows]

    async def standing(self, member_id: str) -> MemberStanding:
        (row,) = await self._rows(_STANDING, {"member_id": member_id})
        return MemberStanding(
            member_id=member_id,
            is_known=row["status"] is not None,
            status=row["status"],
            program_ids=tuple(row["program_ids"] or ()),
            balances=dict(row["balances"]),
            markets=tuple(row["markets"] or ()),
            profile=row["profile"],
        )

    async def wallet(
        self, member_id: str, *, limit: int, after: WalletCursor | None, status: str | None
    ) -> WalletPage | None:
        conditions = [sql.SQL("TRUE")]
        params: dict[str, Any] = {"member_id": member_id, "limit": limit + 1}
        if status is not None:
            conditions.append(sql.SQL("status = %(status)s"))
            params["status"] = status
        if after is not None:
            conditions.append(sql.SQL("(granted_at, granted_reward_id) < (%(at)s, %(id)s)"))
            params |= {"at": after[0], "id": after[1]}
        query = _WALLET_PAGE.format(_WALLET.format(conditions=sql.SQL(" AND ").join(conditions)))
        async with self.read.connection() as conn:
            found = await (await conn.execute(_KNOWN, {"member_id": member_id})).fetchone()
            if found is None or not found[0]:
                return None
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(query, params)
                rows = await cur.fetchall()
        rewards = [GrantedReward(**row) for row in rows[:limit]]
        return WalletPage(rewards=rewards, has_more=len(rows) > limit)

    async def outcome(self, member_id: str, command_id: str) -> Outcome | None:
        params = {
            "member_id": member_id,
            "command_id": command_id,
            "request_type": RequestType.REWARD_REDEMPTION.value,
        }
        rows = await self._rows(_OUTCOME, params)
        if not rows:
            return None
        row = rows[0]
        return Outcome(**{**row, "granted_reward_ids": tuple(row["granted_reward_ids"])})

    async def granted(self, member_id: str, ids: Sequence[str]) -> list[GrantedReward]:
        if not ids:
            return []
        query = _WALLET.format(conditions=sql.SQL("granted_reward_id = ANY(%(ids)s)"))
        rows = await self._rows(query, {"member_id": member_id, "ids": list(ids)})
        return [GrantedReward(**row) for row in rows]

    async def record(self, member_id: str, command_id: str) -> RedemptionRecord | None:
        # Through the write pool: a record written a moment ago by this API must be seen.
        async with self.write.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(_RECORD, (member_id, command_id))
            row = await cur.fetchone()
        return RedemptionRecord(**row) if row is not None else None

    async def claim(self, record: RedemptionRecord) -> RedemptionRecord | None:
        while True:
            async with self.write.connection() as conn:
                values = (
                    record.member_id, record.command_id, record.body_digest,
                    record.request_event_id, record.reward_id, record.program_id,
                    record.quantity, record.received_at, record.claimed_at,
                )  # fmt: skip
                inserted = await (await conn.execute(_CLAIM, values)).fetchone()
            if inserted is not None:
                return None
            earlier = await self.record(record.member_id, record.command_id)
            if earlier is not None:
                return earlier
            # Released between the two statements (its writer failed to write): claim afresh.

    async def reclaim(
        self, member_id: str, command_id: str, seen_claimed_at: datetime, at: datetime
    ) -> bool:
        async with self.write.connection() as conn:
            taken = await (
                await conn.execute(
                    "UPDATE redemption_requests SET claimed_at = %s"
                    " WHERE member_id = %s AND command_id = %s AND written_at IS NULL"
                    " AND claimed_at = %s RETURNING 1",
                    (at, member_id, command_id, seen_claimed_at),
                )
            ).fetchone()
        return taken is not None

    async def written(self, member_id: str, command_id: str, at: datetime) -> None:
        async with self.write.connection() as conn:
            await conn.execute(
                "UPDATE redemption_requests SET written_at = %s"
                " WHERE member_id = %s AND command_id = %s AND written_at IS NULL",
                (at, member_id, command_id),
            )

    async def release(self, member_id: str, command_id: str) -> None:
        async with self.write.connection() as conn:
            await conn.execute(
                "DELETE FROM redemption_requests"
                " WHERE member_id = %s AND command_id = %s AND written_at IS NULL",
                (member_id, command_id),
            )
