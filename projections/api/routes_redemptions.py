"""`POST /v1/members/{id}/redemptions` (redeem a reward, waiting a bounded time for the
decision) and `GET /v1/members/{id}/redemptions/{key}` (its state later).

A command endpoint (ADR 16) that answers with the decision when it can
(docs/adr/0022-redemption-endpoint.md). The worker decides everything about the member and
the reward (ADR 20); the API owns the Idempotency-Key. In order:
1. the caller holds a token for that member, or a staff token (401, 403); the key is 1–128
   printable ASCII (400); the body names a reward, a programme and a quantity (400);
2. the key is claimed in `redemption_requests` (INSERT … ON CONFLICT DO NOTHING), with the
   digest the worker itself keeps of the request's body (`rules.identity`):
   - claimed now: the `RewardRedemptionRequested` is written (503 if it cannot be, and the
     claim is released so a retry starts over);
   - claimed before with another body: 422 `idempotency_key_reused`, nothing written;
   - claimed before with this body: a repeat, nothing written (unless its writer never
     confirmed the write for `UNWRITTEN_RECLAIM_AFTER`: then exactly one repeat writes the
     same event again, which the worker takes for the repeat it is);
3. the request waits up to the app's `decision_wait` for the outcome and, for an acceptance,
   its grants (two topics, so two arrivals): heard from Kafka (`RequestAccepted` or
   `RequestRejected`, and a `RewardGranted` per grant, registered before the write), or found
   in `request_outcomes` and `member_rewards`, whichever comes first (`wakeups`, ADR 34);
4. the answer: 201 with the grants (codes or tokens, expiry) or 422 with the stable reason
   for the request that claimed the key; 409 with the original outcome for a repeat; 202 with
   the status URL (`Location`) when the wait ran out, whoever asked.

The request's event id is derived from the member and the key, so every write of one key is
the same event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from processors.base.logs import get_logger
from processors.contract.base import Event
from processors.contract.common import Source
from processors.contract.outcomes import RequestAccepted, RequestRejected
from processors.contract.redemptions import RequestType, RewardRedemptionRequested
from processors.contract.rewards import RewardGranted
from processors.rules import identity
from processors.rules.arithmetic import derived_id
from projections.api.answers import Heard, grants_key, outcome_key
from projections.api.auth import MemberId
from projections.api.claims import (
    UNWRITTEN_RECLAIM_AFTER,
    KeyReusedError,
    located,
    write_claimed,
)
from projections.api.commands import CommandId
from projections.api.errors import ApiError, ErrorBody, NotFoundError, refusals
from projections.api.identifiers import ApiId
from projections.api.reward_schemas import Redemption, RedemptionRequest, RedemptionStatus
from projections.api.reward_store import GrantedReward, Outcome, RedemptionRecord, RewardStore
from projections.api.routes_rewards import wallet_reward
from projections.api.wakeups import Wakeups, member_key

log = get_logger(__name__)

router = APIRouter(prefix="/v1/members/{member_id}/redemptions", tags=["rewards"])


def redemption_request_id(member_id: str, command_id: str) -> str:
    """The RewardRedemptionRequested's event id: the same for every write of one key."""
    return derived_id("reward-redemption-requested", member_id, command_id)


def status_url(member_id: str, command_id: str) -> str:
    """Where a redemption's state is read (both ids percent-encoded: a key may hold `/`)."""
    return f"/v1/members/{quote(member_id, safe='')}/redemptions/{quote(command_id, safe='')}"


@dataclass(frozen=True)
class Decision:
    """An outcome, and its grants once every one of them is in the wallet."""

    outcome: Outcome
    grants: Sequence[GrantedReward] | None
    """None while an acceptance's grants are not all projected yet."""

    @property
    def is_complete(self) -> bool:
        return self.grants is not None


async def decision(store: RewardStore, member_id: str, command_id: str) -> Decision | None:
    """The redemption's outcome as far as the projections have it; None without one."""
    outcome = await store.outcome(member_id, command_id)
    if outcome is None:
        return None
    if not outcome.accepted:
        return Decision(outcome, ())
    grants = await store.granted(member_id, outcome.granted_reward_ids)
    found = {g.granted_reward_id: g for g in grants}
    if len(found) < len(outcome.granted_reward_ids):
        return Decision(outcome, None)
    return Decision(outcome, [found[i] for i in outcome.granted_reward_ids])


