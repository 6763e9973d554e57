"""Bodies of the member-service endpoints (docs/adr/0028-member-services.md): enrolment."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from processors.contract.base import Market
from processors.contract.enrolments import MemberProfile
from projections.api.identifiers import ApiId
from projections.api.schemas import Body, Instant

DecisionStatus = Literal["accepted", "rejected", "pending"]


class EnrolmentRequest(BaseModel):
    """The body of `POST /v1/members/{id}/enrolment`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    market: Market = Field(description="The member's market.", examples=["CA"])
    program_id: ApiId = Field(
        description="The market's programme to join.", examples=["CA_REWARDS"]
    )
    profile: MemberProfile | None = Field(
        default=None,
        description="What the member tells about themselves (names, email, date of birth for "
        "birthday rewards, preferred language, ...); the fields of the contract's "
        "MemberProfile.",
    )


class Enrolment(Body):
    """An enrolment and, once decided, the worker's answer."""

    command_id: str = Field(description="The Idempotency-Key.")
    member_id: str
    request_event_id: str = Field(
        description="The MemberEnrolled's event id, derived from the member and the key."
    )
    status: DecisionStatus = Field(
        description="accepted (the programme's accounts are open), rejected (nothing opened; "
        "see reason), or pending (written, not decided yet: ask `status_url`)."
    )
    status_url: str = Field(description="Where this enrolment's state is read again.")
    market: str
    program_ids: list[str] = Field(description="The programmes the enrolment asked to join.")
    ledger_event_log_id: str | None = Field(
        description="The registration's ledger event (the opening balances); null until accepted."
    )
    reason: str | None = Field(
        description="When rejected: the stable reason (already_enrolled, unknown_programme, "
        "market_mismatch, programme_disabled, member_merged)."
    )
    detail: str | None = Field(description="The worker's words, for a person; never parsed.")
    decided_at: Instant | None = Field(description="When the worker decided; null: pending.")


ENROLMENT_EXAMPLE: dict[str, Any] = {
    "command_id": "enrol-2026-12-01-0001",
    "member_id": "M1",
    "request_event_id": "member-enrolled-3f0c9a1b2d4e5f60718293a4b5c6d7e8",
    "status": "accepted",
    "status_url": "/v1/members/M1/enrolment/enrol-2026-12-01-0001",
    "market": "CA",
    "program_ids": ["CA_REWARDS"],
    "ledger_event_log_id": "LE-9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d",
    "reason": None,
    "detail": "joined CA_REWARDS",
    "decided_at": "2026-12-01T15:04:05Z",
}
ENROLMENT_PENDING = ENROLMENT_EXAMPLE | {
    "status": "pending", "ledger_event_log_id": None, "detail": None, "decided_at": None,
}  # fmt: skip
ENROLMENT_REJECTED = ENROLMENT_PENDING | {
    "status": "rejected", "reason": "programme_disabled",
    "detail": "programme CA_REWARDS is not open", "decided_at": "2026-12-01T15:04:05Z",
}  # fmt: skip
