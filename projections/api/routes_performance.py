"""`GET /v1/offers/{offer_id}/performance`: test vs control for analysts and staff (DESIGN.md
§5.16, docs/adr/0015-offer-performance.md).

An adapter over the `offer_member_activity` view: one statement sums each group of the offer,
and `projections.writers.performance` turns the sums into rates, per-member figures and uplifts
(the same arithmetic as the `offer_performance` view analysts query). Counts, cents and points
are integers; ratios are decimals as strings with 4 places (the contract's JSON form), null
when a group is empty. Staff tokens only; an offer never published is 404.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from psycopg import AsyncConnection
from pydantic import Field

from projections.api.auth import Principal, Role, read_principal
from projections.api.errors import ForbiddenError, NotFoundError
from projections.api.schemas import Body, Instant, OfferIdPath
from projections.writers.performance import ratio, uplift

router = APIRouter(prefix="/v1/offers", tags=["offers"])

_GROUPS = """SELECT o.program_id, o.market, o.starts_at, o.ends_at, o.withdrawn_at,
        o.control_share_percent, k.in_control_group,
        count(a.member_id), count(a.member_id) FILTER (WHERE a.completions > 0),
        coalesce(sum(a.completions), 0)::bigint, coalesce(sum(a.visits), 0)::bigint,
        coalesce(sum(a.spend_cents), 0)::bigint, coalesce(sum(a.points_due), 0)::bigint,
        coalesce(sum(a.points_awarded), 0)::bigint, coalesce(sum(a.discount_cents), 0)::bigint
    FROM offers o
    CROSS JOIN (VALUES (false), (true)) AS k (in_control_group)
    LEFT JOIN offer_member_activity a
        ON a.offer_id = o.offer_id AND a.in_control_group = k.in_control_group
    WHERE o.offer_id = %s
    GROUP BY o.offer_id, k.in_control_group
    ORDER BY k.in_control_group"""

Ratio = Annotated[
    Decimal | None, Field(description="4 decimal places, as a string; null for an empty group.")
]


class GroupPerformance(Body):
    """One group's figures: targeted members, what they completed, bought and were paid."""

    members: int
    qualifying_members: int = Field(description="Members who completed the offer at least once.")
    qualifying_rate: Ratio
    redemptions: int = Field(description="Completions (uses) of the offer.")
    redemptions_per_member: Ratio
    visits: int = Field(
        description="Purchases in the offer's market and window, once targeted, not refunded in "
        "full."
    )
    visits_per_member: Ratio
    spend_cents: int = Field(
        description="Those purchases' net line amounts (after discounts), less their refunds."
    )
    spend_per_member_cents: Ratio
    points_due: int = Field(description="Points the completions yield; for control, would have.")
    points_awarded: int
    discount_cents: int


class Uplift(Body):
    """Test relative to control, (test - control) / control, per member; null when a group is
    empty or the control figure is 0."""

    qualifying_rate: Ratio
    redemptions_per_member: Ratio
    visits_per_member: Ratio
    spend_per_member: Ratio


class OfferPerformance(Body):
    """Test vs control for one offer."""

    offer_id: str
    program_id: str
    market: str
    starts_at: Instant
    ends_at: Instant = Field(description="After accepted extensions; 3001-01-01: no end.")
    withdrawn_at: Instant | None
    control_share_percent: int
    test: GroupPerformance
    control: GroupPerformance
    uplift: Uplift


def staff_principal(principal: Annotated[Principal, Depends(read_principal)]) -> Principal:
    """The caller, once known to hold a staff token: performance is an operational view."""
    if principal.role is not Role.STAFF:
        raise ForbiddenError("offer performance needs a staff token")
    return principal


def _connection(request: Request) -> AbstractAsyncContextManager[AsyncConnection[Any]]:
    pool = request.app.state.pool
    return pool.connection()  # type: ignore[no-any-return]


def group(sums: tuple[int, ...]) -> GroupPerformance:
    """A group's figures from its sums: members, qualifying, redemptions, visits, spend,
    points due, points awarded, discount."""
    members, qualifying, redemptions, visits, spend, due, awarded, discount = sums
    return GroupPerformance(
        members=members,
        qualifying_members=qualifying,
        qualifying_rate=ratio(qualifying, members),
        redemptions=redemptions,
        redemptions_per_member=ratio(redemptions, members),
        visits=visits,
        visits_per_member=ratio(visits, members),
        spend_cents=spend,
        spend_per_member_cents=ratio(spend, members),
        points_due=due,
        points_awarded=awarded,
        discount_cents=discount,
    )


def compare(test: GroupPerformance, control: GroupPerformance) -> Uplift:
    """The uplift of each per-member figure of `test` over `control`."""

    def of(name: str) -> Decimal | None:
        return uplift(
            (getattr(test, name), test.members), (getattr(control, name), control.members)
        )

    return Uplift(
        qualifying_rate=of("qualifying_members"),
        redemptions_per_member=of("redemptions"),
        visits_per_member=of("visits"),
        spend_per_member=of("spend_cents"),
    )


@router.get("/{offer_id}/performance", summary="Test vs control for one offer")
async def read_performance(
    request: Request,
    offer_id: OfferIdPath,
    _: Annotated[Principal, Depends(staff_principal)],
) -> OfferPerformance:
    """Both groups' members, qualifying rate, redemptions, visits and spend per member, points
    and discounts, and the uplift of test over control."""
    async with _connection(request) as conn:
        cursor = await conn.execute(_GROUPS, (offer_id,))
        rows = await cursor.fetchall()
    if not rows:
        raise NotFoundError(f"no offer '{offer_id}'")
    test, control = (group(tuple(row[7:])) for row in rows)
    program_id, market, starts_at, ends_at, withdrawn_at, share = rows[0][:6]
    return OfferPerformance(
        offer_id=offer_id,
        program_id=program_id,
        market=market,
        starts_at=starts_at,
        ends_at=ends_at,
        withdrawn_at=withdrawn_at,
        control_share_percent=share,
        test=test,
        control=control,
        uplift=compare(test, control),
    )
