"""Member care: find a member by id or email, the member's page, and a manual points
adjustment (docs/adr/0036-member-care-console.md).

The page reads through the API's own modules: balances, lots and the ledger with the API's
filters (`ledger_queries`, `views`), the wallet (`reward_store`), the offers targeted with
their progress (`feed_store` and `offer_feed`, as `GET /v1/members/{id}/offers`), preferences
with their audit trail and the inbox (`member_store`); only the search and the member's codes
are the console's own (`member_queries`). An adjustment at or under the approval threshold is
published at once; above it, it waits for an admin (`routes_approvals`). Every submission,
refused ones included, is audited.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from processors.contract.common import PointsCategory, Source
from processors.contract.ledger import EntryType
from projections.api import ledger_queries
from projections.api.errors import BadParameterError
from projections.api.feed_schemas import MemberFeed
from projections.api.offer_feed import member_feed
from projections.api.views import PAGE_SIZE_MAX, decode_cursor, encode_cursor, ledger_view
from projections.console import publishing
from projections.console.adjustments import (
    ADJUSTMENT_ID,
    NOTE_MAX,
    AdjustmentPolicy,
    AdjustmentStore,
    OverLimitError,
    ReasonCode,
    Submitted,
    new_adjustment_id,
)
from projections.console.member_queries import MemberQueries
from projections.console.pages import audit_log, now, redirect, render
from projections.console.roles import Area
from projections.console.sessions import CheckedForm, Staff, allowed

router = APIRouter(include_in_schema=False)
Agent = Annotated[Staff, Depends(allowed(Area.MEMBER_CARE))]
LOCALE = "en"
SHORT_LIST = 10

POINTS = re.compile(r"[0-9]{1,12}")
"""A points field: ASCII digits, at most 12 (far past any limit, well inside a bigint)."""

LEDGER_FILTERS = ("source", "entry_type", "category", "program_id", "till_id", "from", "to")
NO_FILTERS = dict.fromkeys(LEDGER_FILTERS, "")
KINDS: dict[str, Any] = {"source": Source, "entry_type": EntryType, "category": PointsCategory}
CHOICES = {name: [v.value for v in kind if v.value != "UNKNOWN"] for name, kind in KINDS.items()}
"""The ledger's choice filters and the values each offers (a newer producer's UNKNOWN is not
one to filter by)."""


def policy_of(request: Request) -> AdjustmentPolicy:
    policy: AdjustmentPolicy = request.app.state.adjustment_policy
    return policy


def adjustments_of(request: Request) -> AdjustmentStore:
    store: AdjustmentStore = request.app.state.staff_adjustments
    return store


@router.get("/members")
async def search_page(
    request: Request, staff: Agent, q: Annotated[str, Query(max_length=320)] = ""
) -> Response:
    q = q.strip()
    found = await MemberQueries(request.app.state.pool).search(q) if q else []
    if len(found) == 1:
        return redirect(f"/console/members/{quote(found[0].member_id, safe='')}")
    return render(request, "members/search.html", staff, q=q, found=found)


@dataclass
class AdjustmentForm:
    """The adjustment form's values and its errors, field by field."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def read_adjustment(
    member_id: str, program_ids: list[str], values: dict[str, str]
) -> tuple[Submitted | None, AdjustmentForm]:
    """The form's adjustment, or its errors by field."""
    form = AdjustmentForm(values)
    program_id = values.get("program_id", "")
    if program_id not in program_ids:
        form.errors["program_id"] = "Choose one of the member's programmes."
    direction = values.get("direction", "")
    if direction not in ("credit", "debit"):
        form.errors["direction"] = "Choose credit or debit."
    points_text = values.get("points", "").strip()
    # ASCII digits only: str.isdigit() takes "²", which int() refuses.
    points = int(points_text) if POINTS.fullmatch(points_text) else 0
    if points < 1:
        form.errors["points"] = "Enter a whole number of points, 1 or more."
    reason = values.get("reason_code", "")
    if reason not in {r.value for r in ReasonCode}:
        form.errors["reason_code"] = "Choose a reason."
    note = values.get("note", "").strip()
    if not note:
        form.errors["note"] = "Say what happened: the note is kept with the adjustment."
    elif len(note) > NOTE_MAX:
        form.errors["note"] = f"At most {NOTE_MAX} characters ({len(note)} given)."
    adjustment_id = values.get("adjustment_id", "")
    if not ADJUSTMENT_ID.fullmatch(adjustment_id):
        form.errors["adjustment_id"] = "The form had no adjustment id: submit it again."
        form.values["adjustment_id"] = new_adjustment_id()
    if form.errors:
        return None, form
    submitted = Submitted(
        adjustment_id=adjustment_id,
        member_id=member_id,
        program_id=program_id,
        direction="credit" if direction == "credit" else "debit",
        points=points,
        reason_code=ReasonCode(reason),
        note=note,
    )
    return submitted, form


