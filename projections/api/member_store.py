"""What the preference and inbox routes read (docs/adr/0028-member-services.md): the members
row, `member_preferences`, `member_preference_changes` and `inbox_messages` through the read
pool, and the API's own `inbox_reads` and `inbox_message_requests` (each Idempotency-Key of a
message poster) through the write pool. Every query is parameterised."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

AuditCursor = tuple[datetime, str, str]
"""(changed_at, change_event_id, channel) of the last entry of the previous page."""
InboxCursor = tuple[datetime, str]
"""(posted_at, message_id) of the last message of the previous page."""


@dataclass(frozen=True)
class MemberRow:
    member_id: str
    status: str
    markets: list[str]
    program_ids: list[str]
    merged_into: str | None = None


# A member is someone with accounts: the programmes are those whose accounts were opened (an
# enrolment the worker refused opened none, though `members` shows its row: ADR 28).
_MEMBER = """
SELECT m.member_id, m.status, m.markets, a.program_ids, m.merged_into
FROM members m
CROSS JOIN LATERAL (
    SELECT array_agg(DISTINCT b.program_id ORDER BY b.program_id) AS program_ids
    FROM member_balances b WHERE b.member_id = m.member_id
) a
WHERE m.member_id = %s AND a.program_ids IS NOT NULL
"""

_CURRENT = """
SELECT channel, opted_in, changed_at FROM member_preferences WHERE member_id = %s
"""

_AUDIT = """
SELECT change_event_id, channel, was_opted_in, opted_in, changed_at, changed_by, changed_by_id,
    source, reason
FROM member_preference_changes
WHERE member_id = %(member_id)s
    AND (%(after)s::boolean IS FALSE
         OR (changed_at, change_event_id, channel) < (%(at)s, %(event)s, %(channel)s))
ORDER BY changed_at DESC, change_event_id DESC, channel DESC
LIMIT %(limit)s
"""

# A member's inbox: their personal messages and their markets' global ones, not expired;
# campaign messages only while the member has not opted out of IN_APP.
_VISIBLE = """
FROM inbox_messages m
LEFT JOIN inbox_reads r ON r.member_id = %(member_id)s AND r.message_id = m.message_id
WHERE (m.member_id = %(member_id)s OR m.market = ANY(%(markets)s))
    AND (m.expires_at IS NULL OR m.expires_at > %(now)s)
    AND (m.campaign_id IS NULL OR NOT EXISTS (
        SELECT 1 FROM member_preferences p WHERE p.member_id = %(member_id)s
            AND p.channel = 'IN_APP' AND NOT p.opted_in))
"""
_COLUMNS = """
SELECT m.message_id, m.member_id IS NULL AS is_global, m.campaign_id, m.locale, m.title,
    m.body, m.deep_link_url, m.image_url, m.posted_at, m.expires_at,
    r.read_at IS NOT NULL AS read
"""
_PAGE = (
    _COLUMNS
    + _VISIBLE
    + """
    AND (%(after)s::boolean IS FALSE OR (m.posted_at, m.message_id) < (%(at)s, %(id)s))
ORDER BY m.posted_at DESC, m.message_id DESC
LIMIT %(limit)s
"""
)
_UNREAD = "SELECT count(*) AS unread " + _VISIBLE + " AND r.read_at IS NULL"
_ONE = _COLUMNS + _VISIBLE + " AND m.message_id = %(id)s"

_GLOBAL = """
SELECT message_id, TRUE AS is_global, campaign_id, locale, title, body, deep_link_url,
    image_url, posted_at, expires_at, NULL::boolean AS read
FROM inbox_messages
WHERE market = %(market)s AND (expires_at IS NULL OR expires_at > %(now)s)
    AND (%(after)s::boolean IS FALSE OR (posted_at, message_id) < (%(at)s, %(id)s))
ORDER BY posted_at DESC, message_id DESC
LIMIT %(limit)s
"""

_READ = """
INSERT INTO inbox_reads (member_id, message_id, read_at) VALUES (%s, %s, %s)
ON CONFLICT (member_id, message_id) DO NOTHING
"""


_CLAIM_MESSAGE = """
INSERT INTO inbox_message_requests (poster, command_id, body_digest, message_id, member_id,
    market, posted_at, claimed_at, written_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, NULL)
ON CONFLICT (poster, command_id) DO NOTHING
RETURNING 1
"""


@dataclass(frozen=True)
class MessageRecord:
    """What a poster's Idempotency-Key was first used for on `POST /v1/inbox/messages`."""

    poster: str
    command_id: str
    body_digest: str
    message_id: str
    member_id: str | None
    market: str | None
    posted_at: datetime
    claimed_at: datetime
    written_at: datetime | None = None