def heard_decision(events: Sequence[Event]) -> Decision | None:
    """The complete decision from the answers heard on Kafka, as the projections will hold it
    (`request_outcomes`, `member_rewards` rows as first written); None while incomplete."""
    answer = next((e for e in events if isinstance(e, RequestAccepted | RequestRejected)), None)
    if answer is None:
        return None
    if isinstance(answer, RequestRejected):
        outcome = Outcome(
            command_id=answer.command_id, request_event_id=answer.request_event_id,
            accepted=False, reason=answer.reason.value, detail=answer.detail, points_debited=0,
            ledger_event_log_id=None, granted_reward_ids=(), decided_at=answer.occurred_at,
        )  # fmt: skip
        return Decision(outcome, ())
    grants = {e.granted_reward_id: e for e in events if isinstance(e, RewardGranted)}
    if any(i not in grants for i in answer.granted_reward_ids):
        return None
    outcome = Outcome(
        command_id=answer.command_id, request_event_id=answer.request_event_id, accepted=True,
        reason=None, detail=answer.detail, points_debited=answer.points_debited,
        ledger_event_log_id=answer.ledger_event_log_id,
        granted_reward_ids=tuple(answer.granted_reward_ids), decided_at=answer.occurred_at,
    )  # fmt: skip
    return Decision(outcome, [_wallet_row(grants[i]) for i in answer.granted_reward_ids])


def _wallet_row(granted: RewardGranted) -> GrantedReward:
    """The wallet row a grant is projected as (ISSUED, not closed)."""
    return GrantedReward(
        granted_reward_id=granted.granted_reward_id, member_id=granted.member_id,
        reward_id=granted.reward_id, reason=granted.reason.value, program_id=granted.program_id,
        points_spent=granted.points_spent, code=granted.code,
        redemption_token=granted.redemption_token, expires_at=granted.expires_at,
        granted_at=granted.occurred_at, command_id=granted.command_id,
        offer_id=granted.offer_id, challenge_id=granted.challenge_id, status="ISSUED",
        closed_at=None,
    )  # fmt: skip


def expected_answers(member_id: str, command_id: str) -> tuple[tuple[str, ...], ...]:
    """What answers a redemption on Kafka: its outcome and its grants."""
    return (
        outcome_key(member_id, RequestType.REWARD_REDEMPTION, command_id),
        grants_key(member_id, command_id),
    )


async def wait_for_decision(
    store: RewardStore,
    wakeups: Wakeups,
    member_id: str,
    command_id: str,
    *,
    wait: float,
    heard: Heard | None = None,
) -> Decision | None:
    """The complete decision, heard from Kafka or looked for whenever the member's outcome or
    wallet rows are written, until `wait` seconds have passed (at least once); None if it did
    not come."""

    async def complete() -> Decision | None:
        found = await decision(store, member_id, command_id)
        return found if found is not None and found.is_complete else None

    return await wakeups.until(
        member_key(member_id), complete, wait=wait, heard=heard, judge=heard_decision
    )


def body_of(
    member_id: str,
    command_id: str,
    record: RedemptionRecord | None,
    decided: Decision | None,
    now: datetime,
) -> Redemption:
    """The redemption as the API shows it: pending without a complete decision."""
    outcome = decided.outcome if decided is not None and decided.is_complete else None
    status: RedemptionStatus = (
        "pending" if outcome is None else "accepted" if outcome.accepted else "rejected"
    )
    request_event_id = (
        outcome.request_event_id if outcome is not None
        else record.request_event_id if record is not None
        else redemption_request_id(member_id, command_id)
    )  # fmt: skip
    grants = decided.grants if decided is not None and decided.grants is not None else ()
    return Redemption(
        command_id=command_id,
        member_id=member_id,
        request_event_id=request_event_id,
        status=status,
        status_url=status_url(member_id, command_id),
        reward_id=record.reward_id if record is not None else None,
        program_id=record.program_id if record is not None else None,
        quantity=record.quantity if record is not None else None,
        points_debited=outcome.points_debited if outcome is not None and outcome.accepted else None,
        ledger_event_log_id=outcome.ledger_event_log_id if outcome is not None else None,
        granted_rewards=[wallet_reward(g, now) for g in grants],
        reason=outcome.reason if outcome is not None else None,
        detail=outcome.detail if outcome is not None else None,
        decided_at=outcome.decided_at if outcome is not None else None,
    )


