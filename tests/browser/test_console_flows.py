"""The console in a real browser (Debian's chromium, driven by playwright): sign in, write an
offer with a too-long French headline, see the inline error, fix it, preview, publish; open
an offer's report with its chart. Screenshots go to docs/console/ (docs/adr/0035)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Page, expect, sync_playwright

from processors.rules.member import Config
from projections.api.app import create_app
from projections.api.auth import StaffRole
from projections.api.routes_carts import FixedConfig
from tests.cart_given import program
from tests.console_given import NOW, SECRET, staff_token
from tests.integration.test_console_offers import Recorded, valid_form

pytestmark = pytest.mark.integration
CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).parents[2] / "docs" / "console"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def base_url(database_url: str) -> Iterator[str]:
    config = Config()
    config.apply(program())
    app = create_app(
        dsn=database_url,
        api_secret=SECRET,
        clock=lambda: NOW,
        config_source=FixedConfig(config),
        command_sink=Recorded(),
    )
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def page(base_url: str) -> Iterator[Page]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is needed (scripts/bootstrap.sh installs it)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
        yield context.new_page()
        browser.close()


def sign_in(page: Page, role: StaffRole) -> None:
    page.goto("/console/")
    page.get_by_label("Staff token").fill(staff_token("mia", role))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Welcome, mia")).to_be_visible()


def test_write_an_offer_see_the_inline_error_fix_it_preview_and_publish(page: Page) -> None:
    sign_in(page, StaffRole.MARKETER)
    page.screenshot(path=SHOTS / "home.png")
    page.goto("/console/offers/new")
    values: dict[str, Any] = valid_form("BROWSER_SPRING")
    for path, value in values.items():
        field = page.locator(f'[name="{path}"]')
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    french = page.locator('[name="localized_copy[fr].headline"]')
    french.fill("Dépensez " * 12)
    expect(page.locator("#f-localized-copy-fr--headline-count")).to_have_text("108 / 80")
    page.get_by_role("button", name="Check").click()
    expect(
        page.get_by_text("localized_copy[fr].headline: 108 characters, at most 80")
    ).to_be_visible()
    page.screenshot(path=SHOTS / "offer-form-error.png", full_page=True)
    page.locator('[name="localized_copy[fr].headline"]').fill("Dépensez 50 $, obtenez 500 points")
    page.get_by_role("button", name="Preview").click()
    expect(
        page.get_by_role("heading", name="Preview: 500 point(s) from this offer")
    ).to_be_visible()
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_text("Published BROWSER_SPRING.")).to_be_visible()
    page.screenshot(path=SHOTS / "offers.png", full_page=True)
