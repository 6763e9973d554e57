"""Member care in a real browser (Debian's chromium, driven by playwright) on the real stack:
`loyalty worker`, `loyalty project` and `loyalty api` as processes of their own, on topics and
a database of this module's own, the API with the deployment's default threshold (1,000
points). Flows: an agent finds a member by email and submits a credit over the threshold; an
admin approves it in the queue; once the worker has booked it and the projector written it,
the member's ledger and balance show it; an agent looks a promo code up. Screenshots go to
docs/console/ with LOYALTY_CONSOLE_SCREENSHOTS=1 (docs/adr/0036-member-care-console.md)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from loyalty import stack as kafka_stack
from loyalty.bench.openloop import wait_until_ready
from loyalty.producing import publish_events
from loyalty.services import Services, free_port
from processors.contract.config import PromotionCodesIssued
from processors.contract.enrolments import MemberProfile
from projections.api.auth import StaffRole
from projections.migrate import temporary_database
from tests.cart_given import PROGRAM, offer, program
from tests.console_given import NOW, SECRET
from tests.integration.test_console_browser import (
    browser,
    page,
    reload_until,
    shots,
    sign_in,
    sign_out,
)
from tests.rules.given import enrolled

pytestmark = pytest.mark.integration

__all__ = ["browser", "page", "shots"]  # fixtures shared with the offer flows

MEMBER = "browser-care-1"
EMAIL = "Ada.Lovelace@example.com"


def _world() -> list[Any]:
    member = enrolled(MEMBER, programs=[PROGRAM]).model_copy(
        update={"profile": MemberProfile(first_name="Ada", last_name="Lovelace", email=EMAIL)}
    )
    promotion = PromotionCodesIssued.model_validate({
        "event_id": "browser-care-promo", "occurred_at": NOW - timedelta(days=1),
        "promotion_id": "WELCOME5", "name": "Welcome five", "market": "CA",
        "codes": ["WELCOME-5A", "WELCOME-5B"], "redemptions_per_code_max": 1,
        "discount": {"kind": "AMOUNT_OFF_CART", "amount_off_cents": 500},
        "starts_at": NOW - timedelta(days=1), "ends_at": NOW + timedelta(days=30),
    })  # fmt: skip
    spend = offer(
        "CARE_SPEND_100",
        targeting={"kind": "MASS", "timing": "DYNAMIC"},
        behaviours=[{"kind": "SPEND", "accumulation": "ACCUMULATED", "spend_min_cents": 10000}],
        reward={"kind": "FLAT_POINTS", "points": 500},
    )
    return [program(), spend, member, promotion]


@pytest.fixture(scope="module")
def base_url(stack_settings: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with temporary_database(stack_settings.dsn, "loyalty_care") as dsn:
        settings = stack_settings.model_copy(
            update={"topic_prefix": f"mc{uuid.uuid4().hex[:8]}.", "database_url": dsn}
        )
        kafka_stack.up(settings)
        asyncio.run(publish_events(settings, _world()))
        port = free_port()
        services = Services(
            settings, tmp_path_factory.mktemp("care-logs"), {"LOYALTY_API_SECRET": SECRET}
        )
        services.start("worker", "worker")
        services.start("projector", "project")
        api = services.start("api", "api", "--port", str(port))
        url = f"http://127.0.0.1:{port}"
        try:
            asyncio.run(wait_until_ready(url, api))
            yield url
        finally:
            services.stop()


def test_find_a_member_adjust_points_over_the_threshold_and_an_admin_approves(
    page: Page, shots: Path
):
    sign_in(page, "ava", StaffRole.AGENT)
    page.get_by_role("navigation", name="Console areas").get_by_role("link", name="Members").click()
    page.get_by_label("Member id or email").fill(EMAIL.lower())
    with page.expect_navigation():  # a reload before the search lands aborts one of the two
        page.keyboard.press("Enter")
    reload_until(page, "Ada Lovelace")  # the projector writes the enrolment in its own time
    expect(page.get_by_role("heading", name=f"Ada Lovelace {MEMBER}")).to_be_visible()
    page.locator("#program_id").select_option(PROGRAM)
    page.get_by_label("Debit (take points)").check()
    page.get_by_label("Credit (add points)").check()
    page.get_by_label("Points", exact=True).fill("2500")
    page.get_by_label("Reason", exact=True).select_option("service recovery")
    page.get_by_label("Note", exact=True).fill("Two parcels lost in one month")
    page.screenshot(path=shots / "member-adjust.png", full_page=False)
    page.get_by_role("button", name="Submit the adjustment").click()
    expect(page.get_by_text("it waits for an admin's approval")).to_be_visible()
    sign_out(page)

    sign_in(page, "root", StaffRole.ADMIN)
    page.get_by_role("link", name="Approvals").first.click()
    row = page.get_by_role("row").filter(has_text="Two parcels lost in one month")
    expect(row.get_by_text("+2,500")).to_be_visible()
    page.screenshot(path=shots / "approvals.png", full_page=True)
    row.get_by_role("button", name=f"Approve +2,500 points for {MEMBER}").click()
    expect(page.get_by_text("Approved and published.")).to_be_visible()

    with page.expect_navigation():
        page.get_by_role("link", name=MEMBER).first.click()
    reload_until(page, "MANUAL_ADJUSTMENT")  # the worker books it, the projector writes it
    ledger = page.get_by_role("table").filter(has_text="MANUAL_ADJUSTMENT")
    expect(ledger.get_by_text("CREDIT 2,500")).to_be_visible()
    expect(page.get_by_text("approved, published")).to_be_visible()
    offers = page.get_by_role("table").filter(has_text="CARE_SPEND_100")
    expect(offers.get_by_text("SPEND: 0 / 10000 spend cents (0 %)")).to_be_visible()
    page.screenshot(path=shots / "member.png", full_page=True)
    sign_out(page)


def test_an_agent_looks_a_promo_code_up(page: Page, shots: Path):
    sign_in(page, "ava", StaffRole.AGENT)
    page.get_by_role("link", name="Codes").first.click()
    page.get_by_label("Code", exact=True).fill("welcome-5a")
    page.get_by_label("Market", exact=True).fill("CA")
    with page.expect_navigation():
        page.get_by_role("button", name="Look up").click()
    reload_until(page, "Welcome five")  # the API's config feed reads the promotion
    expect(page.get_by_role("heading", name="WELCOME-5A active")).to_be_visible()
    expect(page.get_by_text("Not redeemed yet.")).to_be_visible()
    page.screenshot(path=shots / "code.png", full_page=True)
    page.get_by_role("link", name="Rewards").first.click()
    expect(page.get_by_role("heading", name="Rewards catalogue")).to_be_visible()
    sign_out(page)


def test_member_care_fields_are_labelled(page: Page):
    sign_in(page, "root", StaffRole.ADMIN)
    for path in (f"/console/members/{MEMBER}", "/console/members", "/console/codes",
                 "/console/rewards", "/console/approvals"):  # fmt: skip
        page.goto(path)
        unlabelled = page.evaluate(
            """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                .filter(e => !e.labels || e.labels.length === 0).map(e => e.name)"""
        )
        assert unlabelled == [], path
    sign_out(page)


def test_without_javascript_an_agent_finds_the_member_and_a_bad_adjustment_names_its_fields(
    browser: Browser, base_url: str
):
    page = browser.new_context(base_url=base_url, java_script_enabled=False).new_page()
    sign_in(page, "ava", StaffRole.AGENT)
    page.goto("/console/members")
    page.get_by_label("Member id or email").fill(MEMBER)
    page.get_by_role("button", name="Find").click()
    expect(page.get_by_role("heading", name=f"Ada Lovelace {MEMBER}")).to_be_visible()
    page.get_by_role("button", name="Submit the adjustment").click()
    expect(page.get_by_text("Enter a whole number of points, 1 or more.")).to_be_visible()
    expect(page.get_by_text("Choose a reason.")).to_be_visible()
    page.context.close()
