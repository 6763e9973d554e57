"""The reward-store offers a member bought (seed 002, docs/adr/0033-reward-store-api.md): the
wallet's list of them, and the till's two ways to use one at checkout.

- `GET /v1/members/{id}/issued-offers`: newest purchase first, with status (ISSUED, LOCKED,
  REDEEMED, USED), the lock, where each came from (`member_issued_offers`).
- `POST /v1/members/{id}/issued-offers/{issued_offer_id}/lock`: reserve the instance for the
  basket in progress (`IssuedOfferLockRequested`: 30 minutes, reserve → commit, DESIGN.md
  §5.25); `.../redeem`: spend it at once (`IssuedOfferRedeemRequested`). Each writes its
  request and answers with the worker's decision as the purchase does (ADR 22 through
  `member_requests.submit`): 201 with the instance as the wallet shows it, 409 with the
  original for a repeated key (or with this refusal when the instance was used already: a
  second use of a single-use offer, DESIGN.md §5.15), 422 with the stable reason
  (`reward_locked`, `unknown_offer`, ...), 202 with the status URL
  (`GET .../lock/{key}`, `.../redeem/{key}`) when the decision takes longer than the wait.

Whichever way, the transaction that carries the instance in `redemption_tokens` gets the
offer's benefit once; a till may also produce the same requests on loyalty.redemptions.v1.
The path's member is authorised as everywhere (`MemberId`): a member token acts only for
itself. The lock and the redeem (and reading their answers) are also a till's calls
(`MemberAtTill`): a till token may make them for any member, and reads nothing else.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request

from processors.contract.outcomes import RejectionReason
from processors.contract.redemptions import (
    IssuedOfferLockRequested,
    IssuedOfferRedeemRequested,
    RequestType,
)
from processors.rules.arithmetic import derived_id
from processors.rules.offers.state import IssuedOffer as IssuedInstance
from projections.api.auth import MemberAtTill, MemberId
from projections.api.claims import located
from projections.api.commands import CommandId
from projections.api.errors import ApiError, BadParameterError, ErrorBody, NotFoundError, refusals
from projections.api.identifiers import ApiId
from projections.api.member_requests import (
    MemberRequestStore,
    ServiceOutcome,
    ServiceRecord,
    status,
    submit,
)
from projections.api.reward_schemas import WalletPageInfo
from projections.api.reward_store_queries import IssuedRow, RewardStoreQueries
from projections.api.reward_store_schemas import (
    ISSUED_OFFERS_EXAMPLE,
    USE_EXAMPLE,
    USE_PENDING,
    USE_REFUSED,
    IssuedOffer,
    IssuedOffers,
    IssuedOfferUse,
    IssuedOfferUseRequest,
    IssuedStatus,
    UseAction,
)
from projections.api.routes_rewards import decode_wallet_cursor
from projections.api.wakeups import Wakeups, member_key

router = APIRouter(prefix="/v1/members/{member_id}/issued-offers", tags=["reward stores"])

PAGE_DEFAULT, PAGE_MAX = 20, 100
_KINDS: dict[UseAction, RequestType] = {
    "lock": RequestType.ISSUED_OFFER_LOCK,
    "redeem": RequestType.ISSUED_OFFER_REDEEM,
}

IssuedPath = Annotated[
    ApiId,
    Path(description="The issued offer's id, as the purchase answered it.",
         examples=["IO-5f2c0e9a41d7b3c28e6f01a9d4b7c3e2"]),
]  # fmt: skip


def _queries(request: Request) -> RewardStoreQueries:
    queries: RewardStoreQueries = request.app.state.reward_store_queries
    return queries


def issued_view(row: IssuedRow, now: datetime) -> IssuedOffer:
    """A `member_issued_offers` row as the API shows it; usable as the offer rules judge it."""
    instance = IssuedInstance(
        issued_offer_id=row.issued_offer_id, offer_id=row.offer_id or "",
        reward_store_id=row.reward_store_id or "", points=row.points_spent or 0,
        issued_at=row.issued_at or row.status_at, status=row.status,
        transaction_id=row.transaction_id, locked_until=row.locked_until,
    )  # fmt: skip
    return IssuedOffer(
        issued_offer_id=row.issued_offer_id,
        offer_id=row.offer_id,
        reward_store_id=row.reward_store_id,
        status=row.status,  # type: ignore[arg-type]  # the table's CHECK holds it to four
        # A transaction id no till gives: usable by any transaction, not only its own.
        is_usable=instance.applies_to("\x00", now),
        points_spent=row.points_spent,
        command_id=row.command_id,
        ledger_event_log_id=row.ledger_event_log_id,
        issued_at=row.issued_at,
        transaction_id=row.transaction_id,
        locked_until=row.locked_until,
        discount_cents=row.discount_cents,
        status_at=row.status_at,
    )


async def issued_one(
    request: Request, member_id: str, *, command_id: str | None = None,
    issued_offer_id: str | None = None,
) -> IssuedOffer | None:  # fmt: skip
    """The member's issued offer bought with `command_id`, or of `issued_offer_id`."""
    rows = await _queries(request).issued(
        member_id, limit=1, command_id=command_id, issued_offer_id=issued_offer_id
    )
    now: datetime = request.app.state.clock()
    return issued_view(rows[0], now) if rows else None