_EXAMPLE_GRANT = {
    "granted_reward_id": "GR-5f2c0e9a41d7b3c28e6f01a9d4b7c3e2",
    "reward_id": "FREE_MUFFIN",
    "status": "ISSUED",
    "is_usable": True,
    "reason": "REDEMPTION",
    "code": "MUF-7QK2-X9",
    "redemption_token": "MUF-7QK2-X9",
    "expires_at": "2026-12-31T15:04:05Z",
    "granted_at": "2026-12-01T15:04:05Z",
    "closed_at": None,
    "program_id": "CA_REWARDS",
    "points_spent": 15000,
    "command_id": "redeem-2026-12-01-0001",
    "offer_id": None,
    "challenge_id": None,
}
_EXAMPLE: dict[str, Any] = {
    "command_id": "redeem-2026-12-01-0001",
    "member_id": "M1",
    "request_event_id": "reward-redemption-requested-0c1e4f3b8a9d2c7e6b5a4f3e2d1c0b9a",
    "status": "accepted",
    "status_url": "/v1/members/M1/redemptions/redeem-2026-12-01-0001",
    "reward_id": "FREE_MUFFIN",
    "program_id": "CA_REWARDS",
    "quantity": 1,
    "points_debited": 15000,
    "ledger_event_log_id": "LE-9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d",
    "granted_rewards": [_EXAMPLE_GRANT],
    "reason": None,
    "detail": None,
    "decided_at": "2026-12-01T15:04:05Z",
}
_PENDING = _EXAMPLE | {
    "status": "pending", "points_debited": None, "ledger_event_log_id": None,
    "granted_rewards": [], "decided_at": None,
}  # fmt: skip
_REJECTED = _PENDING | {
    "status": "rejected", "reason": "out_of_stock", "detail": "reward FREE_MUFFIN: out of codes",
    "decided_at": "2026-12-01T15:04:05Z",
}  # fmt: skip
_LOCATION = {"Location": {"description": "The status URL.", "schema": {"type": "string"}}}


def _documented(
    description: str, example: dict[str, Any], model: type = Redemption
) -> dict[str, Any]:
    return {
        "model": model,
        "description": description,
        "content": {"application/json": {"example": example}},
    }


_POST_RESPONSES: dict[int | str, Any] = {
    **refusals(
        400, 401, 403, 414, 503,
        described={
            400: "invalid_parameter: missing or invalid Idempotency-Key, a malformed member id, "
            "or a body without a valid reward_id, program_id or quantity (1–100)",
            403: "forbidden: a member token on another member's path",
            503: "commands_unavailable (the request could not be written: retry with the same "
            "key) or database_unavailable; retry after `Retry-After`",
        },
    ),
    201: {**_documented("Accepted: the rewards granted, with their codes or tokens and expiry.",
                        _EXAMPLE), "headers": _LOCATION},
    202: {**_documented("Written, not decided within the wait: read `status_url` (also in "
                        "`Location`) later.", _PENDING), "headers": _LOCATION},
    409: {**_documented("A repeat of a key already used with the same body: the original "
                        "outcome (accepted or rejected); nothing was written again.", _REJECTED),
          "headers": _LOCATION},
    422: _documented(
        "Refused, nothing debited: `error` is the worker's stable reason (insufficient_points, "
        "out_of_stock, reward_expired, reward_unavailable, not_eligible, limit_reached, "
        "unknown_reward, unknown_member, member_merged) and `reason` its detail; or "
        "idempotency_key_reused: the key was used for another body by this member.",
        {"error": "insufficient_points", "reason": "CA_REWARDS: balance 1200 < 15000 requested"},
        ErrorBody,
    ),
}  # fmt: skip


