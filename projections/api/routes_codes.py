"""The promo code endpoints (seed 001; docs/adr/0026-promo-code-api.md):

- `POST /v1/promotions/code/link` (linkCode): a physical code linked to a member, applied by
  itself at their next checkout. A command endpoint that waits for the decision like the
  redemption endpoint (ADR 22), with the same Idempotency-Key protocol over its own key table:
  201 linked; 404 unknown_code; 409 code_already_linked (or a repeat: the original outcome);
  422 with the reason; 202 with the status URL when the wait runs out.
- `GET /v1/members/{member_id}/code-links/{command_id}`: that link's state later.
- `GET /v1/promo-codes/{code}?market=`: a code as member care sees it (staff).
- `DELETE /v1/carts/{transaction_id}/reservations`: the till gives its basket's reserved codes
  back (`PromoCodeReservationReleased`).
Failed code validations are counted by the guessing throttle (`throttle`), 429 past its limit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from processors.base.logs import get_logger
from processors.contract.base import Event, Market
from processors.contract.common import Source
from processors.contract.internal import PromoCodeReservationReleased
from processors.contract.outcomes import RejectionReason
from processors.contract.redemptions import (
    IssuedOfferUnlockRequested,
    PromoCodeLinkRequested,
    RequestType,
)
from processors.rules import identity
from processors.rules.arithmetic import derived_id
from processors.rules.codes.promotions import normalised
from projections.api import offer_reservations
from projections.api.answers import outcome_key
from projections.api.auth import (
    MemberId,
    Principal,
    read_principal,
    staff_principal,
    till_principal,
)
from projections.api.claims import (
    UNWRITTEN_RECLAIM_AFTER,
    KeyReusedError,
    located,
    write_claimed,
)
from projections.api.code_schemas import (
    LINK_EXAMPLE,
    LINK_PENDING,
    LINK_REJECTED,
    STATUS_EXAMPLE,
    CodeLink,
    CodeStatus,
    LinkRequest,
    Released,
    ReleasedCode,
)
from projections.api.code_status import code_status as read_status
from projections.api.code_status import decode_cursor
from projections.api.code_store import CodeStore, LinkOutcome, LinkRecord
from projections.api.commands import CommandId, CommandSink
from projections.api.errors import (
    ApiError,
    ErrorBody,
    ForbiddenError,
    NotFoundError,
    refusals,
)
from projections.api.identifiers import ApiId
from projections.api.member_requests import heard_outcome
from projections.api.routes_carts import ConfigSource, ConfigUnavailableError
from projections.api.throttle import Throttle, caller_keys
from projections.api.wakeups import Wakeups, member_key

log = get_logger(__name__)

router = APIRouter(tags=["promo codes"])

LINK_ROUTE = "/v1/promotions/code/link"
STATUS_ROUTE = "/v1/promo-codes/{code}"
PAGE_MAX = 50

_STATUS_OF = {
    RejectionReason.unknown_code.value: 404,
    RejectionReason.code_already_linked.value: 409,
}
"""A rejected link's HTTP status when it is not 422."""
_INVALID_CODE = {
    RejectionReason.unknown_code.value,
    RejectionReason.code_expired.value,
    RejectionReason.code_not_yet_valid.value,
}
"""Rejections the guessing throttle counts: the code itself is not valid now."""


def link_request_id(member_id: str, command_id: str) -> str:
    """The PromoCodeLinkRequested's event id: the same for every write of one key."""
    return derived_id("promo-code-link-requested", member_id, command_id)


def link_status_url(member_id: str, command_id: str) -> str:
    return f"/v1/members/{quote(member_id, safe='')}/code-links/{quote(command_id, safe='')}"


def _throttle_keys(request: Request, principal: Principal, member_id: str | None) -> list[str]:
    address = request.client.host if request.client is not None else None
    return caller_keys(member_id=member_id, subject=principal.subject, address=address)


def heard_link(events: Sequence[Event]) -> LinkOutcome | None:
    """The link's outcome heard on Kafka, as `request_outcomes` will hold it."""
    found = heard_outcome(events)
    if found is None:
        return None
    return LinkOutcome(
        command_id=found.command_id, request_event_id=found.request_event_id,
        accepted=found.accepted, reason=found.reason, detail=found.detail,
        decided_at=found.decided_at,
    )  # fmt: skip


