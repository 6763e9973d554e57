"""What the promo code endpoints read and write: one protocol, `CodeStore`, and its Postgres
implementation, so the routes are tested with an in-memory store (docs/adr/0026-promo-code-api.md).

Owns the SQL of the code routes (every statement parameterised, DESIGN.md §7): a link
request's outcome (`request_outcomes`, kind PROMO_CODE_LINK), the API's own table of link
Idempotency-Keys (`promo_code_link_requests`, the same protocol as ADR 22's
`redemption_requests`), the agent's answers to a reservation (`promo_code_reservations`,
`promo_code_refusals`), the offer's agent's answers to a till's reservation of a capped
discount offer (`offer_use_reservations`, docs/adr/0030-discount-offer-total-uses.md) and a
code's activity (`promo_code_uses`, the links accepted) and the codes linked to a member that
their next checkout carries. Never
checks tokens, never decides what a row means to a client (the routes do), never reads the
clock: every time is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from psycopg.abc import Query
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from processors.contract.redemptions import RequestType
from processors.rules.codes import link


@dataclass(frozen=True)
class LinkRecord:
    """What a member's Idempotency-Key was first used for on the link endpoint."""

    member_id: str
    command_id: str
    body_digest: str
    request_event_id: str
    code: str
    mode: str
    received_at: datetime
    claimed_at: datetime
    written_at: datetime | None = None


@dataclass(frozen=True)
class LinkOutcome:
    """The worker's answer to one link request (a `request_outcomes` row)."""

    command_id: str
    request_event_id: str
    accepted: bool
    reason: str | None
    detail: str | None
    decided_at: datetime


@dataclass(frozen=True)
class Reservation:
    """A basket's reservation of a code, as projected."""

    code: str
    transaction_id: str
    promotion_id: str
    member_id: str | None
    discount_cents: int
    reserved_until: datetime
    committed: bool = False
    """Its basket's purchase used the code: the use stays, a release gives nothing back."""


@dataclass(frozen=True)
class Refusal:
    """A refusal the promotion's agent gave (to a reservation request or a purchase)."""

    code: str
    transaction_id: str
    reason: str
    detail: str
    cause_event_id: str


@dataclass(frozen=True)
class LockedOffer:
    """A reward-store offer a member holds, locked to a basket (`member_issued_offers`)."""

    member_id: str
    issued_offer_id: str


@dataclass(frozen=True)
class OfferReservationAnswer:
    """The offer's agent's answer to a till's reservation of a capped discount offer's use (an
    `offer_use_reservations` row; docs/adr/0030-discount-offer-total-uses.md)."""

    request_event_id: str
    offer_id: str
    transaction_id: str
    reserved: bool
    reserved_until: datetime | None
    reason: str | None


@dataclass(frozen=True)
class CodeUse:
    """One use of a code: a row of `promo_code_uses`."""

    event_id: str
    promotion_id: str
    code: str
    member_id: str | None
    transaction_id: str
    transaction_number: str | None
    store_id: str | None
    discount_cents: int
    use_number: int
    used_at: datetime


@dataclass(frozen=True)
class CodeActivity:
    """What the projections know of one code and its promotion at a time."""

    code_uses: int
    promotion_uses: int
    code_reservations: int
    """Reservations of this code still counting (not lapsed, released nor committed), other
    than the asking basket's."""
    promotion_reservations: int
    linked_member_id: str | None
    """The member an accepted link of this code (made through this API) is still waiting for."""
    member_uses: int = 0
    """The asking member's uses of the promotion (any of its codes); 0 without a member."""
    member_reservations: int = 0
    """The asking member's reservations of the promotion still counting, in other baskets."""
    basket_reserved_until: datetime | None = None
    """Until when the asking basket itself holds a reservation of this code, if it does."""

    @property
    def code_taken(self) -> int:
        """Uses of the code used or reserved (by other baskets)."""
        return self.code_uses + self.code_reservations

    @property
    def promotion_taken(self) -> int:
        """Uses of the promotion used or reserved (by other baskets)."""
        return self.promotion_uses + self.promotion_reservations

    @property
    def member_taken(self) -> int:
        """The asking member's uses of the promotion used or reserved (by other baskets)."""
        return self.member_uses + self.member_reservations


