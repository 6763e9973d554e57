"""The console's sign-in, roles, CSRF and audit log, through the real app on a real Postgres
(docs/adr/0035-staff-console.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import psycopg
import pytest

from projections.api.auth import StaffRole
from projections.console.sessions import SESSION_COOKIE, session_cookie
from tests.console_given import (
    NOW,
    SECRET,
    client_of,
    console_app,
    csrf_of,
    sign_in,
    signed_in,
    staff_token,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def app(database_url: str) -> AsyncIterator[object]:
    async with console_app(database_url) as app:
        yield app


async def test_nobody_without_a_session_sees_a_page(app):
    async with client_of(app) as http:
        for path in ("/console/", "/console/audit", "/console/audit?who=alice"):
            answer = await http.get(path)
            assert answer.status_code == 303
            assert answer.headers["location"].startswith("/console/sign-in?then=/console/")
            assert "<table" not in answer.text


async def test_an_htmx_request_without_a_session_is_sent_to_sign_in_by_a_header(app):
    async with client_of(app) as http:
        answer = await http.get("/console/audit", headers={"HX-Request": "true"})
    assert answer.status_code == 401
    assert answer.headers["HX-Redirect"].startswith("/console/sign-in")


async def test_signing_in_sets_an_http_only_strict_cookie_and_goes_back_where_asked(app):
    async with client_of(app) as http:
        form = await http.get("/console/sign-in?then=/console/audit")
        answer = await http.post(
            "/console/sign-in",
            data={"token": staff_token("ada", StaffRole.ADMIN), "csrf_token": csrf_of(form.text),
                  "then": "/console/audit"},
        )  # fmt: skip
        assert answer.status_code == 303
        assert answer.headers["location"] == "/console/audit"
        cookie = next(v for k, v in answer.headers.multi_items() if k == "set-cookie"
                      and v.startswith(SESSION_COOKIE))  # fmt: skip
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie or "samesite=strict" in cookie.lower()
        home = await http.get("/console/")
    assert home.status_code == 200
    assert "Welcome, ada" in home.text


async def test_a_sign_in_never_sends_the_browser_to_another_site(app):
    async with client_of(app) as http:
        form = await http.get("/console/sign-in")
        answer = await http.post(
            "/console/sign-in",
            data={"token": staff_token("ada", StaffRole.ADMIN), "csrf_token": csrf_of(form.text),
                  "then": "//evil.example/console/"},
        )  # fmt: skip
    assert answer.headers["location"] == "/console/"


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("not-a-jwt", "the bearer value is not a JWT"),
        (staff_token("bob", None), "needs a staff token with a console role"),
    ],
)
async def test_a_token_that_is_no_console_sign_in_is_refused_with_the_reason(app, token, reason):
    async with client_of(app) as http:
        form = await http.get("/console/sign-in")
        answer = await http.post(
            "/console/sign-in", data={"token": token, "csrf_token": csrf_of(form.text)}
        )
        assert answer.status_code == 401
        assert reason in answer.text
        assert (await http.get("/console/")).status_code == 303


async def test_a_sign_in_without_the_form_s_token_is_refused(app):
    async with client_of(app) as http:
        await http.get("/console/sign-in")
        answer = await http.post(
            "/console/sign-in", data={"token": staff_token("ada", StaffRole.ADMIN)}
        )
    assert answer.status_code == 403
    assert "expired" in answer.text


async def test_a_form_without_the_session_s_csrf_token_is_refused(app):
    async with signed_in(app, "ada", StaffRole.ADMIN) as http:
        refused = await http.post("/console/sign-out", data={})
        assert refused.status_code == 403
        assert "security token" in refused.text
        assert (await http.get("/console/")).status_code == 200  # still signed in
        wrong = await http.post("/console/sign-out", data={"csrf_token": "forged"})
        assert wrong.status_code == 403


async def test_signing_out_ends_the_session(app):
    async with signed_in(app, "ada", StaffRole.ADMIN) as http:
        home = await http.get("/console/")
        answer = await http.post("/console/sign-out", data={"csrf_token": csrf_of(home.text)})
        assert answer.status_code == 303
        assert (await http.get("/console/")).status_code == 303


async def test_a_copied_session_cookie_is_refused_once_its_session_is_signed_out(app):
    async with signed_in(app, "ada", StaffRole.ADMIN) as http:
        copied = http.cookies[SESSION_COOKIE]
        home = await http.get("/console/")
        await http.post("/console/sign-out", data={"csrf_token": csrf_of(home.text)})
    async with signed_in(app, "ada", StaffRole.ADMIN) as other_session:
        still = await other_session.get("/console/")
    async with client_of(app) as thief:
        thief.cookies.set(SESSION_COOKIE, copied, path="/console")
        refused = await thief.get("/console/")
    assert refused.status_code == 303
    assert refused.headers["location"] == "/console/sign-in?then=/console/&ended=1"
    assert still.status_code == 200  # another session of the same staff member lives on


async def test_an_api_bearer_token_in_the_session_cookie_is_no_session(app):
    async with client_of(app) as http:
        http.cookies.set(SESSION_COOKIE, staff_token("ada", StaffRole.ADMIN), path="/console")
        assert (await http.get("/console/")).status_code == 303


async def test_a_session_cookie_signed_with_another_key_is_no_session(app):
    forged, _ = session_cookie(
        "another-secret-long-enough-for-hs256-signatures-too",
        "ada",
        StaffRole.ADMIN,
        now=NOW,
        token_expires_at=NOW + timedelta(hours=1),
    )
    genuine, _ = session_cookie(
        SECRET, "ada", StaffRole.ADMIN, now=NOW, token_expires_at=NOW + timedelta(hours=1)
    )
    async with client_of(app) as http:
        http.cookies.set(SESSION_COOKIE, forged, path="/console")
        refused = await http.get("/console/")
        http.cookies.set(SESSION_COOKIE, genuine, path="/console")
        accepted = await http.get("/console/")
    assert refused.status_code == 303
    assert accepted.status_code == 200


async def test_the_navigation_shows_only_the_areas_of_the_role(app):
    for role, shown, hidden in (
        (StaffRole.MARKETER, ["Offers"], ["Audit log"]),
        (StaffRole.ADMIN, ["Offers", "Audit log"], []),
        (StaffRole.AGENT, [], ["Offers", "Audit log"]),
    ):
        async with signed_in(app, f"someone-{role.value}", role) as http:
            page = (await http.get("/console/")).text
        nav = page.split('aria-label="Console areas"')[1].split("</nav>")[0]
        assert all(f">{label}<" in nav for label in shown), role
        assert not any(f">{label}<" in nav for label in hidden), role


async def test_only_admins_read_the_audit_log(app):
    for role in (StaffRole.MARKETER, StaffRole.AGENT):
        async with signed_in(app, "curious", role) as http:
            answer = await http.get("/console/audit")
        assert answer.status_code == 403
        assert "may not use audit" in answer.text


async def test_every_sign_in_and_out_is_in_the_audit_log_newest_first(app):
    async with signed_in(app, "grace", StaffRole.MARKETER) as http:
        home = await http.get("/console/")
        await http.post("/console/sign-out", data={"csrf_token": csrf_of(home.text)})
    async with signed_in(app, "root", StaffRole.ADMIN) as admin:
        page = await admin.get("/console/audit", params={"who": "grace"})
    assert page.status_code == 200
    rows = page.text.split("<tbody>")[1]
    assert rows.index("signed out") < rows.index("signed in")
    assert "marketer" in rows
    assert NOW.strftime("%Y-%m-%d %H:%M:%S") in rows


async def test_the_audit_log_cannot_be_changed_or_emptied(database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO staff_audit_log (occurred_at, staff, staff_role, action) "
            "VALUES (now(), 'x', 'admin', 'probe')"
        )
        for statement in ("UPDATE staff_audit_log SET staff = 'y'", "DELETE FROM staff_audit_log",
                          "TRUNCATE staff_audit_log"):  # fmt: skip
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                conn.execute(statement)


async def test_pages_are_served_with_their_security_headers(app):
    async with signed_in(app, "ada", StaffRole.ADMIN) as http:
        page = await http.get("/console/")
    assert "script-src" not in page.headers["Content-Security-Policy"]  # default-src 'self'
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Cache-Control"] == "no-store"


async def test_sign_in_keeps_the_user_signed_in_no_longer_than_the_token(app):
    async with client_of(app) as http:
        answer = await sign_in(http, "ada", StaffRole.ADMIN)
    cookie = next(v for k, v in answer.headers.multi_items() if k == "set-cookie"
                  and v.startswith(SESSION_COOKIE))  # fmt: skip
    assert "Max-Age=3600" in cookie  # the token's hour, not the session's eight
