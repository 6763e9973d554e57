"""Signing in and out, and the home page (docs/adr/0035-staff-console.md).

Sign-in exchanges a staff token that names a console role (`loyalty token staff NAME
--staff-role marketer`) for a session cookie; the token is checked by `projections.api.auth`,
as every API route checks it. Both are audited.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import jwt
from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from projections.api.auth import Role, verify_token
from projections.api.errors import UnauthorizedError
from projections.console.pages import audit_log, now, redirect, render
from projections.console.sessions import (
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    SIGN_IN_TTL,
    CheckedForm,
    EndedSessions,
    SignedIn,
    clear_cookie,
    is_same_token,
    new_csrf,
    session_cookie,
    set_cookie,
)

router = APIRouter(include_in_schema=False)


def _safe_then(then: str) -> str:
    """Only a console page: never another site (an open redirect)."""
    return then if then.startswith("/console/") and not then.startswith("//") else "/console/"


def _sign_in_page(
    request: Request, then: str, *, error: str = "", notice: str = "", status_code: int = 200
) -> Response:
    token = new_csrf()
    response = render(
        request,
        "sign_in.html",
        None,
        status_code,
        sign_in_csrf=token,
        then=_safe_then(then),
        error=error,
        notice=notice,
    )
    set_cookie(response, request, SIGN_IN_COOKIE, token, int(SIGN_IN_TTL.total_seconds()))
    return response


@router.get("/sign-in")
async def sign_in_page(request: Request, then: str = "/console/", ended: str = "") -> Response:
    notice = "Your session has ended: sign in again." if ended else ""
    return _sign_in_page(request, then, notice=notice)


@router.post("/sign-in")
async def sign_in(
    request: Request,
    token: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    then: Annotated[str, Form()] = "/console/",
) -> Response:
    if not is_same_token(request.cookies.get(SIGN_IN_COOKIE, ""), csrf_token):
        reason = "The sign-in form had expired: it has been reloaded, sign in again."
        return _sign_in_page(request, then, error=reason, status_code=403)
    secrets: list[str] = request.app.state.api_secrets
    try:
        principal = verify_token(secrets, token.strip())
    except UnauthorizedError as error:
        reason = f"Not signed in: {error.reason}."
        return _sign_in_page(request, then, error=reason, status_code=401)
    if principal.role is not Role.STAFF or principal.staff_role is None:
        reason = (
            "Not signed in: the console needs a staff token with a console role "
            "(loyalty token staff NAME --staff-role marketer|agent|admin)."
        )
        return _sign_in_page(request, then, error=reason, status_code=401)
    # The signature is verified above; this reads the expiry the session must not outlive.
    expires = jwt.decode(token.strip(), options={"verify_signature": False})["exp"]
    at = now(request)
    value, staff = session_cookie(
        secrets[0],
        principal.subject,
        principal.staff_role,
        now=at,
        token_expires_at=datetime.fromtimestamp(int(expires), tz=UTC),
    )
    await audit_log(request).record(staff, "signed in", at=at, subject=staff.name)
    response = redirect(_safe_then(then))
    ttl = int((staff.expires_at - at).total_seconds())
    set_cookie(response, request, SESSION_COOKIE, value, ttl)
    clear_cookie(response, SIGN_IN_COOKIE)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, staff: SignedIn, form: CheckedForm) -> Response:
    # Ended on the server first: a copy of the cookie is refused from now on.
    ended: EndedSessions = request.app.state.ended_sessions
    await ended.end(staff, now(request))
    await audit_log(request).record(staff, "signed out", at=now(request), subject=staff.name)
    response = redirect("/console/sign-in")
    clear_cookie(response, SESSION_COOKIE)
    return response


@router.get("/")
async def home(request: Request, staff: SignedIn) -> Response:
    return render(request, "home.html", staff)
