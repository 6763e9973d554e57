"""Answering a request (DESIGN.md §5.15, §5.27): the one place an outcome is built and a
repeated command_id is recognised. Every rule that answers a request (points redemptions and
transfers, adjustments, offer loads, requests not supported yet) calls `answer`, and asks
`repeated` before deciding anything, so an outcome's id, fields and re-emission are the same
whoever answers.

Pure: times and ids come from the request (or from the stored outcome when re-emitted).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from processors.contract.outcomes import RejectionReason, RequestAccepted, RequestRejected
from processors.contract.redemptions import RequestType
from processors.rules.arithmetic import derived_id

Outcome = RequestAccepted | RequestRejected


class Request(Protocol):
    """What every request carries."""

    @property
    def event_id(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def member_id(self) -> str: ...
    @property
    def command_id(self) -> str: ...
    @property
    def request_type(self) -> RequestType: ...


def outcome_id(request: Request) -> str:
    """The id of the outcome answering `request`: derived from the member and command, so a
    replay (or a repeat) answers with the same id."""
    return derived_id("OUT", request.member_id, request.command_id)


def answer(
    request: Request,
    *,
    reason: RejectionReason | None = None,
    event_id: str | None = None,
    occurred_at: datetime | None = None,
    member_id: str | None = None,
    request_event_id: str | None = None,
    **fields: Any,
) -> Outcome:
    """`RequestAccepted` (no `reason`) or `RequestRejected`, answering `request`; `fields` are
    the outcome's own (detail, points_debited, ...). `event_id`, `occurred_at`, `member_id` and
    `request_event_id` default to the request's; an answer rebuilt from a stored one passes
    the stored values, so a repeat is the same event again."""
    common: dict[str, Any] = {
        "event_id": event_id or outcome_id(request),
        "occurred_at": occurred_at or request.occurred_at,
        "member_id": member_id or request.member_id,
        "command_id": request.command_id,
        "request_type": request.request_type,
        "request_event_id": request_event_id or request.event_id,
    }
    if reason is None:
        return RequestAccepted(**common, **fields)
    return RequestRejected(**common, reason=reason, **fields)


def repeated(outcomes: Mapping[str, Outcome] | None, command_id: str) -> Outcome | None:
    """The outcome already given to `command_id`, if any: what a repeat gets, unchanged."""
    if outcomes is None:
        return None
    return outcomes.get(command_id)
