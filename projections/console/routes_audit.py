"""The staff audit log, for admins: newest first, filtered by who, what and on what."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from projections.console.audit import PAGE_SIZE
from projections.console.pages import audit_log, render
from projections.console.roles import Area
from projections.console.sessions import Staff, allowed

router = APIRouter(include_in_schema=False)


@router.get("/audit")
async def audit_page(
    request: Request,
    staff: Annotated[Staff, Depends(allowed(Area.AUDIT))],
    who: Annotated[str, Query(max_length=128)] = "",
    action: Annotated[str, Query(max_length=64)] = "",
    subject: Annotated[str, Query(max_length=128)] = "",
    below: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    entries = await audit_log(request).read(
        staff=who or None, action=action or None, subject=subject or None, below=below
    )
    older = entries[-1].seq if len(entries) == PAGE_SIZE else None
    filters = {"who": who, "action": action, "subject": subject}
    return render(request, "audit.html", staff, entries=entries, filters=filters, older=older)