def _ledger_query(values: dict[str, str]) -> dict[str, Any]:
    """The ledger filters as `views.ledger_view` takes them (the form's date-times are UTC);
    BadParameterError for a choice the filter does not offer."""

    def instant(text: str) -> str | None:
        # A datetime-local field sends 2026-12-06T10:00: minutes, no zone; the console is UTC.
        return f"{text}:00Z" if len(text) == len("2026-12-06T10:00") else text or None

    def enum(name: str) -> Any:
        text = values.get(name, "")
        if text and text not in CHOICES[name]:
            raise BadParameterError(name, f"must be one of {', '.join(CHOICES[name])}")
        return KINDS[name](text) if text else None

    return {
        "source": enum("source"),
        "entry_type": enum("entry_type"),
        "category": enum("category"),
        "program_id": values.get("program_id") or None,
        "till_id": values.get("till_id") or None,
        "recorded_from": instant(values.get("from", "")),
        "recorded_to": instant(values.get("to", "")),
    }


async def _member_page(
    request: Request,
    staff: Staff,
    member_id: str,
    *,
    filters: dict[str, str],
    cursor: str = "",
    form: AdjustmentForm | None = None,
    status_code: int = 200,
    notice: str = "",
    error: str = "",
) -> Response:
    app = request.app
    at = now(request)
    ledger_error = ""
    async with app.state.pool.connection() as conn:
        member = await ledger_queries.find_member(conn, member_id)
        if not member.exists:
            return render(request, "refused.html", staff, 404, reason=f"No member {member_id}")
        lots = await ledger_queries.balances_with_lots(conn, member_id)
        try:
            view = ledger_view(now=at, **_ledger_query(filters))
            after = decode_cursor(cursor) if cursor else None
            ledger = await ledger_queries.ledger_page(
                conn, member_id, view, after_sequence=after, limit=PAGE_SIZE_MAX
            )
        except BadParameterError as refused:
            ledger_error = f"{refused.parameter}: {refused.reason}"
            ledger = ledger_queries.EventPage(events=[], has_more=False)
            view = None
    next_cursor = (
        encode_cursor(ledger.events[-1]["sequence"]) if ledger.has_more and ledger.events else ""
    )
    accounts: dict[tuple[str, str], dict[str, Any]] = {}
    for row in lots:
        account = accounts.setdefault(
            (row["program_id"], row["category"]), {"balance": row["balance"], "lots": []}
        )
        if row["points"] is not None:
            account["lots"].append(row)
    wallet = await app.state.reward_store.wallet(
        member_id, limit=SHORT_LIST, after=None, status=None
    )
    found = await app.state.feed_store.member_items(member_id, at)
    offers = (
        MemberFeed.model_validate_json(
            member_feed(found[0], found[1], LOCALE, at, app.state.feed_fragments)
        ).offers
        if found is not None
        else []
    )
    store = app.state.member_store
    holder = await store.member(member_id)
    inbox, unread = (
        await store.inbox(holder, at, limit=SHORT_LIST, after=None) if holder else ([], 0)
    )
    codes = MemberQueries(app.state.pool)
    program_ids = holder.program_ids if holder else []
    filter_query = urlencode({k: v for k, v in filters.items() if v})
    return render(
        request,
        "members/member.html",
        staff,
        status_code,
        member=member,
        accounts=accounts,
        ledger=ledger.events,
        ledger_error=ledger_error,
        view=view,
        filters=filters,
        filter_query=filter_query,
        choices=CHOICES,
        next_cursor=next_cursor,
        wallet=wallet.rewards if wallet else [],
        offers=offers,
        preferences=await store.preferences(member_id),
        preference_trail=await store.audit(member_id, limit=SHORT_LIST, after=None),
        inbox=inbox,
        unread=unread,
        linked_codes=await codes.linked_codes(member_id),
        used_codes=await codes.used_codes(member_id),
        adjustments=await adjustments_of(request).of_member(member_id),
        program_ids=program_ids,
        reasons=list(ReasonCode),
        form=form or AdjustmentForm({"direction": "credit", "adjustment_id": new_adjustment_id()}),
        policy=policy_of(request),
        used_today=await adjustments_of(request).used_today(staff.name, at),
        note_max=NOTE_MAX,
        notice=notice,
        error=error,
    )


