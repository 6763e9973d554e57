"""Given for the console's server-side tests: the API app on the test run's database, a
browser-like client (it keeps cookies), and signing in as each role through the sign-in form."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from projections.api.app import create_app
from projections.api.auth import Role, StaffRole, issue_token
from projections.console.audit import StaffAuditLog

SECRET = "console-tests-secret-long-enough-for-hs256-signatures"
NOW = datetime.now(UTC).replace(microsecond=0)
"""The app's fixed clock: the real time at import, since tokens expire by the real clock."""

_HIDDEN = re.compile(r'name="csrf_token" value="([^"]+)"')
_ADJUSTMENT_ID = re.compile(r'name="adjustment_id" value="([^"]+)"')


def staff_token(name: str, role: StaffRole | None, *, ttl: timedelta = timedelta(hours=1)) -> str:
    return issue_token(SECRET, name, Role.STAFF, now=NOW, ttl=ttl, staff_role=role)


def csrf_of(page: str) -> str:
    """The CSRF token a page's forms carry."""
    found = _HIDDEN.search(page)
    assert found, "the page has a form with a CSRF token"
    return found[1]


def adjustment_form_of(page: str) -> dict[str, str]:
    """The hidden fields a member page's adjustment form carries: CSRF token and its one-time
    adjustment id."""
    found = _ADJUSTMENT_ID.search(page)
    assert found, "the page has an adjustment form"
    return {"csrf_token": csrf_of(page), "adjustment_id": found[1]}


@asynccontextmanager
async def console_app(dsn: str, **kwargs: Any) -> AsyncIterator[FastAPI]:
    app = create_app(dsn=dsn, api_secret=SECRET, clock=lambda: NOW, **kwargs)
    async with app.router.lifespan_context(app):
        yield app


def client_of(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://console.test")


async def sign_in(http: httpx.AsyncClient, name: str, role: StaffRole | None) -> httpx.Response:
    """Sign in through the form, as a browser does; the client keeps the session cookie."""
    form = await http.get("/console/sign-in")
    return await http.post(
        "/console/sign-in",
        data={"token": staff_token(name, role), "csrf_token": csrf_of(form.text)},
    )


@asynccontextmanager
async def signed_in(app: FastAPI, name: str, role: StaffRole) -> AsyncIterator[httpx.AsyncClient]:
    """A client signed in as `name` in `role`."""
    async with client_of(app) as http:
        answer = await sign_in(http, name, role)
        assert answer.status_code == 303, answer.text
        yield http


@contextmanager
def audit_log_down(app: Any) -> Iterator[None]:
    """The audit log's writes go to a pool that reaches no Postgres."""
    working = app.state.staff_audit
    app.state.staff_audit = StaffAuditLog(working.read_pool, AsyncConnectionPool("", open=False))
    try:
        yield
    finally:
        app.state.staff_audit = working