def link_body(
    member_id: str, command_id: str, record: LinkRecord | None, outcome: LinkOutcome | None
) -> CodeLink:
    """The link as the API shows it: pending without an outcome."""
    return CodeLink(
        command_id=command_id,
        member_id=member_id,
        code=record.code if record is not None else "",
        mode=record.mode if record is not None else None,
        request_event_id=outcome.request_event_id if outcome is not None
        else record.request_event_id if record is not None
        else link_request_id(member_id, command_id),
        status="pending" if outcome is None else "linked" if outcome.accepted else "rejected",
        status_url=link_status_url(member_id, command_id),
        reason=outcome.reason if outcome is not None else None,
        detail=outcome.detail if outcome is not None else None,
        decided_at=outcome.decided_at if outcome is not None else None,
    )  # fmt: skip


def _documented(description: str, example: Any, model: Any = CodeLink) -> dict[str, Any]:
    return {
        "model": model,
        "description": description,
        "content": {"application/json": {"example": example}},
    }


_LOCATION = {"Location": {"description": "The status URL.", "schema": {"type": "string"}}}
_THROTTLED = (
    "too_many_requests: more failed code validations in the last minute from this member, "
    "token or address than allowed; retry after `Retry-After`"
)

_LINK_RESPONSES: dict[int | str, Any] = {
    **refusals(
        400, 401, 403, 404, 414, 429, 503,
        described={
            400: "invalid_parameter: missing or invalid Idempotency-Key, or a body without a "
            "valid code, customerId or mode",
            403: "forbidden: a member token for another customer",
            404: "unknown_code: no promotion of the member's markets issued this code",
            429: _THROTTLED,
            503: "commands_unavailable (the request could not be written: retry with the same "
            "key) or database_unavailable; retry after `Retry-After`",
        },
    ),
    201: {**_documented("Linked: the code applies by itself at the member's next checkout.",
                        LINK_EXAMPLE), "headers": _LOCATION},
    202: {**_documented("Written, not decided within the wait: read `status_url` (also in "
                        "`Location`) later.", LINK_PENDING), "headers": _LOCATION},
    409: {
        "model": CodeLink | ErrorBody,
        "description": "code_already_linked: a single-use code linked to another member "
        "(ErrorBody); or a repeat of a key already used with the same body: the original "
        "outcome (CodeLink), nothing written again.",
        "content": {"application/json": {"examples": {
            "code_already_linked": {"value": {
                "error": "code_already_linked", "reason": "ZN34C is linked to another member"}},
            "repeat": {"value": LINK_REJECTED},
        }}},
        "headers": _LOCATION,
    },
    422: _documented(
        "Refused, nothing linked: `error` is the worker's stable reason (code_expired, "
        "code_not_yet_valid, code_exhausted: the code's or the promotion's uses spent or "
        "reserved, limit_reached: the member's uses of the promotion spent, invalid_request, "
        "unknown_member, member_merged) and `reason` its detail; or idempotency_key_reused.",
        {"error": "code_expired", "reason": "ZN34C: its promotion ended at 2026-11-30T00:00:00Z"},
        ErrorBody,
    ),
}  # fmt: skip


