"""The inbox (issue #15, docs/adr/0028-member-services.md):

- `POST /v1/inbox/messages` (staff: the CRM's campaigns; `Idempotency-Key`): a message for
  one member or for every inbox of a market. Its deep link is checked against the allow-list
  of schemes and hosts (`LOYALTY_API_INBOX_LINK_SCHEMES`, `…_HOSTS`) before anything is
  written: a bad one is 422 `deep_link_not_allowed` with the reason. Then the key is claimed
  (`inbox_message_requests`), `MessagePosted` is written to loyalty.notifications.v1 (id
  derived from the poster and the key) and answered 202: visible once projected. The same key
  again: 409 with the same message, nothing written (unless the first write never completed:
  then the very same event is written again); with another body: 422
  `idempotency_key_reused`;
- `GET /v1/members/{id}/inbox`: the member's personal messages and their markets' global
  ones, newest first, not expired, with read/unread; campaign messages are left out while the
  member is opted out of IN_APP (their preferences); cursor pagination;
- `PUT /v1/members/{id}/inbox/{message_id}/read`: mark one read (204, again 204);
- `GET /v1/inbox?market=`: anonymous visitors: the market's global messages only.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from processors.contract.base import Market
from processors.contract.notifications import MessagePosted
from processors.rules import identity
from processors.rules.arithmetic import derived_id
from projections.api.auth import MemberId, Principal, Role, read_principal
from projections.api.claims import UNWRITTEN_RECLAIM_AFTER, KeyReusedError, write_claimed
from projections.api.commands import CommandId
from projections.api.errors import (
    ApiError,
    BadParameterError,
    ErrorBody,
    ForbiddenError,
    NotFoundError,
    refusals,
)
from projections.api.identifiers import ApiId
from projections.api.member_schemas import (
    INBOX_EXAMPLE,
    Inbox,
    InboxMessage,
    MessagePostedBody,
    MessageRequest,
)
from projections.api.member_store import InboxCursor, MemberStore, MessageRecord

router = APIRouter(tags=["inbox"])


def listed(values: str) -> frozenset[str]:
    """A comma-separated allow-list, lower-cased."""
    return frozenset(v.strip().lower() for v in values.split(",") if v.strip())


def link_refusal(url: str, schemes: frozenset[str], hosts: frozenset[str]) -> str | None:
    """Why a deep link may not be posted, or None: its scheme and host must be allowed, and it
    may hold no character that parsers read apart: a backslash (a browser reads
    `https://evil.com\\@www.example.com/` as evil.com's, Python's `urlsplit` as
    www.example.com's), whitespace or a control character (`urlsplit` drops a tab or a line
    break before it looks, and the link is stored as posted)."""
    odd = next((c for c in url if c == "\\" or c.isspace() or not c.isprintable()), None)
    if odd is not None:
        return f"a link may not hold {odd!r}: parsers disagree on what it means"
    try:
        parts = urlsplit(url)
    except ValueError as error:
        return f"not a URL: {error}"
    if parts.scheme.lower() not in schemes:
        return f"scheme '{parts.scheme}' is not allowed (allowed: {', '.join(sorted(schemes))})"
    host = (parts.hostname or "").lower()
    if host not in hosts:
        return f"host '{host}' is not allowed (allowed: {', '.join(sorted(hosts))})"
    return None


def _example(description: str, example: dict[str, Any], model: type) -> Any:
    return {"model": model, "description": description,
            "content": {"application/json": {"example": example}}}  # fmt: skip


@router.post(
    "/v1/inbox/messages",
    status_code=202,
    response_model=MessagePostedBody,
    summary="Post a campaign message to one member's inbox or to a market's (staff)",
    responses={
        **refusals(
            400,
            401,
            403,
            404,
            414,
            503,
            described={
                400: "invalid_parameter: missing Idempotency-Key, a body without a title or body, "
                "or naming both or neither of member_id and market",
                403: "forbidden: only staff tokens (the CRM) post messages",
                404: "not_found: no member has the message's member_id",
            },
        ),
        409: _example(
            "The same Idempotency-Key and message again: the message it posted, nothing "
            "written again.",
            {
                "message_id": "MSG-CRM-5c2f0e1a9b7d4c3e",
                "event_id": "MSG-CRM-5c2f0e1a9b7d4c3e",
                "member_id": "M1",
                "market": None,
            },
            MessagePostedBody,
        ),
        422: _example(
            "deep_link_not_allowed: the link's scheme or host is not on the "
            "allow-list; nothing written. idempotency_key_reused: the key posted another "
            "message before; nothing written. member_merged: the member was merged into "
            "another, named in the reason: post to the survivor; nothing written.",
            {
                "error": "deep_link_not_allowed",
                "reason": "host 'evil.example.net' is not allowed (allowed: offers, "
                "rewards, www.example.com)",
            },
            ErrorBody,
        ),
    },
)
async def post_message(
    request: Request,
    command_id: CommandId,
    body: MessageRequest,
    caller: Annotated[Principal, Depends(read_principal)],
) -> MessagePostedBody | JSONResponse:
    """Written once acknowledged; the same key again is the same message (409, one event)."""
    if caller.role is not Role.STAFF:
        raise ForbiddenError("only staff tokens post inbox messages")
    if (body.member_id is None) == (body.market is None):
        raise BadParameterError("member_id", "name a member_id (personal) or a market (global)")
    app = request.app
    if body.deep_link_url is not None:
        refusal = link_refusal(body.deep_link_url, app.state.link_schemes, app.state.link_hosts)
        if refusal is not None:
            raise ApiError(422, "deep_link_not_allowed", refusal, parameter="deep_link_url")
    now: datetime = app.state.clock()
    if body.expires_at is not None and body.expires_at <= now:
        raise BadParameterError("expires_at", "the message would expire before it is posted")
    store: MemberStore = app.state.member_store
    if body.member_id is not None:
        addressee = await store.member(body.member_id)
        if addressee is None:
            raise NotFoundError(f"no member '{body.member_id}': nobody would read the message")
        if addressee.status == "MERGED":  # a user's trial: accepted into an inbox left behind
            reason = (
                f"member '{body.member_id}' was merged into '{addressee.merged_into}': post the "
                "message to the survivor"
            )
            raise ApiError(422, "member_merged", reason, parameter="member_id")
    message_id = derived_id("MSG-CRM", caller.subject, command_id)
    event = MessagePosted(
        event_id=message_id, occurred_at=now, member_id=body.member_id, market=body.market,
        message_id=message_id, cause_event_id=command_id, campaign_id=body.campaign_id,
        locale=body.locale, title=body.title, body=body.body, deep_link_url=body.deep_link_url,
        image_url=body.image_url, expires_at=body.expires_at,
    )  # fmt: skip
    answer = MessagePostedBody(
        message_id=message_id, event_id=event.event_id, member_id=body.member_id,
        market=body.market,
    )  # fmt: skip
    mine = MessageRecord(
        poster=caller.subject, command_id=command_id,
        body_digest=identity.digest(event, identity.REQUEST), message_id=message_id,
        member_id=body.member_id, market=body.market, posted_at=now, claimed_at=now,
    )  # fmt: skip
    earlier = await store.claim_message(mine)
    write = functools.partial(
        write_claimed, app.state.command_sink, release=store.release_message,
        written=store.message_written, now=now, key=(caller.subject, command_id),
    )  # fmt: skip
    if earlier is None:
        await write(event)
        return answer
    if earlier.body_digest != mine.body_digest:
        raise KeyReusedError(command_id, by=f"poster '{caller.subject}'")
    if (
        earlier.written_at is None
        and now - earlier.claimed_at >= UNWRITTEN_RECLAIM_AFTER
        and await store.reclaim_message(caller.subject, command_id, earlier.claimed_at, now)
    ):
        # Its first write never completed: the very same event, at the time it was posted.
        await write(event.model_copy(update={"occurred_at": earlier.posted_at}))
        return answer
    return JSONResponse(answer.model_dump(mode="json"), status_code=409)


def _cursor(cursor: str | None) -> InboxCursor | None:
    if cursor is None:
        return None
    try:
        at, message_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(at), str(message_id)
    except (ValueError, TypeError, binascii.Error):
        raise BadParameterError("cursor", "not a cursor this endpoint gave") from None


def _page(rows: list[dict[str, Any]], limit: int) -> tuple[list[InboxMessage], str | None]:
    messages = [
        InboxMessage(kind="global" if row.pop("is_global") else "personal", **row)
        for row in rows[:limit]
    ]
    if len(rows) <= limit:
        return messages, None
    last = messages[-1]
    raw = json.dumps([last.posted_at.isoformat(), last.message_id])
    return messages, base64.urlsafe_b64encode(raw.encode()).decode()


Limit = Annotated[int, Query(ge=1, le=50, description="Messages per page.")]
Cursor = Annotated[str | None, Query(max_length=512, description="From `next_cursor`.")]
_INBOX = _example("Newest first.", INBOX_EXAMPLE, Inbox)


@router.get(
    "/v1/members/{member_id}/inbox",
    response_model=Inbox,
    summary="The member's inbox: personal and their market's global messages, newest first",
    responses={**refusals(400, 401, 403, 404, 414, 503), 200: _INBOX},
)
async def member_inbox(
    request: Request, member_id: MemberId, limit: Limit = 20, cursor: Cursor = None
) -> Inbox:
    store: MemberStore = request.app.state.member_store
    member = await store.member(member_id)
    if member is None:
        raise NotFoundError(f"no member '{member_id}'")
    now = request.app.state.clock()
    rows, unread = await store.inbox(member, now, limit=limit + 1, after=_cursor(cursor))
    messages, next_cursor = _page(rows, limit)
    return Inbox(messages=messages, unread=unread, next_cursor=next_cursor)


@router.put(
    "/v1/members/{member_id}/inbox/{message_id}/read",
    status_code=204,
    summary="Mark a message of the member's inbox read",
    responses=refusals(400, 401, 403, 404, 414, 503),
)
async def mark_read(
    request: Request,
    member_id: MemberId,
    message_id: Annotated[ApiId, Path(description="The message.")],
) -> Response:
    store: MemberStore = request.app.state.member_store
    member = await store.member(member_id)
    now = request.app.state.clock()
    if member is None or not await store.message(member, message_id, now):
        raise NotFoundError(f"no message '{message_id}' in member {member_id}'s inbox")
    await store.mark_read(member_id, message_id, now)
    return Response(status_code=204)


@router.get(
    "/v1/inbox",
    response_model=Inbox,
    summary="A market's global messages, for anonymous visitors",
    responses={**refusals(400, 414, 503), 200: _INBOX},
)
async def market_inbox(
    request: Request,
    market: Annotated[Market, Query(description="The visitor's market.")],
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Inbox:
    store: MemberStore = request.app.state.member_store
    now = request.app.state.clock()
    rows = await store.global_inbox(market, now, limit=limit + 1, after=_cursor(cursor))
    for row in rows:
        row["read"] = None
    messages, next_cursor = _page(rows, limit)
    return Inbox(messages=messages, unread=None, next_cursor=next_cursor)
