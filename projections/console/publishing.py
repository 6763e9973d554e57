"""Publishing from the console, audited: the one path for what staff send to the engine
(offers, extensions, withdrawals, audience lists, points adjustments;
docs/adr/0035-staff-console.md, docs/adr/0036-member-care-console.md).

`send_audited` records the attempt in the staff audit log first, and sends nothing when it
cannot (`NotRecordedError`): nothing reaches the engine that the log does not show. Then the
outcome. `publish` is the path of an approved points adjustment, on submission or when an admin
approves it or publishes it again: the request goes through the API's command sink, which
returns once Kafka has acknowledged it; only then is the adjustment marked published. A
failure leaves it approved and unpublished, and publishing it again sends the same event id
and command id, so the engine books it once.
"""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import Request

from processors.contract.base import Event
from projections.api.commands import CommandUnavailableError
from projections.console.adjustments import Adjustment, AdjustmentStore
from projections.console.audit import AuditUnavailableError
from projections.console.pages import audit_log, now
from projections.console.sessions import Staff


class NotRecordedError(Exception):
    """The attempt could not be audited, so nothing was published (the message says so)."""


async def send_audited(
    request: Request,
    staff: Staff,
    action: str,
    subject: str,
    events: list[Event],
    *,
    before: Any = None,
    after: Any = None,
) -> str | None:
    """Publish `events` in order through the API's command sink, audited: the attempt is
    recorded first, and when it cannot be, nothing is sent (NotRecordedError); then the
    outcome. Why not published, when the sink refuses."""
    log, at = audit_log(request), now(request)
    entry = {"at": at, "subject": subject, "before": before, "after": after}
    try:
        await log.record(staff, action, **entry, outcome="attempted")
    except AuditUnavailableError as error:
        raise NotRecordedError(f"nothing was published: {error}; try again later") from error
    unsent = None
    for event in events:
        try:
            await request.app.state.command_sink.send(event)
        except CommandUnavailableError as error:
            unsent = error.reason
            break
    # The attempt is on record; an outcome the log cannot take does not undo what was sent.
    with contextlib.suppress(AuditUnavailableError):
        await log.record(staff, action, **entry, outcome=f"failed: {unsent}" if unsent else "done")
    return unsent


async def publish(
    request: Request, store: AdjustmentStore, adjustment: Adjustment, staff: Staff
) -> str | None:
    """Publish `adjustment` (approved), audited (`send_audited`); why not, when the attempt
    cannot be recorded or the sink cannot write it."""
    event = adjustment.request()
    after = {"adjustment_id": adjustment.adjustment_id, "event_id": event.event_id,
             "command_id": event.command_id}  # fmt: skip
    try:
        subject = f"member {adjustment.member_id}"
        unsent = await send_audited(
            request, staff, "publish adjustment", subject, [event], after=after
        )
    except NotRecordedError as error:
        return str(error)
    if unsent is None:
        await store.published(adjustment.adjustment_id, now(request))
    return unsent