@router.post(
    LINK_ROUTE,
    status_code=201,
    response_model=CodeLink,
    summary="Link a physical promo code to a member; it applies by itself at their next "
    "checkout (waits a bounded time for the decision)",
    responses=_LINK_RESPONSES,
)
async def link_code(
    request: Request,
    command_id: CommandId,
    body: LinkRequest,
    principal: Annotated[Principal, Depends(read_principal)],
) -> Any:
    """linkCode (seed 001). A member token links only to its own member; staff to anyone.
    Retrying with the same Idempotency-Key and body is safe: 409 with the original outcome."""
    app = request.app
    member_id = body.customerId
    if not principal.may_read_member(member_id):
        raise ForbiddenError("a member token links codes only to its own member")
    throttle: Throttle = app.state.code_throttle
    now: datetime = app.state.clock()
    keys = _throttle_keys(request, principal, member_id)
    throttle.check(keys, now, route=LINK_ROUTE)
    store: CodeStore = app.state.code_store
    event = PromoCodeLinkRequested(
        event_id=link_request_id(member_id, command_id), occurred_at=now,
        command_id=command_id, member_id=member_id, code=body.code, mode=body.mode,
        source=Source.APP,
    )  # fmt: skip
    mine = LinkRecord(
        member_id=member_id, command_id=command_id,
        body_digest=identity.digest(event, identity.REQUEST), request_event_id=event.event_id,
        code=normalised(body.code), mode=body.mode.value, received_at=now, claimed_at=now,
    )  # fmt: skip
    wakeups: Wakeups = app.state.wakeups
    # Expected before anything is written: the answer may be read before the write returns.
    expected = outcome_key(member_id, RequestType.PROMO_CODE_LINK, command_id)
    with wakeups.expecting(expected) as heard:
        earlier = await store.claim_link(mine)
        if earlier is None:
            await write_claimed(
                app.state.command_sink,
                event,
                release=store.release_link,
                written=store.link_written,
                now=now,
            )
        elif earlier.body_digest != mine.body_digest:
            raise KeyReusedError(command_id)
        elif (
            earlier.written_at is None
            and now - earlier.claimed_at >= UNWRITTEN_RECLAIM_AFTER
            and await store.reclaim_link(member_id, command_id, earlier.claimed_at, now)
        ):
            await write_claimed(
                app.state.command_sink,
                event,
                release=store.release_link,
                written=store.link_written,
                now=now,
            )
        outcome = await wakeups.until(
            member_key(member_id),
            lambda: store.link_outcome(member_id, command_id),
            wait=app.state.decision_wait,
            heard=heard,
            judge=heard_link,
        )
    answer = link_body(member_id, command_id, earlier or mine, outcome)
    if outcome is None:
        return located(202, answer, answer.status_url)
    if earlier is not None:
        return located(409, answer, answer.status_url)
    if outcome.accepted:
        return located(201, answer, answer.status_url)
    reason = outcome.reason or "UNKNOWN"
    if reason in _INVALID_CODE:
        throttle.count(keys, now, route=LINK_ROUTE)
    raise ApiError(_STATUS_OF.get(reason, 422), reason, outcome.detail or reason)


@router.get(
    "/v1/members/{member_id}/code-links/{command_id:path}",
    response_model=CodeLink,
    summary="A promo code link's state: its outcome once decided",
    responses={
        **refusals(
            400,
            401,
            403,
            404,
            414,
            503,
            described={
                403: "forbidden: a member token on another member's path",
                404: "not_found: this member never used that key to link a code",
                503: "database_unavailable: retry after `Retry-After`",
            },
        ),
        200: _documented("Decided: linked, or rejected with the reason.", LINK_EXAMPLE),
        202: _documented("Written, not decided yet: ask again.", LINK_PENDING),
    },
)
async def read_link(
    request: Request,
    member_id: MemberId,
    command_id: Annotated[ApiId, Path(description="The Idempotency-Key the link was made with.")],
) -> Any:
    """200 with the outcome, 202 while it is pending, 404 for a key never used here."""
    store: CodeStore = request.app.state.code_store
    record = await store.link_record(member_id, command_id)
    outcome = await store.link_outcome(member_id, command_id)
    if record is None and outcome is None:
        raise NotFoundError(f"no promo code link '{command_id}' for member '{member_id}'")
    body = link_body(member_id, command_id, record, outcome)
    if outcome is None:
        return JSONResponse(body.model_dump(mode="json"), status_code=202)
    return body


# --- status (member care) ---------------------------------------------------------------------


@router.get(
    STATUS_ROUTE,
    response_model=CodeStatus,
    summary="A promo code's status, its promotion and limits, and each redemption (member care)",
    responses={
        **refusals(
            400, 401, 403, 404, 414, 429, 503,
            described={
                400: "invalid_parameter: a malformed code, market, limit or cursor",
                403: "forbidden: code status needs a staff (member care) token",
                404: "unknown_code: no promotion of this market issued this code",
                429: _THROTTLED,
                503: "config_unavailable: the promotions are not loaded yet; or "
                "database_unavailable",
            },
        ),
        200: _documented("The code's status and a page of its redemptions.", STATUS_EXAMPLE,
                         CodeStatus),
    },
)  # fmt: skip
async def code_status(
    request: Request,
    code: Annotated[ApiId, Path(description="The code; compared upper-cased.")],
    market: Annotated[Market, Query(description="The market the code is a code of.")],
    principal: Annotated[Principal, Depends(staff_principal)],
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX, description="Redemptions per page.")] = 20,
    cursor: Annotated[
        str | None, Field(max_length=256), Query(description="From `next_cursor`.")
    ] = None,
) -> CodeStatus:
    """Status (active, scheduled, reserved, linked, exhausted, expired), the promotion, its
    limits and the uses left, the linked member, and the redemptions, newest first."""
    app = request.app
    now: datetime = app.state.clock()
    throttle: Throttle = app.state.code_throttle
    keys = _throttle_keys(request, principal, None)
    throttle.check(keys, now, route=STATUS_ROUTE)
    source: ConfigSource = app.state.config_source
    if not source.ready.is_set():
        raise ConfigUnavailableError(f"the promotions are not loaded yet: {source.status}")
    code = normalised(code)
    status = await read_status(
        source.config, app.state.code_store, code, market,
        now=now, limit=limit, after=decode_cursor(cursor),
    )  # fmt: skip
    if status is None:
        throttle.count(keys, now, route=STATUS_ROUTE)
        raise ApiError(404, "unknown_code", f"no promotion of market {market} issued {code}")
    return status


