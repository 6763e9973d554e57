"""What the offer pages read from the projection: the catalogue (`offers`), audience sizes
(`offer_audience`) and what each offer has used of its limits (`offer_performance`, the test
group: control members are never paid). Read-only; the clock is the caller's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool

ALERT_SHARE_LEFT = 0.05
"""Under 5 % of a budget or of the total uses left, the page raises an alert."""

STATUSES = ("scheduled", "live", "ended", "withdrawn", "closed")

_ROWS = """SELECT o.offer_id, o.program_id, o.market, o.rank, o.starts_at, o.ends_at,
        CASE WHEN o.withdrawn_at IS NOT NULL THEN 'withdrawn'
             WHEN o.closed_at IS NOT NULL THEN 'closed'
             WHEN %(now)s < o.starts_at THEN 'scheduled'
             WHEN %(now)s >= o.ends_at THEN 'ended'
             ELSE 'live' END AS status,
        (SELECT count(*) FROM offer_audience a WHERE a.offer_id = o.offer_id) AS audience,
        coalesce(u.points_awarded, 0) AS points_awarded, coalesce(u.uses, 0) AS uses,
        (o.definition->'usage'->>'budget_points_max')::bigint AS budget_points_max,
        (o.definition->'usage'->>'uses_total_max')::bigint AS uses_total_max,
        o.definition->'localized_copy'->0->>'headline' AS headline
    FROM offers o
    -- Every member's uses, targeted or not (a mass offer has no audience rows, and the
    -- performance figures, which compare audiences, showed it unused: found by a user trial);
    -- control members are paid nothing and use nothing of the caps.
    LEFT JOIN LATERAL (
        SELECT count(*) AS uses, sum(oc.points_awarded)::bigint AS points_awarded
        FROM offer_completions oc WHERE oc.offer_id = o.offer_id AND NOT oc.in_control_group
    ) u ON true
    WHERE (%(offer_id)s::text IS NULL OR o.offer_id = %(offer_id)s)
      AND (%(market)s::text IS NULL OR o.market = %(market)s)
      AND (%(text)s::text IS NULL OR o.offer_id ILIKE '%%' || %(text)s || '%%')"""

_FILTERED = f"""SELECT * FROM ({_ROWS}) r
    WHERE (%(status)s::text IS NULL OR status = %(status)s) ORDER BY rank, offer_id"""  # noqa: S608 - constants only


_PROFILE = """SELECT first_name, last_name, preferred_locale, province
    FROM members WHERE member_id = %s AND status = 'ACTIVE'"""


@dataclass(frozen=True)
class Progress:
    """How much of one limit is used."""

    used: int
    limit: int | None

    @property
    def share_left(self) -> float | None:
        if not self.limit:
            return None
        return max(self.limit - self.used, 0) / self.limit

    @property
    def is_alert(self) -> bool:
        """Less than 5 % left."""
        left = self.share_left
        return left is not None and left < ALERT_SHARE_LEFT

    @property
    def percent_used(self) -> int:
        left = self.share_left
        return 0 if left is None else round((1 - left) * 100)


@dataclass(frozen=True)
class OfferRow:
    """One offer of the list."""

    offer_id: str
    program_id: str
    market: str
    rank: int
    starts_at: datetime
    ends_at: datetime
    status: str
    audience: int
    points_awarded: int
    uses: int
    budget_points_max: int | None
    uses_total_max: int | None
    headline: str | None

    @property
    def is_evergreen(self) -> bool:
        return self.ends_at.year >= 3001

    @property
    def budget(self) -> Progress:
        return Progress(self.points_awarded, self.budget_points_max)

    @property
    def total_uses(self) -> Progress:
        return Progress(self.uses, self.uses_total_max)


class OfferQueries:
    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self.pool = pool

    async def offers(
        self,
        *,
        now: datetime,
        status: str | None = None,
        market: str | None = None,
        text: str | None = None,
        offer_id: str | None = None,
    ) -> list[OfferRow]:
        """The offers that match, by rank then id; `status` judged at `now`."""
        params = {"now": now, "market": market, "text": text, "offer_id": offer_id}
        async with self.pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row(OfferRow))
            await cursor.execute(_FILTERED, {**params, "status": status})
            rows: list[OfferRow] = await cursor.fetchall()
            return rows

    async def member_profile(self, member_id: str) -> dict[str, str]:
        """What the members projection knows of a member's profile ({} when unknown)."""
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_PROFILE, (member_id,))).fetchone()
        names = ("first_name", "last_name", "preferred_locale", "province")
        return {} if row is None else {k: v for k, v in zip(names, row, strict=True) if v}

    async def definition(self, offer_id: str) -> dict[str, Any] | None:
        async with self.pool.connection() as conn:
            row = await (
                await conn.execute("SELECT definition FROM offers WHERE offer_id = %s", (offer_id,))
            ).fetchone()
        return None if row is None else dict(row[0])
