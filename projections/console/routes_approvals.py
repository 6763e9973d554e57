"""The approvals queue, for admins: points adjustments over the threshold wait here until an
admin other than their maker approves (then they are published, once) or rejects them with a
reason (docs/adr/0036-member-care-console.md). Every decision, and every refused one, is
audited.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from projections.console import publishing
from projections.console.adjustments import Adjustment, AdjustmentStore
from projections.console.pages import audit_log, now, redirect, render
from projections.console.roles import Area
from projections.console.sessions import CheckedForm, Staff, allowed

router = APIRouter(include_in_schema=False)
Checker = Annotated[Staff, Depends(allowed(Area.APPROVALS))]
DECIDED_SHOWN = timedelta(days=7)
REASON_MAX = 500


def _store(request: Request) -> AdjustmentStore:
    store: AdjustmentStore = request.app.state.staff_adjustments
    return store


async def _queue_page(
    request: Request, staff: Staff, status_code: int = 200, *, notice: str = "", error: str = ""
) -> Response:
    rows = await _store(request).queue(since=now(request) - DECIDED_SHOWN)
    return render(
        request, "approvals/queue.html", staff, status_code,
        adjustments=rows, notice=notice, error=error, reason_max=REASON_MAX,
    )  # fmt: skip


@router.get("/approvals")
async def queue_page(request: Request, staff: Checker, done: str = "") -> Response:
    notice = {
        "approved": "Approved and published.",
        "rejected": "Rejected: nothing was published.",
        "published": "Published.",
    }.get(done, "")
    return await _queue_page(request, staff, notice=notice)


def _why_not(adjustment: Adjustment | None, checker: str) -> str:
    """Why a decision on this adjustment is refused."""
    if adjustment is None:
        return "No such adjustment"
    if adjustment.requested_by == checker:
        return "You made this adjustment: another admin must decide it (maker/checker)"
    return f"This adjustment is already {adjustment.state} (by {adjustment.decided_by})"


async def _refused(request: Request, staff: Staff, action: str, adjustment_id: str,
                   reason: str, status_code: int) -> Response:  # fmt: skip
    await audit_log(request).record(
        staff, action, at=now(request), subject=f"adjustment {adjustment_id}",
        outcome=f"refused: {reason}",
    )  # fmt: skip
    return await _queue_page(request, staff, status_code, error=reason)


async def _decide(
    request: Request, staff: Staff, adjustment_id: str, *, approve: bool, reason: str | None
) -> Adjustment | Response:
    """The adjustment once decided and audited, or the refusal's page (audited too)."""
    action = "approve adjustment" if approve else "reject adjustment"
    store = _store(request)
    before = await store.one(adjustment_id)
    at = now(request)
    decided = await store.decide(adjustment_id, staff.name, approve=approve, at=at, reason=reason)
    if decided is None:
        status = 404 if before is None else 403 if before.requested_by == staff.name else 409
        why = _why_not(before, staff.name)
        return await _refused(request, staff, action, adjustment_id, why, status)
    await audit_log(request).record(
        staff, action, at=at, subject=f"adjustment {adjustment_id}",
        before=before.as_json() if before else None, after=decided.as_json(),
    )  # fmt: skip
    return decided


@router.post("/approvals/{adjustment_id}/approve")
async def approve(
    request: Request, staff: Checker, adjustment_id: str, form_data: CheckedForm
) -> Response:
    decided = await _decide(request, staff, adjustment_id, approve=True, reason=None)
    if isinstance(decided, Response):
        return decided
    unsent = await publishing.publish(request, _store(request), decided, staff)
    if unsent:
        return await _queue_page(
            request, staff, 503,
            error=f"Approved, but not published yet ({unsent}): publish it again below",
        )  # fmt: skip
    return redirect("/console/approvals?done=approved")


@router.post("/approvals/{adjustment_id}/reject")
async def reject(
    request: Request, staff: Checker, adjustment_id: str, form_data: CheckedForm
) -> Response:
    reason = str(form_data.get("reason", "")).strip()
    if not reason or len(reason) > REASON_MAX:
        why = f"Say why it is rejected (1 to {REASON_MAX} characters)"
        return await _refused(request, staff, "reject adjustment", adjustment_id, why, 422)
    decided = await _decide(request, staff, adjustment_id, approve=False, reason=reason)
    if isinstance(decided, Response):
        return decided
    return redirect("/console/approvals?done=rejected")


@router.post("/approvals/{adjustment_id}/publish")
async def publish_again(
    request: Request, staff: Checker, adjustment_id: str, form_data: CheckedForm
) -> Response:
    """An approved adjustment whose publishing failed: the same request again."""
    store = _store(request)
    adjustment = await store.one(adjustment_id)
    if adjustment is None or adjustment.state != "approved" or adjustment.published_at:
        reason = (
            _why_not(adjustment, "")
            if adjustment is None or adjustment.state != "approved"
            else "This adjustment is already published"
        )
        return await _refused(request, staff, "publish adjustment", adjustment_id, reason, 409)
    unsent = await publishing.publish(request, store, adjustment, staff)
    if unsent:
        return await _queue_page(request, staff, 503, error=f"Not published yet: {unsent}")
    return redirect("/console/approvals?done=published")
