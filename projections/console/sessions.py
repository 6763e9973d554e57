"""Console sessions: a staff token exchanged at sign-in for a signed session cookie, and the
CSRF token every form carries (docs/adr/0035-staff-console.md).

The cookie (`console_session`) is a JWT signed with the API's signing key, for the audience
`loyalty-console` only (so it is never a bearer token, and a bearer token is never a session),
holding the session's id, the staff member's name, role, the session's CSRF token and its
expiry: at most
`SESSION_TTL`, and never past the token it was exchanged for. It is HttpOnly (no script reads
it), SameSite=Strict (no other site's page sends it) and Secure over HTTPS.

Every unsafe request (POST) must carry the session's CSRF token, as the form field
`csrf_token` or the `X-CSRF-Token` header (htmx sends it from the page's `hx-headers`); the
sign-in form, before any session exists, carries the value of a short-lived `console_csrf`
cookie (double submit). Owns reading and writing the cookies and the dependencies routes use:
`signed_in`, `allowed(area)` and `form_of`, and the list of sessions ended by signing out
(`EndedSessions`), which `signed_in` consults: a copied cookie does not outlive its sign-out.
Never renders a page; the exceptions it raises are answered by `pages`.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request, Response
from psycopg_pool import AsyncConnectionPool
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
    session_id: str
    """Random, in the cookie: signing out lists it in `EndedSessions`."""

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


class UnreadableInput(Exception):  # noqa: N818
    """400: a NUL character (U+0000) in the address or a form's text, which no field can hold
    (Postgres text cannot store it: a user's trial got 500s from the console's pages)."""


def _refuse_nul(where: str, values: Iterable[str]) -> None:
    if any("\x00" in value for value in values):
        raise UnreadableInput(f"the {where} holds a NUL character, which no field can hold")


def new_csrf() -> str:
    return secrets.token_urlsafe(32)


def session_cookie(
    secret: str, name: str, role: StaffRole, *, now: datetime, token_expires_at: datetime
) -> tuple[str, Staff]:
    """The signed cookie value of a new session, and the session it holds."""
    expires_at = min(now + SESSION_TTL, token_expires_at)
    staff = Staff(name, role, new_csrf(), expires_at, session_id=secrets.token_urlsafe(16))
    claims = {
        "sid": staff.session_id,
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
                    "require": ["sid", "sub", "staff_role", "csrf", "exp", "aud"],
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
        role = StaffRole(claims["staff_role"])
        return Staff(claims["sub"], role, claims["csrf"], expires_at, session_id=claims["sid"])
    return None


_ENDED = "SELECT 1 FROM staff_console_sessions_ended WHERE session_id = %s"
_END = """INSERT INTO staff_console_sessions_ended (session_id, staff, ended_at, expires_at)
    VALUES (%s, %s, %s, %s) ON CONFLICT (session_id) DO NOTHING"""
_FORGET_EXPIRED = "DELETE FROM staff_console_sessions_ended WHERE expires_at < %s"


class EndedSessions:
    """Sessions ended by signing out (`staff_console_sessions_ended`, migration 0030): a
    signed cookie stays valid until its expiry, so signing out lists its session id here and
    every request looks it up. Rows past their session's expiry are removed at each sign-out."""

    def __init__(self, read_pool: AsyncConnectionPool[Any], write_pool: AsyncConnectionPool[Any]):
        self.read_pool = read_pool
        self.write_pool = write_pool

    async def has_ended(self, staff: Staff) -> bool:
        async with self.read_pool.connection() as conn:
            row = await (await conn.execute(_ENDED, (staff.session_id,))).fetchone()
        return row is not None

    async def end(self, staff: Staff, at: datetime) -> None:
        async with self.write_pool.connection() as conn:
            await conn.execute(_END, (staff.session_id, staff.name, at, staff.expires_at))
            await conn.execute(_FORGET_EXPIRED, (at,))


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
    """The request's staff member; SignInRequired without a valid session. Every console page
    asks for it first, so an address with a NUL character is refused here."""
    _refuse_nul("address", [request.url.path, *request.query_params.keys(),
                            *request.query_params.values()])  # fmt: skip
    value = request.cookies.get(SESSION_COOKIE)
    if not value:
        raise SignInRequired(_then(request))
    staff = read_session(request.app.state.api_secrets, value, now=_now(request))
    ended: EndedSessions = request.app.state.ended_sessions
    if staff is None or await ended.has_ended(staff):
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


FORM_MAX_BYTES = 32 * 1024 * 1024
"""The largest form the console reads, and any one field of it (the API's bound is 1 MiB):
an offer's CSV uploads of up to 2 MB each (`routes_offers.UPLOAD_MAX_BYTES`), so that a file
somewhat over its bound is refused at its field, in the form, rather than the whole post with
a 413; and the audience those uploads fill in, posted back as one field (a user's trial: a
1.1 MB audience passed its check, then Starlette's own 1 MiB bound on a field refused its
publication)."""


async def form_of(request: Request, staff: SignedIn) -> FormData:
    """The request's form, once its CSRF token is known to be the session's."""
    form = await request.form(max_part_size=FORM_MAX_BYTES)
    texts = [text for name, value in form.multi_items() for text in (name, value)
             if isinstance(text, str)]  # fmt: skip
    _refuse_nul("form", texts)  # a file's bytes are its reader's to judge, row by row
    given = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    if not is_same_token(staff.csrf, given):
        raise CsrfRefused("the form's security token is missing or stale: reload the page")
    return form


CheckedForm = Annotated[FormData, Depends(form_of)]
"""A route parameter: the request's form, its CSRF token checked."""
