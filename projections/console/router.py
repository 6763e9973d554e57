"""The console's areas, mounted on the API app under `/console` (docs/adr/0035-staff-console.md).

One router module per area; a new area is one import and one line in `AREAS` (and, for the
navigation bar, one line in `roles.NAV`).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from starlette.staticfiles import StaticFiles

from projections.console import routes_audit, routes_offers, routes_reports, routes_session
from projections.console.pages import HERE, install_handlers

PREFIX = "/console"

AREAS: list[APIRouter] = [
    routes_session.router,
    routes_audit.router,
    routes_offers.router,
    routes_reports.router,
]


def mount(app: FastAPI) -> None:
    """Serve the console's pages, its static files (CSS, the vendored htmx) and its error
    pages on `app`."""
    for area in AREAS:
        app.include_router(area, prefix=PREFIX)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="console-static")
    install_handlers(app)