UseCursor = tuple[datetime, str]
"""(used_at, event_id) of the last use of the previous page."""


class CodeStore(Protocol):
    """Where the code routes read and write (see the module)."""

    async def link_outcome(self, member_id: str, command_id: str) -> LinkOutcome | None:
        """The outcome of the member's link request `command_id`, if projected yet."""
        ...

    async def link_record(self, member_id: str, command_id: str) -> LinkRecord | None:
        """The key's record, if the link endpoint ever accepted it."""
        ...

    async def claim_link(self, record: LinkRecord) -> LinkRecord | None:
        """Insert `record` unless the key has one: None when this call inserted it (the caller
        writes the request), else the record already there."""
        ...

    async def reclaim_link(
        self, member_id: str, command_id: str, seen_claimed_at: datetime, at: datetime
    ) -> bool:
        """Take over an unwritten key whose claim is still the one seen: True for one caller."""
        ...

    async def link_written(self, member_id: str, command_id: str, at: datetime) -> None:
        """The broker acknowledged the key's request at `at`."""
        ...

    async def release_link(self, member_id: str, command_id: str) -> None:
        """Forget an unwritten key (its request could not be written): a retry starts over."""
        ...

    async def reservation(self, code: str, transaction_id: str) -> Reservation | None:
        """The basket's reservation of `code`, if projected and not released."""
        ...

    async def refusal(self, cause_event_id: str) -> Refusal | None:
        """The refusal answering the request `cause_event_id`, if projected."""
        ...

    async def reservations(self, transaction_id: str) -> list[Reservation]:
        """Every reservation of the basket, by code, released ones too (a release repeated
        answers as the first did)."""
        ...

    async def activity(
        self,
        code: str,
        promotion_id: str,
        at: datetime,
        *,
        member_id: str | None = None,
        transaction_id: str | None = None,
    ) -> CodeActivity:
        """The code's and its promotion's uses, live reservations and link at `at`; asked for
        a basket (`transaction_id`) of a member, also the member's and the basket's own."""
        ...

    async def member_reservations(self, member_id: str, since: datetime) -> list[Reservation]:
        """The member's reservations, lapsed after `since`, whose basket was not bought yet
        (the worker's holds end with their basket's purchase, whatever it used: `held_uses.
        used`; a released one is not: `PromoCodeUnreserved`)."""
        ...

    async def linked_codes(self, member_id: str, at: datetime) -> list[str]:
        """The codes linked to the member through this API that their next purchase has not
        used up yet (it adds them: docs/adr/0037-codes-that-unlock-an-offer.md), those linked
        by `at`, a basket's time (`rules.codes.link.with_linked`: a backdated basket does not
        carry a link asked for after it)."""
        ...

    async def offer_reservation(self, request_event_id: str) -> OfferReservationAnswer | None:
        """The answer to the offer reservation request `request_event_id`, if projected."""
        ...

    async def offer_reservations(self, transaction_id: str) -> list[OfferReservationAnswer]:
        """The basket's reserved offers, one per offer (its latest answer), by offer."""
        ...

    async def locked_offers(self, transaction_id: str) -> list[LockedOffer]:
        """The reward-store offers locked to the basket (their lock lapsed or not)."""
        ...

    async def uses(self, code: str, *, limit: int, after: UseCursor | None) -> list[CodeUse]:
        """At most `limit` uses of `code`, newest first, after the cursor."""
        ...


_LINK_OUTCOME = """
SELECT command_id, request_event_id, accepted, reason, detail, decided_at
FROM request_outcomes
WHERE member_id = %s AND command_id = %s AND request_type = %s
"""

