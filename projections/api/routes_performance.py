"""`GET /v1/offers/{offer_id}/performance`: test vs control for analysts and staff (DESIGN.md
§5.16, docs/adr/0015-offer-performance.md).

An adapter over `offer_performance_rows()`, the function behind the `offer_performance` view
analysts query: the rates, per-member figures and uplifts are computed there, once, and read
here as they are. Counts, cents and points
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

from projections.api.auth import Principal, staff_principal
from projections.api.errors import NotFoundError, refusals
from projections.api.identifiers import OfferIdPath
from projections.api.schemas import Body, Instant

router = APIRouter(prefix="/v1/offers", tags=["offers"])

_FIGURES = """SELECT o.program_id, o.market, o.starts_at, o.ends_at, o.withdrawn_at,
        o.control_share_percent, p.members, p.qualifying_members, p.qualifying_rate,
        p.redemptions, p.redemptions_per_member, p.visits, p.visits_per_member, p.spend_cents,
        p.spend_per_member_cents, p.points_due, p.points_awarded, p.discount_cents,
        p.qualifying_rate_uplift, p.redemptions_per_member_uplift, p.visits_per_member_uplift,
        p.spend_per_member_uplift
    FROM offers o JOIN offer_performance_rows() p USING (offer_id)
    WHERE o.offer_id = %s
    ORDER BY p.in_control_group"""
"""The `offer_performance` view's own figures (the one home of the arithmetic: rates and
uplifts rounded once, in SQL), test first."""

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


def _connection(request: Request) -> AbstractAsyncContextManager[AsyncConnection[Any]]:
    pool = request.app.state.pool
    return pool.connection()  # type: ignore[no-any-return]


_GROUP_FIELDS = tuple(GroupPerformance.model_fields)


def _group(figures: tuple[Any, ...]) -> GroupPerformance:
    return GroupPerformance(**dict(zip(_GROUP_FIELDS, figures, strict=True)))


@router.get(
    "/{offer_id}/performance",
    summary="Test vs control for one offer",
    responses=refusals(
        400,
        401,
        403,
        404,
        414,
        503,
        described={
            400: "invalid_parameter: the offer id is not 3–128 ASCII letters, digits or "
            "underscores",
            403: "forbidden: offer performance needs a staff token",
            404: "not_found: no offer of that id was ever published",
            503: "database_unavailable: retry after `Retry-After`",
        },
    ),
)
async def read_performance(
    request: Request,
    offer_id: OfferIdPath,
    _: Annotated[Principal, Depends(staff_principal)],
) -> OfferPerformance:
    """Both groups' members, qualifying rate, redemptions, visits and spend per member, points
    and discounts, and the uplift of test over control."""
    async with _connection(request) as conn:
        cursor = await conn.execute(_FIGURES, (offer_id,))
        rows = await cursor.fetchall()
    if not rows:
        raise NotFoundError(f"no offer '{offer_id}'")
    test_row, control_row = rows
    test, control = _group(test_row[6:18]), _group(control_row[6:18])
    program_id, market, starts_at, ends_at, withdrawn_at, share = test_row[:6]
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
        uplift=Uplift(**dict(zip(Uplift.model_fields, test_row[18:], strict=True))),
    )
