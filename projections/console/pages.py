"""What every console page shares: the templates, the answer a page gets (with its security
headers), and the pages for signing in again, a refused role and a refused form.

Templates are Jinja2 with autoescaping on: every value a page shows is escaped, whoever typed
it. `render` gives each template the signed-in staff member, the CSRF token for its forms and
the navigation their role sees; `templates/base.html` lays them out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from projections.console.audit import StaffAuditLog, changes
from projections.console.roles import NAV
from projections.console.sessions import (
    CsrfRefused,
    NotAllowed,
    SignInRequired,
    Staff,
    UnreadableInput,
)

HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a misspelt name fails the test, not the reader
        trim_blocks=True,
        lstrip_blocks=True,
    )
)

TEMPLATES.env.filters["changes"] = changes
TEMPLATES.env.filters["shown"] = lambda value: json.dumps(value, ensure_ascii=False)

SECURITY_HEADERS = {
    # Scripts and styles only from the app itself (htmx is vendored, nothing inline).
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def render(
    request: Request,
    template: str,
    staff: Staff | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """The page `template` for `staff` (None: signed out), with the context every page has."""
    nav = [link for link in NAV if staff is not None and staff.may_open(link.area)]
    page = {
        "staff": staff,
        "csrf": staff.csrf if staff else "",
        "nav": nav,
        "path": request.url.path,
        "status_code": status_code,
        **context,
    }
    response = TEMPLATES.TemplateResponse(request, template, page, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response


def redirect(path: str) -> RedirectResponse:
    """After a form: 303, so reloading the page does not post it again."""
    return RedirectResponse(path, status_code=303)


def now(request: Request) -> datetime:
    """The app's clock (fixed in tests)."""
    clock: Callable[[], datetime] = request.app.state.clock
    return clock()


def audit_log(request: Request) -> StaffAuditLog:
    log: StaffAuditLog = request.app.state.staff_audit
    return log


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


async def _sign_in_again(request: Request, error: Exception) -> Response:
    assert isinstance(error, SignInRequired)
    target = f"/console/sign-in?then={quote(error.then, safe='/')}"
    if error.reason:
        target += "&ended=1"
    if is_htmx(request):  # htmx follows HX-Redirect with a full page load
        return Response(status_code=401, headers={"HX-Redirect": target, **SECURITY_HEADERS})
    return redirect(target)


async def _not_allowed(request: Request, error: Exception) -> Response:
    assert isinstance(error, NotAllowed)
    return render(request, "refused.html", error.staff, 403, reason=str(error))


async def _csrf_refused(request: Request, error: Exception) -> Response:
    assert isinstance(error, CsrfRefused)
    return render(request, "refused.html", None, 403, reason=str(error))


async def _unreadable(request: Request, error: Exception) -> Response:
    assert isinstance(error, UnreadableInput)
    return render(request, "refused.html", None, 400, reason=str(error))


HANDLERS: Mapping[type[Exception], Callable[[Request, Exception], Any]] = {
    SignInRequired: _sign_in_again,
    NotAllowed: _not_allowed,
    CsrfRefused: _csrf_refused,
    UnreadableInput: _unreadable,
}


def install_handlers(app: FastAPI) -> None:
    for exception, handler in HANDLERS.items():
        app.add_exception_handler(exception, handler)
