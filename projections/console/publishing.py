"""Publishing an approved points adjustment: the one path for adjustments approved on
submission and for those an admin approves (docs/adr/0036-member-care-console.md).

The request goes through the API's command sink, which returns once Kafka has acknowledged
it; only then is the adjustment marked published. A failure leaves it approved and unpublished,
and publishing it again sends the same event id and command id, so the engine books it once.
"""

from __future__ import annotations

from fastapi import Request

from projections.api.commands import CommandUnavailableError
from projections.console.adjustments import Adjustment, AdjustmentStore
from projections.console.pages import audit_log, now
from projections.console.sessions import Staff


async def publish(
    request: Request, store: AdjustmentStore, adjustment: Adjustment, staff: Staff
) -> str | None:
    """Publish `adjustment` (approved); why not, when the sink cannot write it. Audited."""
    event = adjustment.request()
    at = now(request)
    try:
        await request.app.state.command_sink.send(event)
    except CommandUnavailableError as error:
        await audit_log(request).record(
            staff, "publish adjustment", at=at, subject=f"member {adjustment.member_id}",
            after={"adjustment_id": adjustment.adjustment_id, "event_id": event.event_id},
            outcome=f"failed: {error.reason}",
        )  # fmt: skip
        return error.reason
    await store.published(adjustment.adjustment_id, at)
    await audit_log(request).record(
        staff, "publish adjustment", at=at, subject=f"member {adjustment.member_id}",
        after={"adjustment_id": adjustment.adjustment_id, "event_id": event.event_id,
               "command_id": event.command_id},
    )  # fmt: skip
    return None
