"""What member care reads that no API endpoint answers: finding a member by id or email, and
the promo codes a member linked and used (docs/adr/0036-member-care-console.md).

Everything else on a member's page comes from the API's own query modules (`ledger_queries`,
`member_store`, `reward_store`, `feed_store`), never a copy. Read-only; every statement is
parameterised.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool

from processors.contract.redemptions import RequestType

SEARCH_MAX = 20


@dataclass(frozen=True)
class FoundMember:
    """A search result."""

    member_id: str
    first_name: str | None
    last_name: str | None
    email: str | None
    market: str
    status: str
    enrolled_at: datetime


@dataclass(frozen=True)
class LinkedCode:
    """A code the member linked through the API, with the engine's answer (None: pending)."""

    code: str
    mode: str
    received_at: datetime
    accepted: bool | None
    reason: str | None


@dataclass(frozen=True)
class UsedCode:
    """A purchase of the member's that used a code."""

    code: str
    promotion_id: str
    transaction_id: str
    transaction_number: str | None
    store_id: str | None
    discount_cents: int
    used_at: datetime


# The member id exactly, or the email whatever its case (the members projection holds no card
# numbers: ADR 36).
_SEARCH = """
SELECT member_id, first_name, last_name, email, market, status, enrolled_at FROM members
WHERE member_id = %(q)s OR lower(email) = lower(%(q)s)
ORDER BY member_id = %(q)s DESC, enrolled_at DESC LIMIT %(limit)s
"""

_LINKED = """
SELECT l.code, l.mode, l.received_at, o.accepted, o.reason
FROM promo_code_link_requests l
LEFT JOIN request_outcomes o ON o.member_id = l.member_id AND o.command_id = l.command_id
    AND o.request_type = %(kind)s
WHERE l.member_id = %(member_id)s
ORDER BY l.received_at DESC LIMIT %(limit)s
"""

_USED = """
SELECT code, promotion_id, transaction_id, transaction_number, store_id, discount_cents, used_at
FROM promo_code_uses WHERE member_id = %(member_id)s
ORDER BY used_at DESC LIMIT %(limit)s
"""


class MemberQueries:
    """Over the API's read pool."""

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self.pool = pool

    async def _rows(self, row: type[Any], query: str, params: dict[str, Any]) -> list[Any]:
        async with self.pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row(row))
            await cursor.execute(query, params)
            rows: list[Any] = await cursor.fetchall()
            return rows

    async def search(self, q: str) -> list[FoundMember]:
        """Members whose id is `q`, or whose email is `q` (any case)."""
        return await self._rows(FoundMember, _SEARCH, {"q": q, "limit": SEARCH_MAX})

    async def linked_codes(self, member_id: str, limit: int = 20) -> list[LinkedCode]:
        params = {
            "member_id": member_id,
            "kind": RequestType.PROMO_CODE_LINK.value,
            "limit": limit,
        }
        return await self._rows(LinkedCode, _LINKED, params)

    async def used_codes(self, member_id: str, limit: int = 20) -> list[UsedCode]:
        return await self._rows(UsedCode, _USED, {"member_id": member_id, "limit": limit})