_LINK_RECORD = """
SELECT member_id, command_id, body_digest, request_event_id, code, mode, received_at,
    claimed_at, written_at
FROM promo_code_link_requests WHERE member_id = %s AND command_id = %s
"""

_CLAIM = """
INSERT INTO promo_code_link_requests (member_id, command_id, body_digest, request_event_id,
    code, mode, received_at, claimed_at, written_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, NULL)
ON CONFLICT (member_id, command_id) DO NOTHING
RETURNING 1
"""

# A basket's reservations; `released` true: those given back too (a release repeated finds
# what the first gave back and answers the same).
_RESERVATION = """
SELECT code, transaction_id, promotion_id, member_id, discount_cents, reserved_until,
    EXISTS (SELECT 1 FROM promo_code_uses u
        WHERE u.code = r.code AND u.transaction_id = r.transaction_id) AS committed
FROM promo_code_reservations r
WHERE transaction_id = %s AND (%s::text IS NULL OR code = %s) AND (%s OR released_at IS NULL)
ORDER BY code
"""

_REFUSAL = """
SELECT code, transaction_id, reason, detail, cause_event_id
FROM promo_code_refusals WHERE cause_event_id = %s
ORDER BY event_id LIMIT 1
"""

# A reservation counts while it has not lapsed, was not released and no use committed it (the
# asking basket's own apart: asking again extends it); a link made through this API waits for
# the member's next purchase with the code.
_ACTIVITY = """
WITH live AS (
    SELECT r.code, r.transaction_id, r.member_id, r.reserved_until
    FROM promo_code_reservations r
    WHERE r.promotion_id = %(promotion_id)s AND r.reserved_until > %(at)s
        AND r.released_at IS NULL
        AND NOT EXISTS (SELECT 1 FROM promo_code_uses u
            WHERE u.code = r.code AND u.transaction_id = r.transaction_id)
)
SELECT
    (SELECT count(*) FROM promo_code_uses WHERE code = %(code)s) AS code_uses,
    (SELECT count(*) FROM promo_code_uses WHERE promotion_id = %(promotion_id)s)
        AS promotion_uses,
    (SELECT count(*) FROM live WHERE code = %(code)s
        AND transaction_id IS DISTINCT FROM %(tx)s::text) AS code_reservations,
    (SELECT count(*) FROM live WHERE transaction_id IS DISTINCT FROM %(tx)s::text)
        AS promotion_reservations,
    (SELECT l.member_id FROM promo_code_link_requests l
        JOIN request_outcomes o ON o.member_id = l.member_id AND o.command_id = l.command_id
            AND o.request_type = %(kind)s AND o.accepted
        WHERE l.code = %(code)s AND NOT EXISTS (SELECT 1 FROM promo_code_uses u
            WHERE u.code = l.code AND u.member_id = l.member_id
                AND u.used_at >= o.decided_at - %(skew)s)
        ORDER BY o.decided_at DESC LIMIT 1) AS linked_member_id,
    (SELECT count(*) FROM promo_code_uses WHERE promotion_id = %(promotion_id)s
        AND member_id = %(member_id)s::text) AS member_uses,
    (SELECT count(*) FROM live WHERE member_id = %(member_id)s::text
        AND transaction_id IS DISTINCT FROM %(tx)s::text) AS member_reservations,
    (SELECT reserved_until FROM live WHERE code = %(code)s AND transaction_id = %(tx)s::text)
        AS basket_reserved_until
"""

# The codes linked to a member through this API that their next purchase has not used up yet
# (used up: a use or a refusal of the code for the member since the link, whatever it said).
_LINKED = """
SELECT DISTINCT l.code FROM promo_code_link_requests l
JOIN request_outcomes o ON o.member_id = l.member_id AND o.command_id = l.command_id
    AND o.request_type = %(kind)s AND o.accepted
WHERE l.member_id = %(member_id)s AND l.received_at - %(skew)s <= %(at)s
    AND NOT EXISTS (SELECT 1 FROM promo_code_uses u
        WHERE u.code = l.code AND u.member_id = l.member_id
            AND u.used_at >= o.decided_at - %(skew)s)
    AND NOT EXISTS (SELECT 1 FROM promo_code_refusals r
        WHERE r.code = l.code AND r.member_id = l.member_id
            AND r.refused_at >= o.decided_at - %(skew)s)
ORDER BY l.code
"""