@router.get("/members/{member_id}")
async def member_page(
    request: Request,
    staff: Agent,
    member_id: str,
    cursor: Annotated[str, Query(max_length=64)] = "",
    adjusted: Annotated[str, Query(max_length=16)] = "",
    source: Annotated[str, Query(max_length=32)] = "",
    entry_type: Annotated[str, Query(max_length=32)] = "",
    category: Annotated[str, Query(max_length=32)] = "",
    program_id: Annotated[str, Query(max_length=128)] = "",
    till_id: Annotated[str, Query(max_length=128)] = "",
    recorded_from: Annotated[str, Query(alias="from", max_length=40)] = "",
    recorded_to: Annotated[str, Query(alias="to", max_length=40)] = "",
) -> Response:
    filters = {
        "source": source,
        "entry_type": entry_type,
        "category": category,
        "program_id": program_id,
        "till_id": till_id,
        "from": recorded_from,
        "to": recorded_to,
    }
    notice = {
        "published": "Adjustment published: the ledger shows it once the engine has booked it.",
        "pending": "Adjustment over the approval threshold: it waits for an admin's approval.",
        "unpublished": "Adjustment recorded but not published yet: an admin can publish it "
        "again from the approvals queue.",
        "rejected": "This adjustment was rejected by an admin.",
        "resent": "This form was sent already: the adjustment is recorded once and is being "
        "published. If the ledger does not show it in a minute, an admin can publish it again "
        "from the approvals queue.",
    }.get(adjusted, "")
    return await _member_page(
        request, staff, member_id, filters=filters, cursor=cursor, notice=notice
    )


@router.post("/members/{member_id}/adjustments")
async def adjust_points(
    request: Request, staff: Agent, member_id: str, form_data: CheckedForm
) -> Response:
    values = {k: v for k, v in form_data.items() if isinstance(v, str) and k != "csrf_token"}
    holder = await request.app.state.member_store.member(member_id)
    submitted, form = read_adjustment(member_id, holder.program_ids if holder else [], values)
    at = now(request)
    log = audit_log(request)
    subject = f"member {member_id}"
    if holder is not None and holder.status == "MERGED":
        # The engine refuses it (the points are the survivor's now); stored, it would still
        # have counted towards the agent's daily limit (found by a user trial).
        await log.record(staff, "adjust points", at=at, subject=subject, after=values,
                         outcome="refused: the member was merged into another")  # fmt: skip
        return await _member_page(
            request, staff, member_id, filters=NO_FILTERS, form=form, status_code=422,
            error="The adjustment was not made: this member was merged into another; adjust "
            "the survivor's points.",
        )  # fmt: skip
    if submitted is None:
        await log.record(
            staff, "adjust points", at=at, subject=subject, after=values, outcome="refused: "
            + "; ".join(f"{k}: {v}" for k, v in form.errors.items()),
        )  # fmt: skip
        return await _member_page(
            request, staff, member_id, filters=NO_FILTERS, form=form, status_code=422,
            error="The adjustment was not made: correct the fields marked below.",
        )  # fmt: skip
    store = adjustments_of(request)
    try:
        adjustment, new = await store.submit(staff, submitted, policy_of(request), at)
    except OverLimitError as over:
        await log.record(staff, "adjust points", at=at, subject=subject, after=values,
                         outcome=f"refused: {over}")  # fmt: skip
        form.errors["points"] = f"Refused: {over}."
        return await _member_page(
            request, staff, member_id, filters=NO_FILTERS, form=form, status_code=422,
            error="The adjustment was not made: it is over your daily limit.",
        )  # fmt: skip
    page = f"/console/members/{quote(member_id, safe='')}?adjusted="
    if not new:
        # A resent form (a double click, a reload): the first submission's answer, nothing more.
        if adjustment.requested_by != staff.name or adjustment.member_id != member_id:
            refusal = "This form belongs to another adjustment: reload the page."
            return render(request, "refused.html", staff, 409, reason=refusal)
        resent = f"resent: adjustment {adjustment.adjustment_id} already made"
        await log.record(staff, "adjust points", at=at, subject=subject, after=values,
                         outcome=resent)  # fmt: skip
        if adjustment.state == "approved" and adjustment.published_at is None:
            # The first submission may still be publishing it (a user's trial double-clicked:
            # five answers said "not published" while the first was being published).
            return redirect(page + "resent")
        return redirect(
            page + ("published" if adjustment.state == "approved" else adjustment.state)
        )
    await log.record(staff, "adjust points", at=at, subject=subject, after=adjustment.as_json(),
                     outcome="done" if adjustment.state == "approved"
                     else "waiting for approval")  # fmt: skip
    if adjustment.state == "pending":
        return redirect(page + "pending")
    unsent = await publishing.publish(request, store, adjustment, staff)
    if unsent:
        return await _member_page(
            request, staff, member_id, filters=NO_FILTERS, status_code=503,
            error=f"The adjustment is recorded but could not be published yet ({unsent}); an "
            "admin can publish it again from the approvals queue.",
        )  # fmt: skip
    return redirect(page + "published")