async def issued_settled(
    request: Request, kind: RequestType, member_id: str, command_id: str, *,
    issued_offer_id: str | None = None,
) -> IssuedOffer | None:  # fmt: skip
    """The instance as an accepted request of `kind` left it: bought with `command_id`, or
    `issued_offer_id` locked or redeemed by it. It is projected in the commit that records the
    request's outcome, which the answer from Kafka may precede (ADR 34), so that outcome is
    waited for (woken by the commit) as long as a decision is; None if it never came."""
    app = request.app
    requests: MemberRequestStore = app.state.member_requests

    async def look() -> tuple[IssuedOffer | None] | None:
        if await requests.outcome(member_id, kind, command_id) is None:
            return None
        bought = None if issued_offer_id is not None else command_id
        return (await issued_one(request, member_id, command_id=bought,
                                 issued_offer_id=issued_offer_id),)  # fmt: skip

    wakeups: Wakeups = app.state.wakeups
    found = await wakeups.until(member_key(member_id), look, wait=app.state.decision_wait)
    return found[0] if found is not None else None


def encode_cursor(last: IssuedRow) -> str:
    """The opaque cursor of the page after `last` (read back by `decode_wallet_cursor`)."""
    raw = f"{(last.issued_at or last.status_at).isoformat()}|{last.issued_offer_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def documented(description: str, example: dict[str, Any], model: type | None = None) -> Any:
    """An OpenAPI response: its description, its example and, when given, its body's model."""
    documented: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"example": example}},
    }
    if model is not None:
        documented["model"] = model
    return documented


@router.get(
    "",
    response_model=IssuedOffers,
    summary="The offers the member bought in reward stores (the wallet's store offers)",
    responses={
        **refusals(
            400, 401, 403, 404, 414, 503,
            described={
                403: "forbidden: a member token on another member's path",
                404: "not_found: no such member (never enrolled, nothing bought)",
                503: "database_unavailable: retry after `Retry-After`",
            },
        ),
        200: documented("Newest purchase first, with status, lock and where each came from.",
                      ISSUED_OFFERS_EXAMPLE),
    },
)  # fmt: skip
async def read_issued_offers(
    request: Request,
    member_id: MemberId,
    limit: Annotated[
        int, Query(ge=1, le=PAGE_MAX, description="Offers per page, at most 100.")
    ] = PAGE_DEFAULT,
    cursor: Annotated[
        str | None, Query(description="`page.next_cursor` of the previous page.")
    ] = None,
    status_: Annotated[
        IssuedStatus | None, Query(alias="status", description="Only offers in this state.")
    ] = None,
) -> IssuedOffers:
    """One page of the member's issued store offers (keyset pagination)."""
    after = decode_wallet_cursor(cursor) if cursor is not None else None
    rows = await _queries(request).issued(member_id, limit=limit + 1, after=after, status=status_)
    if rows is None:
        raise NotFoundError(f"no member '{member_id}'")
    now: datetime = request.app.state.clock()
    page, more = rows[:limit], len(rows) > limit
    return IssuedOffers(
        member_id=member_id,
        page=WalletPageInfo(
            limit=limit, has_more=more, next_cursor=encode_cursor(page[-1]) if more else None
        ),
        issued_offers=[issued_view(row, now) for row in page],
    )


def use_request_id(action: UseAction, member_id: str, command_id: str) -> str:
    """The request's event id: the same for every write of one key."""
    return derived_id(f"issued-offer-{action}-requested", member_id, command_id)


def use_status_url(action: UseAction, member_id: str, issued_offer_id: str, key: str) -> str:
    """Where a lock's or a redeem's state is read (every id percent-encoded)."""
    ids = [quote(v, safe="") for v in (member_id, issued_offer_id, key)]
    return f"/v1/members/{ids[0]}/issued-offers/{ids[1]}/{action}/{ids[2]}"