_MEMBER_RESERVATIONS = """
SELECT r.code, r.transaction_id, r.promotion_id, r.member_id, r.discount_cents, r.reserved_until
FROM promo_code_reservations r
WHERE r.member_id = %(member_id)s AND r.reserved_until > %(since)s AND r.released_at IS NULL
    AND NOT EXISTS (SELECT 1 FROM member_transactions t
        WHERE t.member_id = r.member_id AND t.transaction_id = r.transaction_id)
ORDER BY r.transaction_id, r.code
"""

_OFFER_RESERVATION = """
SELECT request_event_id, offer_id, transaction_id, reserved, reserved_until, reason
FROM offer_use_reservations WHERE request_event_id = %s
"""

_LOCKED_OFFERS = """
SELECT member_id, issued_offer_id FROM member_issued_offers
WHERE transaction_id = %s AND status = 'LOCKED'
ORDER BY member_id, issued_offer_id
"""

_OFFER_RESERVATIONS = """
SELECT DISTINCT ON (offer_id) request_event_id, offer_id, transaction_id, reserved,
    reserved_until, reason
FROM offer_use_reservations WHERE transaction_id = %s AND reserved
ORDER BY offer_id, answered_at DESC
"""

_USES = """
SELECT event_id, promotion_id, code, member_id, transaction_id, transaction_number, store_id,
    discount_cents, use_number, used_at
FROM promo_code_uses
WHERE code = %(code)s AND (%(at)s::timestamptz IS NULL OR (used_at, event_id) < (%(at)s, %(id)s))
ORDER BY used_at DESC, event_id DESC LIMIT %(limit)s
"""


