"""Communication preferences (issue #15, docs/adr/0028-member-services.md):

- `GET /v1/members/{id}/preferences`: the channels the member's market offers, each with the
  member's choice (null: never set), from the projection;
- `PUT /v1/members/{id}/preferences` (`Idempotency-Key`): writes `PreferencesChangeRequested`
  and waits for the worker's decision like the enrolment (`member_requests.submit`): 200 set,
  422 `channel_not_offered` (or `unknown_member`, `member_merged`, `idempotency_key_reused`),
  409 a repeated key (the original outcome), 202 with the status URL when the wait runs out;
  a member token changes as MEMBER, a staff token as STAFF, named in the audit trail;
- `GET /v1/members/{id}/preferences/changes/{key}`: a change's state later;
- `GET /v1/members/{id}/preferences/audit` (staff only): the audit trail, newest first.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request

from processors.contract.common import Source
from processors.contract.notifications import ChangedBy, ContactChannel
from processors.contract.redemptions import ChannelChoice, PreferencesChangeRequested, RequestType
from processors.rules.arithmetic import derived_id
from projections.api.auth import MemberId, Principal, Role, read_principal
from projections.api.claims import located
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
from projections.api.member_requests import ServiceOutcome, ServiceRecord, status, submit
from projections.api.member_schemas import (
    AUDIT_EXAMPLE,
    PREFERENCES_EXAMPLE,
    UPDATE_EXAMPLE,
    UPDATE_PENDING,
    ChannelPreference,
    PreferenceAudit,
    PreferenceAuditEntry,
    Preferences,
    PreferencesRequest,
    PreferencesUpdate,
)
from projections.api.member_store import AuditCursor, MemberStore
from projections.api.routes_carts import ConfigSource, ConfigUnavailableError

router = APIRouter(prefix="/v1/members/{member_id}/preferences", tags=["members"])

Caller = Annotated[Principal, Depends(read_principal)]


def change_url(member_id: str, command_id: str) -> str:
    member, key = quote(member_id, safe=""), quote(command_id, safe="")
    return f"/v1/members/{member}/preferences/changes/{key}"


def _example(description: str, example: dict[str, Any], model: type = PreferencesUpdate) -> Any:
    return {"model": model, "description": description,
            "content": {"application/json": {"example": example}}}  # fmt: skip


async def _member(request: Request, member_id: str) -> Any:
    store: MemberStore = request.app.state.member_store
    member = await store.member(member_id)
    if member is None:
        raise NotFoundError(f"no member '{member_id}'")
    return member


def _offered(request: Request, program_ids: list[str]) -> list[ContactChannel]:
    source: ConfigSource = request.app.state.config_source
    if not source.ready.is_set():
        raise ConfigUnavailableError(f"the configuration is not loaded yet: {source.status}")
    programs = source.config.programs
    channels = {c for p in program_ids if (g := programs.get(p)) for c in g.offered_channels}
    return [c for c in ContactChannel if c in channels]


@router.get(
    "",
    response_model=Preferences,
    summary="The member's communication preferences, per channel their market offers",
    responses={
        **refusals(400, 401, 403, 404, 414, 503),
        200: _example(
            "The channels offered, each with the member's choice.", PREFERENCES_EXAMPLE, Preferences
        ),
    },
)
async def preferences(request: Request, member_id: MemberId) -> Preferences:
    member = await _member(request, member_id)
    offered = _offered(request, member.program_ids)
    store: MemberStore = request.app.state.member_store
    chosen = {row["channel"]: row for row in await store.preferences(member_id)}
    channels = [
        ChannelPreference(
            channel=channel,
            opted_in=chosen[channel.value]["opted_in"] if channel.value in chosen else None,
            changed_at=chosen[channel.value]["changed_at"] if channel.value in chosen else None,
        )
        for channel in offered
    ]
    return Preferences(member_id=member_id, channels=channels)


def update_of(record: ServiceRecord, outcome: ServiceOutcome | None) -> PreferencesUpdate:
    asked = record.request
    return PreferencesUpdate(
        command_id=record.command_id,
        member_id=record.member_id,
        status="pending" if outcome is None else "accepted" if outcome.accepted else "rejected",
        status_url=change_url(record.member_id, record.command_id),
        channels={c["channel"]: c["opted_in"] for c in asked["choices"]},
        changed_by=asked["changed_by"],
        changed_by_id=asked["changed_by_id"],
        reason=outcome.reason if outcome is not None else None,
        detail=outcome.detail if outcome is not None else None,
        decided_at=outcome.decided_at if outcome is not None else None,
    )


_LOCATION = {"Location": {"description": "The status URL.", "schema": {"type": "string"}}}


@router.put(
    "",
    response_model=PreferencesUpdate,
    summary="Opt in or out of channels; waits a bounded time for the decision",
    responses={
        **refusals(
            400,
            401,
            403,
            414,
            503,
            described={
                400: "invalid_parameter: missing or invalid Idempotency-Key, or a body without "
                "valid channels",
                403: "forbidden: a member token on another member's path",
            },
        ),
        200: {
            **_example("Set: the audit trail has the change.", UPDATE_EXAMPLE),
            "headers": _LOCATION,
        },
        202: {
            **_example("Written, not decided within the wait: read `status_url`.", UPDATE_PENDING),
            "headers": _LOCATION,
        },
        409: {
            **_example(
                "A repeat of a key used with the same body: the original outcome.", UPDATE_EXAMPLE
            ),
            "headers": _LOCATION,
        },
        422: _example(
            "Refused, nothing changed: `error` is the worker's reason (channel_not_offered, "
            "unknown_member, member_merged), or idempotency_key_reused.",
            {
                "error": "channel_not_offered",
                "reason": "SMS is not offered in the member's market (offered: EMAIL, PUSH)",
            },
            ErrorBody,
        ),
    },
)
async def set_preferences(
    request: Request,
    member_id: MemberId,
    command_id: CommandId,
    body: PreferencesRequest,
    caller: Caller,
) -> Any:
    """Set the channels named (the others are kept). Retrying with the same Idempotency-Key
    and body is safe: it never writes twice, and answers 409 with the original outcome."""
    app = request.app
    staff = caller.role is Role.STAFF
    event = PreferencesChangeRequested(
        event_id=derived_id("preferences-change-requested", member_id, command_id),
        occurred_at=app.state.clock(),
        command_id=command_id,
        member_id=member_id,
        choices=[ChannelChoice(channel=c, opted_in=o) for c, o in body.channels.items()],
        changed_by=ChangedBy.STAFF if staff else ChangedBy.MEMBER,
        changed_by_id=caller.subject,
        source=Source.BACK_OFFICE if staff else Source.APP,
        reason=body.reason,
    )
    submitted = await submit(
        app, RequestType.PREFERENCES_CHANGE, event, member_id=member_id,
        command_id=command_id, outcome_command_id=command_id,
    )  # fmt: skip
    answer = update_of(submitted.record, submitted.outcome)
    outcome = submitted.outcome
    if outcome is None:
        return located(202, answer, answer.status_url)
    if submitted.repeat:
        return located(409, answer, answer.status_url)
    if not outcome.accepted:
        reason = outcome.reason or "UNKNOWN"
        raise ApiError(422, reason, outcome.detail or reason)
    return located(200, answer, answer.status_url)


@router.get(
    "/changes/{command_id}",
    response_model=PreferencesUpdate,
    summary="A preferences change's state: decided (200) or not yet (202)",
    responses={
        **refusals(400, 401, 403, 404, 414, 503),
        202: _example("Written, not decided yet.", UPDATE_PENDING),
    },
)
async def preferences_change(
    request: Request,
    member_id: MemberId,
    command_id: Annotated[ApiId, Path(description="The Idempotency-Key the change used.")],
) -> Any:
    kind = RequestType.PREFERENCES_CHANGE
    record, outcome = await status(request.app, kind, member_id, command_id)
    if record is None:
        raise NotFoundError(f"member {member_id} never used key '{command_id}' for preferences")
    answer = update_of(record, outcome)
    return located(202 if outcome is None else 200, answer, answer.status_url)


def _audit_cursor(cursor: str | None) -> AuditCursor | None:
    if cursor is None:
        return None
    try:
        at, event, channel = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(at), str(event), str(channel)
    except (ValueError, TypeError, binascii.Error):
        raise BadParameterError("cursor", "not a cursor this endpoint gave") from None


@router.get(
    "/audit",
    response_model=PreferenceAudit,
    summary="The member's preference changes, newest first (staff only)",
    responses={
        **refusals(
            400,
            401,
            403,
            404,
            414,
            503,
            described={
                403: "forbidden: the audit trail is for staff tokens only",
                404: "not_found: no such member",
            },
        ),
        200: _example(
            "Who changed what, when, through which channel, old → new.",
            AUDIT_EXAMPLE,
            PreferenceAudit,
        ),
    },
)
async def preferences_audit(
    request: Request,
    member_id: MemberId,
    caller: Caller,
    limit: Annotated[int, Query(ge=1, le=100, description="Entries per page.")] = 50,
    cursor: Annotated[str | None, Query(max_length=512, description="From `next_cursor`.")] = None,
) -> PreferenceAudit:
    if caller.role is not Role.STAFF:
        raise ForbiddenError("the preferences audit trail is for staff tokens only")
    await _member(request, member_id)  # 404: nobody's trail is not an empty one
    store: MemberStore = request.app.state.member_store
    rows = await store.audit(member_id, limit=limit + 1, after=_audit_cursor(cursor))
    page = [PreferenceAuditEntry(**row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        raw = json.dumps([last.changed_at.isoformat(), last.change_event_id, last.channel])
        next_cursor = base64.urlsafe_b64encode(raw.encode()).decode()
    return PreferenceAudit(member_id=member_id, changes=page, next_cursor=next_cursor)