def use_body(
    action: UseAction,
    record: ServiceRecord,
    outcome: ServiceOutcome | None,
    issued: IssuedOffer | None,
) -> IssuedOfferUse:
    """The lock or redeem as the API shows it: pending without an outcome."""
    asked = record.request
    issued_offer_id = str(asked["issued_offer_id"])
    return IssuedOfferUse(
        command_id=record.command_id,
        member_id=record.member_id,
        request_event_id=record.request_event_id,
        action=action,
        status="pending" if outcome is None else "accepted" if outcome.accepted else "rejected",
        status_url=use_status_url(action, record.member_id, issued_offer_id, record.command_id),
        issued_offer_id=issued_offer_id,
        transaction_id=asked.get("transaction_id"),
        issued_offer=issued,
        reason=outcome.reason if outcome is not None else None,
        detail=outcome.detail if outcome is not None else None,
        decided_at=outcome.decided_at if outcome is not None else None,
    )


_LOCATION = {"Location": {"description": "The status URL.", "schema": {"type": "string"}}}


def _of(example: dict[str, Any], action: UseAction) -> dict[str, Any]:
    """A use's example as `action` answers it: its key, request, status URL and detail (the
    examples are written for a lock)."""
    if action == "lock":
        return example | {"action": action}
    named = {k: example[k].replace("lock", action)
             for k in ("command_id", "request_event_id", "status_url")}  # fmt: skip
    detail, issued = example["detail"], example["issued_offer"]
    if example["status"] == "accepted":
        detail = ""  # what the worker says of a redeem it accepted
    if issued is not None:
        issued = issued | {"status": "REDEEMED"} | ({"locked_until": None}
                                                  if "locked_until" in issued else {})  # fmt: skip
    return example | named | {"action": action, "detail": detail, "issued_offer": issued}


def _post_responses(action: UseAction) -> dict[int | str, Any]:
    done = "locked to the transaction for 30 minutes" if action == "lock" else "spent"
    return {
        **refusals(
            400, 401, 403, 414, 503,
            described={
                400: "invalid_parameter: missing or invalid Idempotency-Key, a malformed id"
                + (", or no transaction_id to lock to" if action == "lock" else ""),
                403: "forbidden: a member token on another member's path",
                503: "commands_unavailable (the request could not be written: retry with the "
                "same key) or database_unavailable; retry after `Retry-After`",
            },
        ),
        201: {**documented(f"Accepted: the instance is {done}; as the wallet shows it.",
                         _of(USE_EXAMPLE, action), IssuedOfferUse),
              "headers": _LOCATION},
        202: {**documented("Written, not decided within the wait: read `status_url` later.",
                         _of(USE_PENDING, action), IssuedOfferUse),
              "headers": _LOCATION},
        409: {**documented("A repeat of a key already used with the same body (the original "
                         "outcome), or the instance was used already (duplicate_request).",
                         _of(USE_REFUSED, action), IssuedOfferUse),
              "headers": _LOCATION},
        422: documented(
            "Refused, nothing changed: `error` is the worker's stable reason (reward_locked: "
            "locked to another transaction; unknown_offer: no such issued offer; "
            "unknown_member) and `reason` its detail; or idempotency_key_reused.",
            {"error": "reward_locked",
             "reason": "locked to POS-0042-0193 until 2026-12-02T09:40:00+00:00"},
            ErrorBody,
        ),
    }  # fmt: skip


def _get_responses(action: UseAction) -> dict[int | str, Any]:
    return {
        **refusals(
            400, 401, 403, 404, 414, 503,
            described={
                403: "forbidden: a member token on another member's path",
                404: f"not_found: this member never used that key to {action} an issued offer",
                503: "database_unavailable: retry after `Retry-After`",
            },
        ),
        200: documented("Decided: accepted or rejected (with the reason).",
                      _of(USE_EXAMPLE, action)),
        202: documented("Written, not decided yet: ask again.", _of(USE_PENDING, action),
                      IssuedOfferUse),
    }  # fmt: skip