_GET_RESPONSES: dict[int | str, Any] = {
    **refusals(
        400, 401, 403, 404, 414, 503,
        described={
            403: "forbidden: a member token on another member's path",
            404: "not_found: this member never used that key for a reward redemption",
            503: "database_unavailable: retry after `Retry-After`",
        },
    ),
    200: _documented("Decided: accepted (with the grants) or rejected (with the reason).",
                     _EXAMPLE),
    202: _documented("Written, not decided yet: ask again.", _PENDING),
}  # fmt: skip


@router.post(
    "",
    status_code=201,
    response_model=Redemption,
    summary="Redeem a reward with points; waits a bounded time for the decision",
    responses=_POST_RESPONSES,
)
async def redeem_reward(
    request: Request, member_id: MemberId, command_id: CommandId, body: RedemptionRequest
) -> Any:
    """Spend the member's points on a reward (see the module for the order of the checks).
    Retrying with the same Idempotency-Key and body is safe: it never writes twice, and
    answers 409 with the original outcome."""
    app = request.app
    store: RewardStore = app.state.reward_store
    now: datetime = app.state.clock()
    event = RewardRedemptionRequested(
        event_id=redemption_request_id(member_id, command_id),
        occurred_at=now,
        command_id=command_id,
        member_id=member_id,
        reward_id=body.reward_id,
        program_id=body.program_id,
        quantity=body.quantity,
        source=Source.APP,
    )
    mine = RedemptionRecord(
        member_id=member_id,
        command_id=command_id,
        body_digest=identity.digest(event, identity.REQUEST),
        request_event_id=event.event_id,
        reward_id=body.reward_id,
        program_id=body.program_id,
        quantity=body.quantity,
        received_at=now,
        claimed_at=now,
    )
    wakeups: Wakeups = app.state.wakeups
    # Expected before anything is written: the answer may be read before the write returns.
    with wakeups.expecting(*expected_answers(member_id, command_id)) as heard:
        earlier = await store.claim(mine)
        if earlier is None:
            await write_claimed(
                app.state.command_sink,
                event,
                release=store.release,
                written=store.written,
                now=now,
            )
        elif earlier.body_digest != mine.body_digest:
            raise KeyReusedError(command_id)
        elif (
            earlier.written_at is None
            and now - earlier.claimed_at >= UNWRITTEN_RECLAIM_AFTER
            and await store.reclaim(member_id, command_id, earlier.claimed_at, now)
        ):
            await write_claimed(
                app.state.command_sink,
                event,
                release=store.release,
                written=store.written,
                now=now,
            )
        record = earlier or mine
        decided = await wait_for_decision(
            store, wakeups, member_id, command_id, wait=app.state.decision_wait, heard=heard
        )
    answer = body_of(member_id, command_id, record, decided, now)
    if decided is None:
        return located(202, answer, answer.status_url)
    if earlier is not None:
        return located(409, answer, answer.status_url)
    if not decided.outcome.accepted:
        reason = decided.outcome.reason or "UNKNOWN"
        raise ApiError(422, reason, decided.outcome.detail or reason)
    return located(201, answer, answer.status_url)


@router.get(
    "/{command_id:path}",
    response_model=Redemption,
    summary="A reward redemption's state: its outcome once decided",
    responses=_GET_RESPONSES,
)
async def read_redemption(
    request: Request,
    member_id: MemberId,
    command_id: Annotated[
        ApiId, Path(description="The Idempotency-Key the redemption was made with.")
    ],
) -> Any:
    """200 with the outcome, 202 while it is pending, 404 for a key never used here."""
    store: RewardStore = request.app.state.reward_store
    now: datetime = request.app.state.clock()
    record = await store.record(member_id, command_id)
    decided = await decision(store, member_id, command_id)
    if record is None and decided is None:
        raise NotFoundError(f"no reward redemption '{command_id}' for member '{member_id}'")
    body = body_of(member_id, command_id, record, decided, now)
    if decided is None or not decided.is_complete:
        return JSONResponse(body.model_dump(mode="json"), status_code=202)
    return body
