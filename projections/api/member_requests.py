"""Member-service commands answered with the worker's decision (docs/adr/0028-member-services.md):
an enrolment (`MemberEnrolled`) and a preferences change (`PreferencesChangeRequested`).

The same protocol as the redemption endpoint (ADR 22) over one API-owned table,
`member_service_requests`, keyed by member, kind of request and Idempotency-Key: `submit`
claims the key, writes the request (or finds the earlier one) and waits for its outcome: heard
from Kafka, or found in `request_outcomes` when the projector commits it, whichever comes first
(`wakeups`, docs/adr/0034-answers-from-kafka.md). The request is kept whole
in its JSON form, so a repeat that takes over a claim whose writer died writes the same event
(same `occurred_at`) again: to the worker, a repeat.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import psycopg
from fastapi import FastAPI
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from processors.base.logs import get_logger
from processors.codec.json_form import from_json_object, to_json_object
from processors.contract.base import Event
from processors.contract.outcomes import RequestAccepted, RequestRejected
from processors.contract.redemptions import RequestType
from processors.rules import identity
from projections.api.answers import outcome_key
from projections.api.claims import UNWRITTEN_RECLAIM_AFTER, KeyReusedError
from projections.api.commands import CommandUnavailableError
from projections.api.wakeups import Wakeups, member_key

log = get_logger(__name__)


@dataclass(frozen=True)
class ServiceRecord:
    """What a member's Idempotency-Key was first used for, for one kind of request."""

    member_id: str
    kind: str
    command_id: str
    body_digest: str
    request_event_id: str
    request: dict[str, Any]
    received_at: datetime
    claimed_at: datetime
    written_at: datetime | None = None

    @property
    def event(self) -> Event:
        """The request event as it was first written."""
        return from_json_object(self.request)


@dataclass(frozen=True)
class ServiceOutcome:
    """The worker's answer to one member-service request (a `request_outcomes` row)."""

    command_id: str
    request_event_id: str
    accepted: bool
    reason: str | None
    detail: str | None
    ledger_event_log_id: str | None
    decided_at: datetime


class MemberRequestStore(Protocol):
    """The keys and outcomes of member-service requests."""

    async def record(self, member_id: str, kind: str, command_id: str) -> ServiceRecord | None:
        """The key's record, None if this member never used it for this kind."""
        ...

    async def claim(self, record: ServiceRecord) -> ServiceRecord | None:
        """Claim the key: None if claimed now, else the earlier record."""
        ...

    async def reclaim(
        self, member_id: str, kind: str, command_id: str, seen_claimed_at: datetime, at: datetime
    ) -> bool:
        """Take over a claim never confirmed written, as seen at `seen_claimed_at`."""
        ...

    async def written(self, member_id: str, kind: str, command_id: str, at: datetime) -> None: ...

    async def release(self, member_id: str, kind: str, command_id: str) -> None: ...

    async def outcome(
        self, member_id: str, request_type: RequestType, command_id: str
    ) -> ServiceOutcome | None:
        """The worker's answer to the request whose command id is `command_id`."""
        ...


_RECORD = """
SELECT member_id, kind, command_id, body_digest, request_event_id, request, received_at,
    claimed_at, written_at
FROM member_service_requests
WHERE member_id = %s AND kind = %s AND command_id = %s
"""

_CLAIM = """
INSERT INTO member_service_requests (member_id, kind, command_id, body_digest,
    request_event_id, request, received_at, claimed_at, written_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, NULL)
ON CONFLICT (member_id, kind, command_id) DO NOTHING
RETURNING 1
"""

_OUTCOME = """
SELECT command_id, request_event_id, accepted, reason, detail, ledger_event_log_id, decided_at
FROM request_outcomes
WHERE member_id = %s AND command_id = %s AND request_type = %s
"""


class PostgresMemberRequestStore:
    """`MemberRequestStore` over `request_outcomes` (`read`, the app's read-only pool) and
    `member_service_requests` (`write`, the API's small autocommit pool)."""

    def __init__(self, read: AsyncConnectionPool[Any], write: AsyncConnectionPool[Any]) -> None:
        self.read = read
        self.write = write

    async def record(self, member_id: str, kind: str, command_id: str) -> ServiceRecord | None:
        # Through the write pool: a record written a moment ago by this API must be seen.
        async with self.write.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(_RECORD, (member_id, kind, command_id))
            row = await cur.fetchone()
        return ServiceRecord(**row) if row is not None else None

    async def claim(self, record: ServiceRecord) -> ServiceRecord | None:
        while True:
            async with self.write.connection() as conn:
                values = (
                    record.member_id, record.kind, record.command_id, record.body_digest,
                    record.request_event_id, Jsonb(record.request), record.received_at,
                    record.claimed_at,
                )  # fmt: skip
                inserted = await (await conn.execute(_CLAIM, values)).fetchone()
            if inserted is not None:
                return None
            earlier = await self.record(record.member_id, record.kind, record.command_id)
            if earlier is not None:
                return earlier
            # Released between the two statements (its writer failed to write): claim afresh.

    async def reclaim(
        self, member_id: str, kind: str, command_id: str, seen_claimed_at: datetime, at: datetime
    ) -> bool:
        async with self.write.connection() as conn:
            taken = await (
                await conn.execute(
                    "UPDATE member_service_requests SET claimed_at = %s"
                    " WHERE member_id = %s AND kind = %s AND command_id = %s"
                    " AND written_at IS NULL AND claimed_at = %s RETURNING 1",
                    (at, member_id, kind, command_id, seen_claimed_at),
                )
            ).fetchone()
        return taken is not None

    async def written(self, member_id: str, kind: str, command_id: str, at: datetime) -> None:
        async with self.write.connection() as conn:
            await conn.execute(
                "UPDATE member_service_requests SET written_at = %s WHERE member_id = %s"
                " AND kind = %s AND command_id = %s AND written_at IS NULL",
                (at, member_id, kind, command_id),
            )

    async def release(self, member_id: str, kind: str, command_id: str) -> None:
        async with self.write.connection() as conn:
            await conn.execute(
                "DELETE FROM member_service_requests WHERE member_id = %s AND kind = %s"
                " AND command_id = %s AND written_at IS NULL",
                (member_id, kind, command_id),
            )

    async def outcome(
        self, member_id: str, request_type: RequestType, command_id: str
    ) -> ServiceOutcome | None:
        async with self.read.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(_OUTCOME, (member_id, command_id, request_type.value))
            row = await cur.fetchone()
        return ServiceOutcome(**row) if row is not None else None