class MemberStore:
    """The preference and inbox reads, the inbox's read marks and its posters' keys."""

    def __init__(self, read: AsyncConnectionPool[Any], write: AsyncConnectionPool[Any]) -> None:
        self.read = read
        self.write = write

    async def _rows(self, query: str, params: Any) -> list[dict[str, Any]]:
        async with self.read.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query, params)
            rows: list[dict[str, Any]] = await cur.fetchall()
        return rows

    async def member(self, member_id: str) -> MemberRow | None:
        rows = await self._rows(_MEMBER, (member_id,))
        return MemberRow(**rows[0]) if rows else None

    async def preferences(self, member_id: str) -> list[dict[str, Any]]:
        return await self._rows(_CURRENT, (member_id,))

    async def audit(
        self, member_id: str, *, limit: int, after: AuditCursor | None
    ) -> list[dict[str, Any]]:
        at, event, channel = after if after is not None else (None, None, None)
        params = {"member_id": member_id, "after": after is not None, "at": at,
                  "event": event, "channel": channel, "limit": limit}  # fmt: skip
        return await self._rows(_AUDIT, params)

    async def inbox(
        self, member: MemberRow, now: datetime, *, limit: int, after: InboxCursor | None
    ) -> tuple[list[dict[str, Any]], int]:
        at, message_id = after if after is not None else (None, None)
        params = {"member_id": member.member_id, "markets": member.markets, "now": now,
                  "after": after is not None, "at": at, "id": message_id,
                  "limit": limit}  # fmt: skip
        page = await self._rows(_PAGE, params)
        unread = await self._rows(_UNREAD, params)
        return page, int(unread[0]["unread"])

    async def message(self, member: MemberRow, message_id: str, now: datetime) -> bool:
        params = {"member_id": member.member_id, "markets": member.markets, "now": now,
                  "id": message_id}  # fmt: skip
        return bool(await self._rows(_ONE, params))

    async def global_inbox(
        self, market: str, now: datetime, *, limit: int, after: InboxCursor | None
    ) -> list[dict[str, Any]]:
        at, message_id = after if after is not None else (None, None)
        params = {"market": market, "now": now, "after": after is not None, "at": at,
                  "id": message_id, "limit": limit}  # fmt: skip
        return await self._rows(_GLOBAL, params)

    async def mark_read(self, member_id: str, message_id: str, at: datetime) -> None:
        async with self.write.connection() as conn:
            await conn.execute(_READ, (member_id, message_id, at))

    async def claim_message(self, record: MessageRecord) -> MessageRecord | None:
        """Insert `record` unless the key has one: None when this call inserted it (the caller
        writes the message), else the record already there."""
        values = (
            record.poster, record.command_id, record.body_digest, record.message_id,
            record.member_id, record.market, record.posted_at, record.claimed_at,
        )  # fmt: skip
        while True:
            async with self.write.connection() as conn:
                if await (await conn.execute(_CLAIM_MESSAGE, values)).fetchone() is not None:
                    return None
                async with conn.cursor(row_factory=dict_row) as cur:
                    await cur.execute(
                        "SELECT * FROM inbox_message_requests WHERE poster = %s"
                        " AND command_id = %s",
                        (record.poster, record.command_id),
                    )
                    row = await cur.fetchone()
            if row is not None:
                return MessageRecord(**row)
            # Released between the two statements (its writer failed to write): claim afresh.

    async def reclaim_message(
        self, poster: str, command_id: str, seen_claimed_at: datetime, at: datetime
    ) -> bool:
        """Take over an unwritten key whose claim is still the one seen: True for one caller."""
        async with self.write.connection() as conn:
            taken = await (
                await conn.execute(
                    "UPDATE inbox_message_requests SET claimed_at = %s WHERE poster = %s"
                    " AND command_id = %s AND written_at IS NULL AND claimed_at = %s RETURNING 1",
                    (at, poster, command_id, seen_claimed_at),
                )
            ).fetchone()
        return taken is not None

    async def message_written(self, poster: str, command_id: str, at: datetime) -> None:
        """The broker acknowledged the key's message at `at`."""
        async with self.write.connection() as conn:
            await conn.execute(
                "UPDATE inbox_message_requests SET written_at = %s"
                " WHERE poster = %s AND command_id = %s AND written_at IS NULL",
                (at, poster, command_id),
            )

    async def release_message(self, poster: str, command_id: str) -> None:
        """Forget an unwritten key (its message could not be written): a retry starts over."""
        async with self.write.connection() as conn:
            await conn.execute(
                "DELETE FROM inbox_message_requests"
                " WHERE poster = %s AND command_id = %s AND written_at IS NULL",
                (poster, command_id),
            )