class PostgresCodeStore:
    """`CodeStore` over the projection tables (`read`, read-only: every read here is one
    statement, so the app gives its statement pool, in autocommit) and the API's key table
    (`write`)."""

    def __init__(self, read: AsyncConnectionPool[Any], write: AsyncConnectionPool[Any]) -> None:
        self.read = read
        self.write = write

    async def _rows(
        self, query: Query, params: Any, pool: AsyncConnectionPool[Any] | None = None
    ) -> list[dict[str, Any]]:
        async with (pool or self.read).connection() as conn, conn.cursor(row_factory=dict_row) as c:
            await c.execute(query, params)
            rows: list[dict[str, Any]] = await c.fetchall()
            return rows

    async def link_outcome(self, member_id: str, command_id: str) -> LinkOutcome | None:
        params = (member_id, command_id, RequestType.PROMO_CODE_LINK.value)
        rows = await self._rows(_LINK_OUTCOME, params)
        return LinkOutcome(**rows[0]) if rows else None

    async def link_record(self, member_id: str, command_id: str) -> LinkRecord | None:
        # Through the write pool: a record written a moment ago by this API must be seen.
        rows = await self._rows(_LINK_RECORD, (member_id, command_id), self.write)
        return LinkRecord(**rows[0]) if rows else None

    async def claim_link(self, record: LinkRecord) -> LinkRecord | None:
        while True:
            async with self.write.connection() as conn:
                values = (
                    record.member_id, record.command_id, record.body_digest,
                    record.request_event_id, record.code, record.mode, record.received_at,
                    record.claimed_at,
                )  # fmt: skip
                inserted = await (await conn.execute(_CLAIM, values)).fetchone()
            if inserted is not None:
                return None
            earlier = await self.link_record(record.member_id, record.command_id)
            if earlier is not None:
                return earlier
            # Released between the two statements (its writer failed to write): claim afresh.

    async def reclaim_link(
        self, member_id: str, command_id: str, seen_claimed_at: datetime, at: datetime
    ) -> bool:
        async with self.write.connection() as conn:
            taken = await (
                await conn.execute(
                    "UPDATE promo_code_link_requests SET claimed_at = %s"
                    " WHERE member_id = %s AND command_id = %s AND written_at IS NULL"
                    " AND claimed_at = %s RETURNING 1",
                    (at, member_id, command_id, seen_claimed_at),
                )
            ).fetchone()
        return taken is not None

    async def link_written(self, member_id: str, command_id: str, at: datetime) -> None:
        async with self.write.connection() as conn:
            await conn.execute(
                "UPDATE promo_code_link_requests SET written_at = %s"
                " WHERE member_id = %s AND command_id = %s AND written_at IS NULL",
                (at, member_id, command_id),
            )

    async def release_link(self, member_id: str, command_id: str) -> None:
        async with self.write.connection() as conn:
            await conn.execute(
                "DELETE FROM promo_code_link_requests"
                " WHERE member_id = %s AND command_id = %s AND written_at IS NULL",
                (member_id, command_id),
            )

    async def reservation(self, code: str, transaction_id: str) -> Reservation | None:
        rows = await self._rows(_RESERVATION, (transaction_id, code, code, False))
        return Reservation(**rows[0]) if rows else None

    async def refusal(self, cause_event_id: str) -> Refusal | None:
        rows = await self._rows(_REFUSAL, (cause_event_id,))
        return Refusal(**rows[0]) if rows else None

    async def reservations(self, transaction_id: str) -> list[Reservation]:
        rows = await self._rows(_RESERVATION, (transaction_id, None, None, True))
        return [Reservation(**row) for row in rows]

    async def activity(
        self,
        code: str,
        promotion_id: str,
        at: datetime,
        *,
        member_id: str | None = None,
        transaction_id: str | None = None,
    ) -> CodeActivity:
        params = {
            "code": code,
            "promotion_id": promotion_id,
            "at": at,
            "member_id": member_id,
            "tx": transaction_id,
            "kind": RequestType.PROMO_CODE_LINK.value,
            "skew": link.CLOCK_SKEW,
        }
        (row,) = await self._rows(_ACTIVITY, params)
        return CodeActivity(**row)

    async def member_reservations(self, member_id: str, since: datetime) -> list[Reservation]:
        params = {"member_id": member_id, "since": since}
        return [Reservation(**row) for row in await self._rows(_MEMBER_RESERVATIONS, params)]

    async def linked_codes(self, member_id: str, at: datetime) -> list[str]:
        # A use stamped a little before the link's time still uses it up, and a basket a
        # little before it carries it, as in the worker (`rules.codes.link.with_linked`): the
        # till and the purchase agree.
        params = {"member_id": member_id, "kind": RequestType.PROMO_CODE_LINK.value,
                  "skew": link.CLOCK_SKEW, "at": at}  # fmt: skip
        return [row["code"] for row in await self._rows(_LINKED, params)]

    async def offer_reservation(self, request_event_id: str) -> OfferReservationAnswer | None:
        rows = await self._rows(_OFFER_RESERVATION, (request_event_id,))
        return OfferReservationAnswer(**rows[0]) if rows else None

    async def offer_reservations(self, transaction_id: str) -> list[OfferReservationAnswer]:
        rows = await self._rows(_OFFER_RESERVATIONS, (transaction_id,))
        return [OfferReservationAnswer(**row) for row in rows]

    async def locked_offers(self, transaction_id: str) -> list[LockedOffer]:
        rows = await self._rows(_LOCKED_OFFERS, (transaction_id,))
        return [LockedOffer(**row) for row in rows]

    async def uses(self, code: str, *, limit: int, after: UseCursor | None) -> list[CodeUse]:
        params = {
            "code": code,
            "limit": limit,
            "at": after[0] if after else None,
            "id": after[1] if after else None,
        }
        return [CodeUse(**row) for row in await self._rows(_USES, params)]