def heard_outcome(events: Sequence[Event]) -> ServiceOutcome | None:
    """The outcome heard on Kafka, as `request_outcomes` will hold it; None without one."""
    for event in events:
        if isinstance(event, RequestAccepted):
            return ServiceOutcome(
                command_id=event.command_id, request_event_id=event.request_event_id,
                accepted=True, reason=None, detail=event.detail,
                ledger_event_log_id=event.ledger_event_log_id, decided_at=event.occurred_at,
            )  # fmt: skip
        if isinstance(event, RequestRejected):
            return ServiceOutcome(
                command_id=event.command_id, request_event_id=event.request_event_id,
                accepted=False, reason=event.reason.value, detail=event.detail,
                ledger_event_log_id=None, decided_at=event.occurred_at,
            )  # fmt: skip
    return None


@dataclass(frozen=True)
class Submitted:
    """A submitted request: the record that holds its key, whether this call is a repeat of
    an earlier one, and the outcome if it came within the wait."""

    record: ServiceRecord
    repeat: bool
    outcome: ServiceOutcome | None


async def submit(
    app: FastAPI,
    kind: RequestType,
    event: Event,
    *,
    member_id: str,
    command_id: str,
    outcome_command_id: str,
) -> Submitted:
    """Claim `command_id` for `event` (the member's request of `kind`), write it unless it is a
    repeat, and wait up to the app's `decision_wait` for the answer to `outcome_command_id`.

    In order (ADR 22): claimed now: written (503 and the claim released if it cannot be);
    claimed before with another body: 422 `idempotency_key_reused`, nothing written; claimed
    before with this body: a repeat, nothing written unless its writer never confirmed the
    write for `UNWRITTEN_RECLAIM_AFTER` (then exactly one repeat writes the same event again).
    """
    store: MemberRequestStore = app.state.member_requests
    now: datetime = app.state.clock()
    mine = ServiceRecord(
        member_id=member_id,
        kind=kind.value,
        command_id=command_id,
        body_digest=identity.digest(event, identity.REQUEST),
        request_event_id=event.event_id,
        request=to_json_object(event),
        received_at=now,
        claimed_at=now,
    )

    async def write(record: ServiceRecord) -> None:
        # claims.write_claimed's steps, for a request whose key is not a field of the event
        # (an enrolment's): write; on failure release the claim and answer 503; mark it written.
        try:
            await app.state.command_sink.send(record.event)
        except CommandUnavailableError:
            with contextlib.suppress(psycopg.Error):  # kept: a repeat reclaims it later
                await store.release(member_id, kind.value, command_id)
            raise
        try:
            await store.written(member_id, kind.value, command_id, now)
        except psycopg.Error as error:
            log.warning("member_requests.written_not_recorded", kind=kind.value,
                        error=repr(error)[:300])  # fmt: skip

    async def look() -> ServiceOutcome | None:
        return await store.outcome(member_id, kind, outcome_command_id)

    wakeups: Wakeups = app.state.wakeups
    # Expected before anything is written: the answer may be read before the write returns.
    with wakeups.expecting(outcome_key(member_id, kind, outcome_command_id)) as heard:
        earlier = await store.claim(mine)
        if earlier is None:
            await write(mine)
        elif earlier.body_digest != mine.body_digest:
            raise KeyReusedError(command_id)
        elif (
            earlier.written_at is None
            and now - earlier.claimed_at >= UNWRITTEN_RECLAIM_AFTER
            and await store.reclaim(member_id, kind.value, command_id, earlier.claimed_at, now)
        ):
            await write(earlier)  # the very event first claimed, its time included
        outcome = await wakeups.until(
            member_key(member_id), look, wait=app.state.decision_wait, heard=heard,
            judge=heard_outcome,
        )  # fmt: skip
    return Submitted(earlier or mine, earlier is not None, outcome)


async def status(
    app: FastAPI, kind: RequestType, member_id: str, command_id: str
) -> tuple[ServiceRecord | None, ServiceOutcome | None]:
    """A key's record and, if decided, its outcome (both None: never used for `kind`)."""
    store: MemberRequestStore = app.state.member_requests
    record = await store.record(member_id, kind.value, command_id)
    if record is None:
        return None, None
    outcome_command_id = _outcome_command_id(record)
    return record, await store.outcome(member_id, kind, outcome_command_id)


def _outcome_command_id(record: ServiceRecord) -> str:
    """The command id the worker answers: an enrolment's event_id, else the request's own."""
    event = record.request
    return str(event.get("command_id") or event["event_id"])