# --- the till gives a basket's codes back ------------------------------------------------------


@router.delete(
    "/v1/carts/{transaction_id}/reservations",
    response_model=Released,
    tags=["carts"],
    summary="Give back the promo codes, capped offers and reward-store offers reserved or "
    "locked for a basket (the order was cancelled)",
    responses={
        **refusals(
            400, 401, 403, 404, 414, 503,
            described={
                403: "forbidden: releasing needs a till (POS) or staff token",
                404: "not_found: no code or offer reservation nor lock is known for this "
                "basket, looked for again until the API's decision wait ends (a reservation "
                "just answered may not be written yet)",
                503: "commands_unavailable (retry) or database_unavailable",
            },
        ),
        200: _documented(
            "Released: the codes no longer count against their limits.",
            {"transaction_id": "T-0412-000981",
             "released": [{"code": "HOLIMAN100", "promotion_id": "HOLI"}],
             "released_offers": ["FIRST100_TENOFF"],
             "released_issued_offers": ["IO-M-4471023-web-cmd-3e7a9b10"]},
            Released,
        ),
    },
)  # fmt: skip
async def release_reservations(
    request: Request,
    transaction_id: Annotated[ApiId, Path(description="The basket's transaction id.")],
    _: Annotated[Principal, Depends(till_principal)],
) -> Released:
    """Every code reserved for the basket is released (`PromoCodeReservationReleased`), every
    capped discount offer (`OfferUseReservationReleased`), and every reward-store offer locked
    to it (`IssuedOfferUnlockRequested`, answered on loyalty.outcomes.v1); a code or an offer
    its purchase already used stays used. Safe to repeat."""
    app = request.app
    now: datetime = app.state.clock()
    store: CodeStore = app.state.code_store
    # A till may cancel right after it was told "reserved": the answer came from Kafka (ADR
    # 34) or a lease (ADR 40), the projector writes it a moment later. Nothing found is
    # looked for again until the decision wait ends, before a 404.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + app.state.decision_wait
    while True:
        held = await store.reservations(transaction_id)
        offers_held = await store.offer_reservations(transaction_id)
        locked = await store.locked_offers(transaction_id)
        if held or offers_held or locked or loop.time() >= deadline:
            break
        await asyncio.sleep(app.state.decision_poll)
    if not held and not offers_held and not locked:
        raise NotFoundError(
            f"no promo code or offer reserved nor offer locked for basket '{transaction_id}'"
        )
    sink: CommandSink = app.state.command_sink
    for instance in locked:
        # A command of its own each time: a cancellation repeated before the first's answer
        # is projected is answered too (the instance is no longer locked then).
        command_id = derived_id("unlock", transaction_id, instance.issued_offer_id, now.isoformat())
        await sink.send(
            IssuedOfferUnlockRequested(
                event_id=command_id, occurred_at=now,
                command_id=command_id, member_id=instance.member_id,
                issued_offer_id=instance.issued_offer_id, transaction_id=transaction_id,
                source=Source.INSTORE,
            )
        )  # fmt: skip
    for release in offer_reservations.releases(offers_held, now=now):
        await sink.send(release)
    for kept in (k for k in held if not k.committed):
        await sink.send(
            PromoCodeReservationReleased(
                event_id=derived_id(
                    "code-reservation-released", transaction_id, kept.code, now.isoformat()
                ),
                occurred_at=now,
                promotion_id=kept.promotion_id,
                code=kept.code,
                transaction_id=transaction_id,
            )
        )
    return Released(
        transaction_id=transaction_id,
        released=[
            ReleasedCode(code=k.code, promotion_id=k.promotion_id) for k in held if not k.committed
        ],
        used=[ReleasedCode(code=k.code, promotion_id=k.promotion_id) for k in held if k.committed],
        released_offers=[k.offer_id for k in offers_held],
        released_issued_offers=[i.issued_offer_id for i in locked],
    )