async def _use(
    request: Request,
    action: UseAction,
    member_id: str,
    issued_offer_id: str,
    command_id: str,
    body: IssuedOfferUseRequest,
) -> Any:
    app = request.app
    common: dict[str, Any] = {
        "event_id": use_request_id(action, member_id, command_id),
        "occurred_at": app.state.clock(), "command_id": command_id, "member_id": member_id,
        "issued_offer_id": issued_offer_id, "transaction_id": body.transaction_id,
        "source": body.source,
        "store_id": body.store_id, "till_id": body.till_id,
    }  # fmt: skip
    if action == "lock":
        if body.transaction_id is None:
            raise BadParameterError("transaction_id", "a lock is for one basket: give its id")
        event: IssuedOfferLockRequested | IssuedOfferRedeemRequested = IssuedOfferLockRequested(
            **common
        )
    else:
        event = IssuedOfferRedeemRequested(**common)
    submitted = await submit(
        app, _KINDS[action], event, member_id=member_id, command_id=command_id,
        outcome_command_id=command_id,
    )  # fmt: skip
    outcome = submitted.outcome
    issued = None
    if outcome is not None and outcome.accepted:
        issued = await issued_settled(
            request, _KINDS[action], member_id, command_id, issued_offer_id=issued_offer_id
        )
    answer = use_body(action, submitted.record, outcome, issued)
    if outcome is None:
        return located(202, answer, answer.status_url)
    if submitted.repeat or outcome.reason == RejectionReason.duplicate_request.value:
        return located(409, answer, answer.status_url)
    if not outcome.accepted:
        reason = outcome.reason or "UNKNOWN"
        raise ApiError(422, reason, outcome.detail or reason)
    return located(201, answer, answer.status_url)


async def _state(
    request: Request, action: UseAction, member_id: str, issued_offer_id: str, command_id: str
) -> Any:
    record, outcome = await status(request.app, _KINDS[action], member_id, command_id)
    if record is None or record.request.get("issued_offer_id") != issued_offer_id:
        raise NotFoundError(f"member {member_id} never used key '{command_id}' to {action} it")
    issued = None
    if outcome is not None and outcome.accepted:
        issued = await issued_one(request, member_id, issued_offer_id=issued_offer_id)
    answer = use_body(action, record, outcome, issued)
    return located(202 if outcome is None else 200, answer, answer.status_url)


@router.post(
    "/{issued_offer_id}/lock",
    status_code=201,
    response_model=IssuedOfferUse,
    summary="Lock an issued offer to the basket at the till; waits a bounded time for the decision",
    responses=_post_responses("lock"),
)
async def lock_issued_offer(
    request: Request,
    member_id: MemberAtTill,
    issued_offer_id: IssuedPath,
    command_id: CommandId,
    body: IssuedOfferUseRequest,
) -> Any:
    """Reserve the instance for `transaction_id` (30 minutes; the same basket may lock it
    again). The transaction that carries it gets its benefit; another is refused until the
    lock lapses."""
    return await _use(request, "lock", member_id, issued_offer_id, command_id, body)


@router.post(
    "/{issued_offer_id}/redeem",
    status_code=201,
    response_model=IssuedOfferUse,
    summary="Redeem an issued offer at once; waits a bounded time for the decision",
    responses=_post_responses("redeem"),
)
async def redeem_issued_offer(
    request: Request,
    member_id: MemberAtTill,
    issued_offer_id: IssuedPath,
    command_id: CommandId,
    body: IssuedOfferUseRequest | None = None,
) -> Any:
    """Spend the instance now, for `transaction_id` (or, without one, for the next
    transaction that carries it). No body: as `{}`."""
    asked = body if body is not None else IssuedOfferUseRequest()
    return await _use(request, "redeem", member_id, issued_offer_id, command_id, asked)


@router.get(
    "/{issued_offer_id}/lock/{command_id}",
    response_model=IssuedOfferUse,
    summary="A lock's state: decided (200) or not yet (202)",
    responses=_get_responses("lock"),
)
async def read_lock(
    request: Request,
    member_id: MemberAtTill,
    issued_offer_id: IssuedPath,
    command_id: Annotated[ApiId, Path(description="The Idempotency-Key the lock used.")],
) -> Any:
    return await _state(request, "lock", member_id, issued_offer_id, command_id)


@router.get(
    "/{issued_offer_id}/redeem/{command_id}",
    response_model=IssuedOfferUse,
    summary="A redeem's state: decided (200) or not yet (202)",
    responses=_get_responses("redeem"),
)
async def read_redeem(
    request: Request,
    member_id: MemberAtTill,
    issued_offer_id: IssuedPath,
    command_id: Annotated[ApiId, Path(description="The Idempotency-Key the redeem used.")],
) -> Any:
    return await _state(request, "redeem", member_id, issued_offer_id, command_id)
