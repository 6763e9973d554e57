"""The console's areas, mounted on the API app under `/console` (docs/adr/0035-staff-console.md).

One router module per area; a new area is one import and one line in `AREAS` (and, for the
navigation bar, one line in `roles.NAV`).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from starlette.staticfiles import StaticFiles

from processors.base.settings import get_settings
from projections.console import (
    routes_approvals,
    routes_audit,
    routes_codes,
    routes_members,
    routes_offers,
    routes_reports,
    routes_rewards,
    routes_session,
    sessions,
)
from projections.console.adjustments import AdjustmentPolicy
from projections.console.pages import HERE, install_handlers

PREFIX = "/console"
BODY_MAX_BYTES = sessions.FORM_MAX_BYTES
"""The largest form the console reads (`sessions.FORM_MAX_BYTES`)."""

AREAS: list[APIRouter] = [
    routes_session.router,
    routes_audit.router,
    routes_offers.router,
    routes_reports.router,
    routes_members.router,
    routes_approvals.router,
    routes_codes.router,
    routes_rewards.router,
]


def mount(app: FastAPI) -> None:
    """Serve the console's pages, its static files (CSS, the vendored htmx) and its error
    pages on `app`."""
    for area in AREAS:
        app.include_router(area, prefix=PREFIX)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="console-static")
    install_handlers(app)
    # The adjustment limits and threshold of the deployment (tests set their own).
    app.state.adjustment_policy = AdjustmentPolicy.from_settings(get_settings())
