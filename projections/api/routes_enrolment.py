"""`POST /v1/members/{id}/enrolment` (join the market's programme, waiting a bounded time for the
worker's decision) and `GET /v1/members/{id}/enrolment/{key}` (its state later).

The endpoint writes the enrolment itself, a `MemberEnrolled` on loyalty.enrolments.v1 whose
event_id is derived from the member and the Idempotency-Key, and the worker answers it on
loyalty.outcomes.v1 like any request (ADR 28): accepted with the registration's ledger event,
or rejected with a stable reason, nothing opened. The key's protocol is the redemption
endpoint's (ADR 22), through `member_requests.submit`. The answer:
- 201 enrolled (`Location`: the status URL);
- 409 already enrolled (the member is in the programme already), or a repeat of a key used
  with the same body: the original outcome;
- 422 with the worker's reason (`unknown_programme`, `market_mismatch`,
  `programme_disabled`, `member_merged`) or `idempotency_key_reused`;
- 202 with the status URL when the decision takes longer than the wait.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Request

from processors.contract.common import Source
from processors.contract.enrolments import MemberEnrolled, MemberProfile, birth_date_problem
from processors.contract.outcomes import RejectionReason
from processors.contract.redemptions import RequestType
from processors.rules.arithmetic import derived_id
from projections.api.auth import MemberId
from projections.api.claims import located
from projections.api.commands import CommandId
from projections.api.errors import ApiError, BadParameterError, ErrorBody, NotFoundError, refusals
from projections.api.identifiers import ApiId
from projections.api.member_requests import ServiceOutcome, ServiceRecord, status, submit
from projections.api.member_schemas import (
    ENROLMENT_EXAMPLE,
    ENROLMENT_PENDING,
    ENROLMENT_REJECTED,
    Enrolment,
    EnrolmentRequest,
)

router = APIRouter(prefix="/v1/members/{member_id}/enrolment", tags=["members"])


def enrolment_event_id(member_id: str, command_id: str) -> str:
    """The MemberEnrolled's event id: the same for every write of one key."""
    return derived_id("member-enrolled", member_id, command_id)


def status_url(member_id: str, command_id: str) -> str:
    return f"/v1/members/{quote(member_id, safe='')}/enrolment/{quote(command_id, safe='')}"


def body_of(record: ServiceRecord, outcome: ServiceOutcome | None) -> Enrolment:
    """The enrolment as the API shows it: pending without an outcome."""
    request = record.request
    return Enrolment(
        command_id=record.command_id,
        member_id=record.member_id,
        request_event_id=record.request_event_id,
        status="pending" if outcome is None else "accepted" if outcome.accepted else "rejected",
        status_url=status_url(record.member_id, record.command_id),
        market=request["market"],
        program_ids=list(request["program_ids"]),
        ledger_event_log_id=outcome.ledger_event_log_id if outcome is not None else None,
        reason=outcome.reason if outcome is not None else None,
        detail=outcome.detail if outcome is not None else None,
        decided_at=outcome.decided_at if outcome is not None else None,
    )


def _documented(description: str, example: dict[str, Any], model: type = Enrolment) -> Any:
    return {
        "model": model,
        "description": description,
        "content": {"application/json": {"example": example}},
    }


_LOCATION = {"Location": {"description": "The status URL.", "schema": {"type": "string"}}}
_ALREADY = ENROLMENT_REJECTED | {
    "reason": "already_enrolled", "detail": "already in CA_REWARDS",
}  # fmt: skip

