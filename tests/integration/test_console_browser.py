"""The console in a real browser (Debian's chromium, driven by playwright) on the real stack:
the API (uvicorn) publishing to Kafka topics of this module's own and following their config
topic, and the projector writing a database of its own, so what the browser publishes comes
back through the engine's own path. Flows: sign in; write an offer with a too-long French
headline, see the inline error, fix it, preview, publish, see it in the list; extend it; open
its report with the chart. Screenshots of the main pages go to docs/console/
with LOYALTY_CONSOLE_SCREENSHOTS=1 (docs/adr/0035-staff-console.md)."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect, sync_playwright

from loyalty import stack as kafka_stack
from loyalty.producing import publish_events
from processors.base.topics import CONFIG, ENROLMENTS, LEDGER, OFFERS
from processors.codec.avro import AvroCodec
from processors.config_feed import ConfigFeed
from projections.api.app import create_app
from projections.api.auth import StaffRole
from projections.api.commands import KafkaCommandSink
from projections.migrate import temporary_database
from projections.runner import Projector, ProjectorConfig, contract_topic_map
from tests.cart_given import program
from tests.console_given import NOW, SECRET, staff_token
from tests.integration.test_console_offers import valid_form

pytestmark = pytest.mark.integration
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = "LOYALTY_CONSOLE_SCREENSHOTS"
"""Set it (to 1) to write the README's screenshots to docs/console/; else they go to a
temporary folder, so a test run leaves the work tree as it was."""
OFFER = "BROWSER_SPRING"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Running:
    """A coroutine run on a thread of its own until `stop`."""

    def __init__(self, start: Callable[[asyncio.Event], Any]) -> None:
        self._ready = threading.Event()
        self._start = start
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self.thread.start()
        self._ready.wait(30)

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()
        self._ready.set()
        await self._start(self.stopping)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.stopping.set)
        self.thread.join(timeout=30)


@pytest.fixture(scope="module")
def base_url(stack_settings: Any) -> Iterator[str]:
    settings = stack_settings.model_copy(update={"topic_prefix": f"c{uuid.uuid4().hex[:8]}."})
    kafka_stack.up(settings)
    extensible = program().model_copy(update={"offer_end_date_extension_enabled": True})
    asyncio.run(publish_events(settings, [extensible]))
    bootstrap = settings.bootstrap_servers
    with temporary_database(stack_settings.dsn, "loyalty_console") as dsn:
        topics = contract_topic_map(
            settings.topic(LEDGER.name), settings.topic(ENROLMENTS.name),
            settings.topic(OFFERS.name), config=settings.topic(CONFIG.name),
        )  # fmt: skip
        projector = Projector(
            ProjectorConfig(dsn, bootstrap, topics, group_id=f"console-{uuid.uuid4().hex[:8]}")
        )
        projecting = _Running(lambda stop: projector.run(stop=stop))
        app = create_app(
            dsn=dsn,
            api_secret=SECRET,
            clock=lambda: NOW,
            config_source=ConfigFeed(bootstrap, settings.topic(CONFIG.name), AvroCodec()),
            command_sink=KafkaCommandSink(bootstrap, topic_of=settings.topic),
        )
        port = _free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        serving = _Running(lambda stop: server.serve())
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            serving.thread.join(timeout=30)
            projecting.stop()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get(SCREENSHOTS):
        return Path(__file__).parents[2] / "docs" / "console"
    return tmp_path_factory.mktemp("console-screenshots")


@pytest.fixture(scope="module")
def browser(base_url: str) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is needed (scripts/bootstrap.sh installs it)")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def page(browser: Browser, base_url: str) -> Page:
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
    return context.new_page()


def sign_in(page: Page, name: str, role: StaffRole) -> None:
    page.context.clear_cookies()  # signed out even if the test before stopped half-way
    page.goto("/console/")
    page.get_by_label("Staff token").fill(staff_token(name, role))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=f"Welcome, {name}")).to_be_visible()


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def reload_until(page: Page, text: str, tries: int = 120) -> None:
    """The projection catches up on its own time: reload until the page shows `text`.

    Call it once the page has landed: a reload while a form's navigation is still under way
    aborts one of the two (`net::ERR_ABORTED`), so wrap the submit in `expect_navigation`.
    """
    for _ in range(tries):
        if page.get_by_text(text).count():
            return
        page.wait_for_timeout(250)
        page.reload()
    expect(page.get_by_text(text).first).to_be_visible()


def test_write_an_offer_fix_its_french_headline_preview_publish_extend_and_report(
    page: Page, shots: Path
):
    sign_in(page, "mia", StaffRole.MARKETER)
    page.screenshot(path=shots / "home.png")
    page.get_by_role("link", name="Offers").first.click()
    page.get_by_role("link", name="New offer").click()
    for path, value in valid_form(OFFER).items():
        field = page.locator(f'[name="{path}"]')
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    page.locator('[name="localized_copy[fr].headline"]').fill("Dépensez " * 12)
    expect(page.locator("#f-localized-copy-fr--headline-count")).to_have_text("108 / 80")
    blocked: list[str] = []  # what the page's Content-Security-Policy refused, if anything
    page.on("console", lambda m: blocked.append(m.text) if "Content Security" in m.text else None)
    # htmx posts the form in place (HX-Request), and swaps in the 422 with the errors.
    with page.expect_request(lambda r: r.method == "POST" and "hx-request" in r.headers):
        page.get_by_role("button", name="Check").click()
    error = page.get_by_text("localized_copy[fr].headline: 108 characters, at most 80")
    expect(error).to_be_visible()
    expect(page.locator('[name="localized_copy[fr].headline"]')).to_have_attribute(
        "aria-invalid", "true"
    )
    page.screenshot(path=shots / "offer-form-error.png", full_page=True)

    page.locator('[name="localized_copy[fr].headline"]').fill("Dépensez 50 $, obtenez 500 points")
    page.locator('[name="sample_spend_cents"]').fill("6000")
    page.get_by_role("button", name="Preview").click()
    expect(
        page.get_by_role("heading", name="Preview: 500 point(s) from this offer")
    ).to_be_visible()
    page.screenshot(path=shots / "offer-preview.png", full_page=True)
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_text(f"Published {OFFER}.")).to_be_visible()
    reload_until(page, "Spend 50, get 500 points")  # the headline, in the offer's row
    expect(page.get_by_role("link", name=OFFER)).to_be_visible()
    page.screenshot(path=shots / "offers.png", full_page=True)

    page.get_by_role("link", name=OFFER).click()
    new_end = NOW + timedelta(days=45)
    page.get_by_label("New end (UTC)").fill(new_end.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Reason").first.fill("a good start")
    page.get_by_role("button", name="Extend").click()
    expect(page.get_by_text("Extension published.")).to_be_visible()
    reload_until(page, new_end.strftime("%Y-%m-%d %H:%M"))
    page.screenshot(path=shots / "offer.png", full_page=True)

    page.get_by_role("link", name="Report").click()
    expect(page.get_by_role("heading", name=f"Report: {OFFER}")).to_be_visible()
    expect(page.locator("#report-chart")).to_be_visible()
    expect(page.get_by_text("two-proportion z-test")).to_be_visible()
    page.screenshot(path=shots / "report.png", full_page=True)
    sign_out(page)
    assert blocked == []


def test_every_form_field_has_a_label_and_the_keyboard_reaches_the_content_first(page: Page):
    sign_in(page, "mia", StaffRole.MARKETER)
    for path in ("/console/offers/new", "/console/offers", f"/console/offers/{OFFER}"):
        page.goto(path)
        unlabelled = page.evaluate(
            """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                .filter(e => !e.labels || e.labels.length === 0).map(e => e.name)"""
        )
        assert unlabelled == [], path
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to the content"
    sign_out(page)


def test_an_admin_reads_who_did_what_in_the_audit_log(page: Page, shots: Path):
    sign_in(page, "root", StaffRole.ADMIN)
    page.get_by_role("navigation").get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("cell", name="publish offer").first).to_be_visible()
    expect(page.get_by_role("cell", name="extend offer").first).to_be_visible()
    page.screenshot(path=shots / "audit.png", full_page=True)
    sign_out(page)


def test_without_javascript_the_form_still_posts_and_shows_its_errors(browser: Browser, base_url):
    page = browser.new_context(base_url=base_url, java_script_enabled=False).new_page()
    sign_in(page, "mia", StaffRole.MARKETER)
    page.goto("/console/offers/new")
    page.get_by_label("Offer ID").fill("x")
    page.get_by_role("button", name="Check").click()
    expect(page.get_by_text("'x' is 1 characters, at least 3")).to_be_visible()
    expect(page.locator("#f-localized-copy-en--headline-count")).to_have_text("0 / 80")
    page.context.close()
