"""Commands the API answers with their decision (ADR 22): the Idempotency-Key is claimed in an
API-owned table before the request is written, so one key writes one request. What the
endpoints that work this way (reward redemptions, promo code links) share: the claim's
reclaim delay, the 422 for a key reused with another body, writing a claimed request, and the
answer that points at its status URL."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import psycopg
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from processors.base.logs import get_logger
from processors.contract.notifications import MessagePosted
from processors.contract.redemptions import PromoCodeLinkRequested, RewardRedemptionRequested
from projections.api.commands import CommandSink, CommandUnavailableError
from projections.api.errors import ApiError

log = get_logger(__name__)

UNWRITTEN_RECLAIM_AFTER = timedelta(seconds=30)
"""A claimed key whose write was never confirmed for this long is written again by a repeat:
three times the command sink's acknowledgement timeout, so a write in progress is not."""


class KeyReusedError(ApiError):
    """422: the Idempotency-Key was used before with another body (IETF Idempotency-Key)."""

    def __init__(self, command_id: str, by: str = "this member") -> None:
        super().__init__(
            422,
            "idempotency_key_reused",
            f"the Idempotency-Key '{command_id}' was used for another request by {by}: "
            "a key names one request; use a new key for a new request",
            parameter="Idempotency-Key",
        )


ClaimedRequest = RewardRedemptionRequested | PromoCodeLinkRequested
"""The requests written under a member's claimed key (`key` defaults to theirs)."""


async def write_claimed(
    sink: CommandSink,
    event: ClaimedRequest | MessagePosted,
    *,
    release: Callable[[str, str], Awaitable[object]],
    written: Callable[[str, str, datetime], Awaitable[object]],
    now: datetime,
    key: tuple[str, str] | None = None,
) -> None:
    """Write a claimed request. If the write fails, the claim is released (a retry starts
    over) and the 503 is raised; once written, the claim is marked written. A failure to mark
    it is only logged: the request is written all the same and its answer is coming, and a
    repeat that writes it again later is a repeat to the worker (or, a message, kept once by
    the projection). `key`: whose key and which (default: the request's member and command
    id; an inbox message's poster and key)."""
    if key is None:
        assert not isinstance(event, MessagePosted), "a message names its poster's key"
        key = (event.member_id, event.command_id)
    try:
        await sink.send(event)
    except CommandUnavailableError:
        with contextlib.suppress(psycopg.Error):  # kept: a repeat reclaims it later
            await release(*key)
        raise
    try:
        await written(*key, now)
    except psycopg.Error as error:
        log.warning("claims.written_not_recorded", request=type(event).__name__,
                    error=repr(error)[:300])  # fmt: skip


def located(status: int, body: BaseModel, status_url: str) -> JSONResponse:
    """`body` with `status`, and where its status can be read again in `Location`."""
    return JSONResponse(
        body.model_dump(mode="json"), status_code=status, headers={"Location": status_url}
    )
