"""The rewards catalogue for member care: each reward for sale in a market with its cost,
availability and stock, `low` and `out` as the API's catalogue says them (`routes_rewards.
stock_of` over `reward_store.catalogue`: the same rows, the same rule)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from projections.api.routes_rewards import LOW_STOCK_BELOW, copy_in, stock_of
from projections.console.pages import now, render
from projections.console.roles import Area
from projections.console.routes_codes import MARKET, MARKET_ERROR
from projections.console.sessions import Staff, allowed

router = APIRouter(include_in_schema=False)
Agent = Annotated[Staff, Depends(allowed(Area.MEMBER_CARE))]


@router.get("/rewards")
async def catalogue_page(
    request: Request, staff: Agent, market: Annotated[str, Query(max_length=16)] = "CA"
) -> Response:
    market = market.strip().upper()
    if not MARKET.fullmatch(market):
        return render(
            request, "rewards/catalogue.html", staff, 422,
            market=market, rewards=[], error=MARKET_ERROR,
        )  # fmt: skip
    rows = await request.app.state.reward_store.catalogue(market, now(request))
    rewards = [(row, copy_in(row.localized_copy, "en"), stock_of(row)) for row in rows]
    return render(
        request, "rewards/catalogue.html", staff,
        market=market, rewards=rewards, error="", low_below=LOW_STOCK_BELOW,
    )  # fmt: skip