_POST_RESPONSES: dict[int | str, Any] = {
    **refusals(
        400, 401, 403, 414, 503,
        described={
            400: "invalid_parameter: missing or invalid Idempotency-Key, a malformed member id, "
            "or a body without a valid market and program_id, or with an invalid profile (a "
            "birth_date in the future or before 1900 among them)",
            403: "forbidden: a member token on another member's path",
            503: "commands_unavailable (the enrolment could not be written: retry with the "
            "same key) or database_unavailable; retry after `Retry-After`",
        },
    ),
    201: {**_documented("Enrolled: the programme's accounts are open (balance 0, or the "
                        "imported balance); `ledger_event_log_id` is the registration.",
                        ENROLMENT_EXAMPLE), "headers": _LOCATION},
    202: {**_documented("Written, not decided within the wait: read `status_url` (also in "
                        "`Location`) later.", ENROLMENT_PENDING), "headers": _LOCATION},
    409: {**_documented("Already enrolled in the programme (`reason` already_enrolled), or a "
                        "repeat of a key already used with the same body: the original outcome; "
                        "nothing was written again.", _ALREADY), "headers": _LOCATION},
    422: _documented(
        "Refused, nothing opened: `error` is the worker's stable reason (unknown_programme, "
        "market_mismatch, programme_disabled, member_merged) and `reason` its detail; or "
        "idempotency_key_reused: the key was used for another body by this member.",
        {"error": "market_mismatch", "reason": "programme CA_REWARDS is CA's, the member is US"},
        ErrorBody,
    ),
}  # fmt: skip

_GET_RESPONSES: dict[int | str, Any] = {
    **refusals(
        400, 401, 403, 404, 414, 503,
        described={
            403: "forbidden: a member token on another member's path",
            404: "not_found: this member never used that key for an enrolment",
            503: "database_unavailable: retry after `Retry-After`",
        },
    ),
    200: _documented("Decided: accepted or rejected (with the reason).", ENROLMENT_EXAMPLE),
    202: _documented("Written, not decided yet: ask again.", ENROLMENT_PENDING),
}  # fmt: skip


@router.post(
    "",
    status_code=201,
    response_model=Enrolment,
    summary="Enrol the member in a programme of their market; waits a bounded time for the "
    "decision",
    responses=_POST_RESPONSES,
)
async def enrol(
    request: Request, member_id: MemberId, command_id: CommandId, body: EnrolmentRequest
) -> Any:
    """Join a programme (the member's account is the path's member id). Retrying with the same
    Idempotency-Key and body is safe: it never writes twice, and answers 409 with the original
    outcome."""
    app = request.app
    now = app.state.clock()
    problem = birth_date_problem(body.profile, now)
    if problem is not None:
        raise BadParameterError("profile.birth_date", problem)
    event = MemberEnrolled(
        event_id=enrolment_event_id(member_id, command_id),
        occurred_at=now,
        member_id=member_id,
        market=body.market,
        program_ids=[body.program_id],
        source=Source.APP,
        profile=body.profile or MemberProfile(),
    )
    submitted = await submit(
        app, RequestType.ENROLMENT, event, member_id=member_id, command_id=command_id,
        outcome_command_id=event.event_id,
    )  # fmt: skip
    answer = body_of(submitted.record, submitted.outcome)
    outcome = submitted.outcome
    if outcome is None:
        return located(202, answer, answer.status_url)
    if submitted.repeat or outcome.reason == RejectionReason.already_enrolled.value:
        return located(409, answer, answer.status_url)
    if not outcome.accepted:
        reason = outcome.reason or "UNKNOWN"
        raise ApiError(422, reason, outcome.detail or reason)
    return located(201, answer, answer.status_url)


@router.get(
    "/{command_id}",
    response_model=Enrolment,
    summary="An enrolment's state: decided (200) or not yet (202)",
    responses=_GET_RESPONSES,
)
async def enrolment_status(
    request: Request,
    member_id: MemberId,
    command_id: Annotated[ApiId, Path(description="The Idempotency-Key the enrolment used.")],
) -> Any:
    record, outcome = await status(request.app, RequestType.ENROLMENT, member_id, command_id)
    if record is None:
        raise NotFoundError(f"member {member_id} never used key '{command_id}' to enrol")
    answer = body_of(record, outcome)
    return located(202 if outcome is None else 200, answer, answer.status_url)
