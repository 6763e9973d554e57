"""Promo code look-up for member care (seed 001): a code's status, its promotion, limits and
uses left, the member it is linked to, and its redemptions (member or anonymous, transaction,
store, time, discount) page by page: the answer of `GET /v1/promo-codes/{code}`, from the same
module (`projections.api.code_status`). A look-up is audited: codes are guessable secrets.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from processors.rules.codes.promotions import normalised
from projections.api.code_status import code_status, decode_cursor
from projections.api.errors import BadParameterError
from projections.console.pages import audit_log, now, render
from projections.console.roles import Area
from projections.console.sessions import Staff, allowed

router = APIRouter(include_in_schema=False)
Agent = Annotated[Staff, Depends(allowed(Area.MEMBER_CARE))]
PAGE = 20
MARKET = re.compile(r"^[A-Z0-9_]{2,16}$")
MARKET_ERROR = "A market is 2 to 16 capital letters, digits or underscores (e.g. CA)."


@router.get("/codes")
async def code_page(
    request: Request,
    staff: Agent,
    code: Annotated[str, Query(max_length=128)] = "",
    market: Annotated[str, Query(max_length=16)] = "CA",
    cursor: Annotated[str, Query(max_length=256)] = "",
) -> Response:
    code, market = normalised(code.strip()), market.strip().upper()
    context: dict[str, Any] = {"code": code, "market": market, "status": None, "error": ""}
    if not code:
        return render(request, "codes/code.html", staff, **context)
    if not MARKET.fullmatch(market):
        context["error"] = MARKET_ERROR
        return render(request, "codes/code.html", staff, 422, **context)
    source = request.app.state.config_source
    if not source.ready.is_set():
        context["error"] = f"The promotions are not loaded yet ({source.status}): try again."
        return render(request, "codes/code.html", staff, 503, **context)
    try:
        after = decode_cursor(cursor or None)
    except BadParameterError as refused:
        context["error"] = f"That page link is not valid ({refused.reason}): start again."
        return render(request, "codes/code.html", staff, 422, **context)
    at = now(request)
    status = await code_status(
        source.config, request.app.state.code_store, code, market, now=at, limit=PAGE, after=after
    )
    await audit_log(request).record(
        staff, "look up code", at=at, subject=f"code {market}/{code}",
        outcome="done" if status is not None else "unknown code",
    )  # fmt: skip
    if status is None:
        context["error"] = f"No promotion of market {market} issued the code {code}."
        return render(request, "codes/code.html", staff, 404, **context)
    context["status"] = status
    return render(request, "codes/code.html", staff, **context)
