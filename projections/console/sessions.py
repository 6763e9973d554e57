"""Console sessions: a staff token exchanged at sign-in for a signed session cookie, and the
CSRF token every form carries (docs/adr/0035-staff-console.md).

The cookie (`console_session`) is a JWT signed with the API's signing key, for the audience
`loyalty-console` only (so it is never a bearer token, and a bearer token is never a session),
holding the staff member's name, role, the session's CSRF token and its expiry: at most
`SESSION_TTL`, and never past the token it was exchanged for. It is HttpOnly (no script reads
it), SameSite=Strict (no other site's page sends it) and Secure over HTTPS.

Every unsafe request (POST) must carry the session's CSRF token, as the form field
`csrf_token` or the `X-CSRF-Token` header (htmx sends it from the page's `hx-headers`); the
sign-in form, before any session exists, carries the value of a short-lived `console_csrf`
cookie (double submit). Owns reading and writing the cookies and the dependencies routes use:
`signed_in`, `allowed(area)` and `form_of`. Never renders a page; the exceptions it raises are
answered by `pages`.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request, Response
from starlette.datastructures import FormData

from projections.api.auth import StaffRole
from projections.console.roles import Area, may_open

SESSION_COOKIE = "console_session"
SIGN_IN_COOKIE = "console_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SESSION_TTL = timedelta(hours=8)
"""The longest a session lasts: a working day; signing in again takes a new token."""
SIGN_IN_TTL = timedelta(minutes=30)
AUDIENCE = "loyalty-console"
_ALGORITHM = "HS256"


@dataclass(frozen=True)
class Staff:
    """The signed-in staff member of a request."""

    name: str
    role: StaffRole
    csrf: str
    expires_at: datetime

    def may_open(self, area: Area) -> bool:
        return may_open(self.role, area)


class SignInRequired(Exception):  # noqa: N818 - a state of the request, not a failure
    """No valid session: the request goes to the sign-in page (`then` after it)."""

    def __init__(self, then: str, reason: str = "") -> None:
        super().__init__(reason or "sign in to use the console")
        self.then = then
        self.reason = reason


class NotAllowed(Exception):  # noqa: N818
    """403: the staff member's role does not open the area."""

    def __init__(self, staff: Staff, area: Area) -> None:
        super().__init__(f"{staff.name} ({staff.role.value}) may not use {area.value}")
        self.staff = staff
        self.area = area


class CsrfRefused(Exception):  # noqa: N818
    """403: an unsafe request without the session's CSRF token."""


def new_csrf() -> str:
    return secrets.token_urlsafe(32)


def session_cookie(
    secret: str, name: str, role: StaffRole, *, now: datetime, token_expires_at: datetime
) -> tuple[str, Staff]:
    """The signed cookie value of a new session, and the session it holds."""
    expires_at = min(now + SESSION_TTL, token_expires_at)
    staff = Staff(name=name, role=role, csrf=new_csrf(), expires_at=expires_at)
    claims = {
        "sub": name,
        "staff_role": role.value,
        "csrf": staff.csrf,
        "aud": AUDIENCE,
        "iat": now,
        "exp": expires_at,
    }
    return jwt.encode(claims, secret, algorithm=_ALGORITHM), staff


def read_session(secrets_: list[str], value: str, *, now: datetime) -> Staff | None:
    """The session a cookie holds, or None when it is not one of ours or has expired."""
    for secret in secrets_:
        try:
            claims: dict[str, Any] = jwt.decode(
                value,
                secret,
                algorithms=[_ALGORITHM],
                audience=AUDIENCE,
                # Expiry is judged below against the app's clock, which tests fix.
                options={
                    "require": ["sub", "staff_role", "csrf", "exp", "aud"],
                    "verify_exp": False,
                },
            )
        except jwt.InvalidSignatureError:
            continue
        except jwt.InvalidTokenError:
            return None
        expires_at = datetime.fromtimestamp(int(claims["exp"]), tz=now.tzinfo)
        if expires_at <= now or claims["staff_role"] not in {r.value for r in StaffRole}:
            return None
        return Staff(claims["sub"], StaffRole(claims["staff_role"]), claims["csrf"], expires_at)
    return None


def set_cookie(response: Response, request: Request, name: str, value: str, ttl: int) -> None:
    """HttpOnly, SameSite=Strict, scoped to the console; Secure when served over HTTPS."""
    response.set_cookie(
        name,
        value,
        max_age=ttl,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_cookie(response: Response, name: str) -> None:
    response.delete_cookie(name, path="/console", httponly=True, samesite="strict")


def _now(request: Request) -> datetime:
    clock: Callable[[], datetime] = request.app.state.clock
    return clock()


def _then(request: Request) -> str:
    """Where to come back after signing in: this page, unless it is not one to come back to."""
    if request.method != "GET" or request.headers.get("HX-Request"):
        return "/console/"
    query = f"?{request.url.query}" if request.url.query else ""
    return request.url.path + query


async def signed_in(request: Request) -> Staff:
    """The request's staff member; SignInRequired without a valid session."""
    value = request.cookies.get(SESSION_COOKIE)
    if not value:
        raise SignInRequired(_then(request))
    staff = read_session(request.app.state.api_secrets, value, now=_now(request))
    if staff is None:
        raise SignInRequired(_then(request), "your session has ended: sign in again")
    return staff


SignedIn = Annotated[Staff, Depends(signed_in)]
"""A route parameter: the signed-in staff member (any role)."""


def allowed(area: Area) -> Callable[[Staff], Awaitable[Staff]]:
    """A dependency: the signed-in staff member, once their role is known to open `area`."""

    async def check(staff: SignedIn) -> Staff:
        if not staff.may_open(area):
            raise NotAllowed(staff, area)
        return staff

    return check


def is_same_token(expected: str, given: object) -> bool:
    return isinstance(given, str) and bool(given) and hmac.compare_digest(expected, given)


async def form_of(request: Request, staff: SignedIn) -> FormData:
    """The request's form, once its CSRF token is known to be the session's."""
    form = await request.form()
    given = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    if not is_same_token(staff.csrf, given):
        raise CsrfRefused("the form's security token is missing or stale: reload the page")
    return form


CheckedForm = Annotated[FormData, Depends(form_of)]
"""A route parameter: the request's form, its CSRF token checked."""
