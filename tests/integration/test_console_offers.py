"""The console's offer pages and the offer report, through the real app on a real Postgres:
inline errors from the CLI's validator, preview, publish, extension refusals named, roles,
CSRF and the audit trail (docs/adr/0035-staff-console.md)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from processors.codec.json_form import from_json_object
from processors.contract.base import Event
from processors.contract.config import OfferPublished
from processors.rules.member import Config
from projections.api.auth import StaffRole
from projections.api.routes_carts import FixedConfig
from tests.cart_given import offer, program
from tests.console_given import NOW, audit_log_down, console_app, csrf_of, signed_in

pytestmark = pytest.mark.integration


class Recorded:
    """The command sink: what the console published, in order."""

    def __init__(self) -> None:
        self.sent: list[Event] = []

    async def send(self, event: Event) -> None:
        self.sent.append(event)


def valid_form(offer_id: str = "CONSOLE_SPRING", **changes: str) -> dict[str, str]:
    values = {
        "offer_id": offer_id,
        "program_id": "MAIN",
        "market": "CA",
        "rank": "3",
        "schedule.starts_at": (NOW - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
        "schedule.ends_at": (NOW + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M"),
        "localized_copy[en].headline": "Spend 50, get 500 points",
        "localized_copy[en].short_description": "This week only",
        "localized_copy[fr].headline": "Dépensez 50 $, obtenez 500 points",
        "localized_copy[fr].short_description": "Cette semaine seulement",
        "targeting.kind": "MASS",
        "targeting.timing": "DYNAMIC",
        "targeting.control_share_percent": "0",
        "activation.kind": "AUTOMATIC",
        "behaviours[0].kind": "SPEND",
        "behaviours[0].accumulation": "SINGLE_TRANSACTION",
        "behaviours[0].spend_min_cents": "5000",
        "reward.kind": "FLAT_POINTS",
        "reward.payout": "MINIMUM",
        "reward.points": "500",
        "usage.budget_points_max": "100000",
    }
    return {**values, **changes}


@pytest.fixture(scope="module")
def sink() -> Recorded:
    return Recorded()


def live_offer(offer_id: str, program_id: str = "MAIN") -> OfferPublished:
    """A published offer of `program_id`, live for another five days."""
    published = offer(
        offer_id,
        program_id=program_id,
        schedule={
            "starts_at": (NOW - timedelta(days=2)).isoformat(),
            "ends_at": (NOW + timedelta(days=5)).isoformat(),
        },
        behaviours=[
            {"kind": "SPEND", "accumulation": "SINGLE_TRANSACTION", "spend_min_cents": 2000}
        ],
        reward={"kind": "FLAT_POINTS", "points": 100},
    )
    assert isinstance(published, OfferPublished)
    return published


def project(database_url: str, published: OfferPublished) -> None:
    """The offer in the `offers` projection, as the projector writes it."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO offers (offer_id, program_id, market, rank, starts_at, ends_at, "
            "control_share_percent, definition) VALUES (%s, %s, 'CA', 5, %s, %s, 0, %s)",
            (published.offer_id, published.program_id, published.schedule.starts_at,
             published.schedule.ends_at, json.dumps(published.model_dump(mode="json"))),
        )  # fmt: skip


@pytest.fixture(scope="module")
async def app(database_url: str, sink: Recorded) -> AsyncIterator[Any]:
    config = Config()
    main = program()
    config.apply(main)
    live = live_offer("LIVE_NO_EXTENSIONS")
    config.apply(live)
    project(database_url, live)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO members (member_id, market, enrolled_at, province, status, updated_at) "
            "VALUES ('QUEBECER', 'CA', %s, 'QC', 'ACTIVE', %s)",
            (NOW, NOW),
        )
        # Three members targeted, one held out: the audience is all three.
        for member, control in (("A1", False), ("A2", False), ("A3", True)):
            conn.execute(
                "INSERT INTO offer_audience VALUES (%s, %s, %s, %s)",
                (live.offer_id, member, control, NOW),
            )
    async with console_app(
        database_url, config_source=FixedConfig(config), command_sink=sink
    ) as app:
        yield app


async def post_form(http: Any, values: dict[str, str], action: str, **headers: str) -> Any:
    page = await http.get("/console/offers/new")
    data = {**values, "action": action, "csrf_token": csrf_of(page.text)}
    return await http.post("/console/offers/new", data=data, headers=headers)


async def test_the_list_shows_each_offer_with_status_rank_dates_audience_and_budget(app):
    async with signed_in(app, "mia", StaffRole.MARKETER) as http:
        page = await http.get("/console/offers")
        live_only = await http.get("/console/offers", params={"status": "scheduled"})
    assert page.status_code == 200
    row = page.text.split('href="/console/offers/LIVE_NO_EXTENSIONS"')[1].split("</tr>")[0]
    cells = [cell.split(">", 1)[1] for cell in row.split("</td>")[1:-1]]
    assert cells[0] == '<span class="status live">live</span>'
    assert cells[1] == "5"  # rank
    assert cells[4] == "3"  # audience
    assert "0 points, no limit" in cells[5]
    assert "LIVE_NO_EXTENSIONS" not in live_only.text


async def test_a_mass_offer_shows_every_members_uses_and_points_though_nobody_is_targeted(
    app, database_url
):
    """Found by trying it as a user: the demo's mass offer had paid 250 points many times and
    the list said 0 uses, 0 points (the figures came from the targeted audience only)."""
    mass = live_offer("MASS_PAID")
    project(database_url, mass)
    with psycopg.connect(database_url, autocommit=True) as conn:
        for n, (points, control) in enumerate(((100, False), (150, False), (0, True))):
            conn.execute(
                "INSERT INTO offer_completions (event_id, member_id, offer_id, use_number, "
                "multiples, points_due, points_awarded, discount_cents, in_control_group, "
                "cause_event_id, occurred_at) VALUES (%s, %s, 'MASS_PAID', 1, 1, %s, %s, 0, "
                "%s, %s, %s)",
                (f"mass-{n}", f"M-{n}", points or 100, points, control, f"c-{n}", NOW),
            )
    async with signed_in(app, "mia", StaffRole.MARKETER) as http:
        page = await http.get("/console/offers")
    row = page.text.split('href="/console/offers/MASS_PAID"')[1].split("</tr>")[0]
    cells = [cell.split(">", 1)[1] for cell in row.split("</td>")[1:-1]]
    assert cells[4] == "0"  # nobody targeted
    assert "250 points" in cells[5]  # the held-out member was paid nothing
    assert "2 uses" in row


async def test_an_unknown_offer_is_a_page_that_says_not_found(app):
    """Found by trying it as a user: the 404 page was headed "Not allowed"."""
    async with signed_in(app, "mia", StaffRole.MARKETER) as http:
        page = await http.get("/console/offers/NOPE_OFFER")
        forbidden = await http.get("/console/members/anyone")
    assert page.status_code == 404
    assert "<h1>Not found</h1>" in page.text
    assert "No offer NOPE_OFFER" in page.text
    assert forbidden.status_code == 403
    assert "<h1>Not allowed</h1>" in forbidden.text


async def test_the_list_filters_by_market_and_by_part_of_the_offer_id(app):
    async with signed_in(app, "mia", StaffRole.MARKETER) as http:
        by_text = await http.get("/console/offers", params={"q": "no_ext"})
        by_market = await http.get("/console/offers", params={"market": "US"})
    assert "LIVE_NO_EXTENSIONS" in by_text.text
    assert "LIVE_NO_EXTENSIONS" not in by_market.text
    assert "No offer matches." in by_market.text


async def test_a_preview_runs_an_uploaded_file_of_events_and_names_a_bad_line(app):
    enrolled = {
        "type": "MemberEnrolled",
        "event_id": "e1",
        "member_id": "FILE_1",
        "occurred_at": NOW.isoformat(),
        "market": "CA",
        "program_ids": ["MAIN"],
        "source": "APP",
        "profile": {},
    }
    bought = {
        "type": "TransactionCompleted",
        "event_id": "t1",
        "transaction_id": "T1",
        "transaction_number": "1",
        "member_id": "FILE_1",
        "market": "CA",
        "occurred_at": (NOW + timedelta(minutes=5)).isoformat(),
        "currency": "CAD",
        "source": "INSTORE",
        "store": {"store_id": "S1", "country": "CA"},
        "till_id": "1",
        "lines": [
            {
                "line_id": "1",
                "sku": "A",
                "quantity": "1",
                "unit_price_cents": 7000,
                "amount_cents": 7000,
            }
        ],
    }
    good = "\n".join(json.dumps(event) for event in (enrolled, bought))
    async with signed_in(app, "mia", StaffRole.MARKETER) as http:
        ran = await post_with_files(
            http,
            valid_form(),
            "preview",
            {"preview_events": ("e.jsonl", good.encode(), "text/plain")},
        )
        bad = await post_with_files(
            http,
            valid_form(),
            "preview",
            {"preview_events": ("e.jsonl", f"{good}\nnot json\n".encode(), "text/plain")},
        )
    assert "Preview: 500 point(s) from this offer" in ran.text
    assert "FILE_1" in ran.text
    assert "line 3:" in bad.text


async def test_a_too_long_french_headline_is_shown_beside_its_field(app, sink):
    async with signed_in(app, "mia", StaffRole.MARKETER) as http:
        answer = await post_form(
            http,
            valid_form(**{"localized_copy[fr].headline": "é" * 97}),
            "check",
            **{"HX-Request": "true"},
        )
    assert answer.status_code == 422
    field = answer.text.split('id="f-localized-copy-fr--headline"')[1].split("</div>")[0]
    assert "localized_copy[fr].headline: 97 characters, at most 80" in answer.text
    assert (
        'aria-invalid="true"'
        in answer.text.split('id="f-localized-copy-fr--headline"')[0][-400:] + field
    )
    assert "97 / 80" in field
    assert not sink.sent


async def test_a_valid_offer_is_previewed_through_the_simulator(app, sink):
    async with signed_in(app, "mia", StaffRole.MARKETER) as http:
        answer = await post_form(http, {**valid_form(), "sample_spend_cents": "6000"}, "preview")
    assert answer.status_code == 200, answer.text
    assert "Preview: 500 point(s) from this offer" in answer.text
    assert not sink.sent
    # The sample typed stays for the next preview (found by a user trial: it was reset).
    assert 'name="sample_spend_cents" inputmode="numeric" value="6000"' in answer.text


async def test_publishing_sends_the_offer_the_cli_would_and_audits_it(app, sink):
    async with signed_in(app, "mia", StaffRole.MARKETER) as http:
        answer = await post_form(http, valid_form("CONSOLE_PUBLISHED"), "publish")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/offers?published=CONSOLE_PUBLISHED"
    published = sink.sent[-1]
    assert isinstance(published, OfferPublished)
    assert published.offer_id == "CONSOLE_PUBLISHED"
    assert published.usage.budget_points_max == 100000
    async with signed_in(app, "root", StaffRole.ADMIN) as admin:
        log = await admin.get("/console/audit", params={"subject": "CONSOLE_PUBLISHED"})
    assert "publish offer" in log.text
    assert "mia" in log.text


async def test_an_agent_cannot_publish_an_offer(app, sink):
    before = len(sink.sent)
    async with signed_in(app, "carl", StaffRole.AGENT) as http:
        home = await http.get("/console/")
        answer = await http.post(
            "/console/offers/new",
            data={**valid_form("AGENT_TRY"), "action": "publish", "csrf_token": csrf_of(home.text)},
        )
        listing = await http.get("/console/offers")
    assert answer.status_code == 403
    assert listing.status_code == 403
    assert len(sink.sent) == before


async def test_a_publish_without_the_csrf_token_is_refused(app, sink):
    before = len(sink.sent)
    async with signed_in(app, "mia", StaffRole.MARKETER) as http:
        answer = await http.post("/console/offers/new", data={**valid_form(), "action": "publish"})
    assert answer.status_code == 403
    assert len(sink.sent) == before


async def test_an_extension_the_programme_does_not_allow_is_refused_by_name(app, sink):
    before = len(sink.sent)
    async with signed_in(app, "mia", StaffRole.MARKETER) as http:
        page = await http.get("/console/offers/LIVE_NO_EXTENSIONS")
        ends = (NOW + timedelta(days=20)).strftime("%Y-%m-%dT%H:%M")
        answer = await http.post(
            "/console/offers/LIVE_NO_EXTENSIONS/extend",
            data={"ends_at": ends, "csrf_token": csrf_of(page.text)},
        )
    assert answer.status_code == 422
    assert "Refused: FEATURE_DISABLED" in answer.text
    assert len(sink.sent) == before


async def test_a_reason_too_long_for_the_event_is_refused_on_the_page(app, sink):
    # Found by a user's trial: a 5,000-character reason was a 500, and not audited.
    before = len(sink.sent)
    long = "x" * 5000
    async with signed_in(app, "mia", StaffRole.MARKETER) as http:
        page = await http.get("/console/offers/LIVE_NO_EXTENSIONS")
        ends = (NOW + timedelta(days=20)).strftime("%Y-%m-%dT%H:%M")
        extend = await http.post(
            "/console/offers/LIVE_NO_EXTENSIONS/extend",
            data={"ends_at": ends, "reason": long, "csrf_token": csrf_of(page.text)},
        )
        withdraw = await http.post(
            "/console/offers/LIVE_NO_EXTENSIONS/withdraw",
            data={"reason": long, "csrf_token": csrf_of(page.text)},
        )
    for answer in (extend, withdraw):
        assert answer.status_code == 422, answer.text
        assert "say why in at most 4000 characters" in answer.text
    assert len(sink.sent) == before


async def test_withdrawing_publishes_the_withdrawal(app, sink):
    async with signed_in(app, "mia", StaffRole.MARKETER) as http:
        page = await http.get("/console/offers/LIVE_NO_EXTENSIONS")
        answer = await http.post(
            "/console/offers/LIVE_NO_EXTENSIONS/withdraw",
            data={"reason": "typo", "csrf_token": csrf_of(page.text)},
        )
    assert answer.status_code == 303
    assert type(sink.sent[-1]).__name__ == "OfferWithdrawn"


async def test_the_report_shows_both_groups_the_named_test_and_a_chart(app):
    async with signed_in(app, "mia", StaffRole.MARKETER) as http:
        page = await http.get("/console/reports/LIVE_NO_EXTENSIONS")
        missing = await http.get("/console/reports/NEVER_PUBLISHED")
    assert page.status_code == 200
    assert "two-proportion z-test" in page.text
    assert "Welch" in page.text
    assert '<svg class="chart" id="report-chart"' in page.text
    assert missing.status_code == 404


async def test_an_agent_cannot_read_a_report(app):
    async with signed_in(app, "carl", StaffRole.AGENT) as http:
        assert (await http.get("/console/reports/LIVE_NO_EXTENSIONS")).status_code == 403


async def post_with_files(http: Any, values: dict[str, str], action: str, files: dict) -> Any:
    page = await http.get("/console/offers/new")
    data = {**values, "action": action, "csrf_token": csrf_of(page.text)}
    return await http.post("/console/offers/new", data=data, files=files)


async def test_an_uploaded_product_list_fills_the_products_and_a_bad_row_is_named(app):
    good = {"products_csv": ("p.csv", b"productCode\nSKU1\nSKU2\n", "text/csv")}
    bad = {"products_csv": ("p.csv", b"productCode\nSKU1\n\xc3\xa9\xc3\xa9\n", "text/csv")}
    async with signed_in(app, "mia", StaffRole.MARKETER) as http:
        merged = await post_with_files(http, valid_form(), "check", good)
        refused = await post_with_files(http, valid_form(), "check", bad)
    assert merged.status_code == 200
    products = merged.text.split('id="f-behaviours-0--products-skus"')[1].split("</textarea>")[0]
    assert products.endswith("SKU1\nSKU2")
    assert refused.status_code == 422
    assert "the uploaded productCode list row 3" in refused.text


async def test_an_audience_of_over_a_mebibyte_is_read_back_from_the_form(app, sink):
    # Found by a user's trial: 120,000 ids passed the check, then Starlette's 1 MiB bound on
    # one field refused the form they filled in with a JSON error.
    ids = "\n".join(f"M{n:07}" for n in range(130_000))
    values = valid_form(
        "CONSOLE_BIG", **{"targeting.kind": "AUDIENCE_LIST", "targeting.audience_id": "BIG"}
    )
    async with signed_in(app, "mia", StaffRole.MARKETER) as http:
        page = await http.get("/console/offers/new")
        data = {**values, "audience_members": ids, "action": "check",
                "csrf_token": csrf_of(page.text)}  # fmt: skip
        checked = await http.post("/console/offers/new", data=data, files={"x": ("", b"")})
    assert len(ids) > 1024 * 1024
    assert checked.status_code == 200, checked.text[:300]
    assert checked.headers["content-type"].startswith("text/html")


async def test_a_binary_file_picked_by_mistake_is_named_in_the_form(app):
    # Found by a user's trial: a NUL byte in an upload (an .xlsx) got the API's JSON error
    # in place of the console's page, and the form's inputs were lost.
    xlsx = {"products_csv": ("p.xlsx", b"PK\x03\x04\x00\x00productCode\nSKU1\n", "text/csv")}
    async with signed_in(app, "mia", StaffRole.MARKETER) as http:
        refused = await post_with_files(http, valid_form(), "check", xlsx)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("text/html")
    assert "the uploaded productCode list" in refused.text


async def test_an_uploaded_audience_is_published_before_the_offer_that_targets_it(app, sink):
    audience = {"audience_csv": ("vip.csv", b"loyaltyId\nM1\nM2\nM1\n", "text/csv")}
    values = valid_form(
        "CONSOLE_VIP", **{"targeting.kind": "AUDIENCE_LIST", "targeting.audience_id": "VIP"}
    )
    before = len(sink.sent)
    async with signed_in(app, "mia", StaffRole.MARKETER) as http:
        answer = await post_with_files(http, values, "publish", audience)
    assert answer.status_code == 303, answer.text
    part, published = sink.sent[before:]
    assert type(part).__name__ == "AudienceUploaded"
    assert (part.audience_id, part.member_ids) == ("VIP", ["M1", "M2"])
    assert isinstance(published, OfferPublished)
    assert published.targeting.audience_id == "VIP"


async def test_a_list_of_members_without_an_audience_id_is_refused_at_its_field(app):
    async with signed_in(app, "mia", StaffRole.MARKETER) as http:
        answer = await post_form(http, {**valid_form(), "audience_members": "M1\nM2"}, "check")
    assert answer.status_code == 422
    assert "a list of members needs the audience id the offer targets" in answer.text


async def test_an_offer_opens_in_the_form_to_be_republished(app):
    async with signed_in(app, "mia", StaffRole.MARKETER) as http:
        page = await http.get("/console/offers/LIVE_NO_EXTENSIONS/edit")
        missing = await http.get("/console/offers/NEVER_PUBLISHED/edit")
    assert page.status_code == 200
    assert 'name="offer_id" value="LIVE_NO_EXTENSIONS"' in page.text
    assert '<option value="SPEND" selected>' in page.text
    assert missing.status_code == 404


async def test_a_real_sample_member_is_judged_by_their_profile(app):
    in_quebec = valid_form(
        **{
            "targeting.kind": "CRITERIA",
            "targeting.timing": "DYNAMIC",
            "sample_spend_cents": "6000",
            "advanced": "targeting:\n  criteria:\n    - attribute: PROVINCE\n      values: [QC]\n",
        }
    )
    async with signed_in(app, "mia", StaffRole.MARKETER) as http:
        quebecer = await post_form(http, {**in_quebec, "sample_member_id": "QUEBECER"}, "preview")
        stranger = await post_form(http, {**in_quebec, "sample_member_id": "NOBODY"}, "preview")
    assert "Preview: 500 point(s) from this offer" in quebecer.text
    assert "Preview: 0 point(s) from this offer" in stranger.text


async def test_a_file_too_large_to_upload_is_refused_whole_at_its_field(app, sink):
    before = len(sink.sent)
    huge = b"productCode\n" + b"SKU\n" * 600_000
    async with signed_in(app, "mia", StaffRole.MARKETER) as http:
        answer = await post_with_files(
            http, valid_form(), "publish", {"products_csv": ("all.csv", huge, "text/csv")}
        )
    assert answer.status_code == 422
    products = answer.text.split('id="f-behaviours-0--products-skus-error"')[1]
    assert "all.csv is larger than 2 MB: upload a smaller file" in products.split("</div>")[0]
    assert len(sink.sent) == before


@pytest.fixture(scope="module")
def extendable(app: Any, database_url: str) -> str:
    """An offer of a programme that allows extensions."""
    config = app.state.config_source.config
    config.apply(
        from_json_object(
            {"type": "ProgramConfigured", "event_id": "program-EXT",
             "occurred_at": (NOW - timedelta(days=60)).isoformat(), "program_id": "EXT",
             "name": "Extensible", "market": "CA", "currency": "CAD",
             "time_zone": "America/Toronto", "categories": ["REGULAR"],
             "points_per_currency_unit": "1", "expiry": {"kind": "NONE"},
             "offer_end_date_extension_enabled": True}
        )
    )  # fmt: skip
    published = live_offer("EXTENDABLE", program_id="EXT")
    config.apply(published)
    project(database_url, published)
    return published.offer_id


async def test_without_the_audit_log_nothing_is_published_extended_or_withdrawn(
    app, sink, extendable
):
    offer_id = extendable
    before = len(sink.sent)
    async with signed_in(app, "mia", StaffRole.MARKETER) as http:
        page = await http.get(f"/console/offers/{offer_id}")
        token = csrf_of(page.text)
        ends = (NOW + timedelta(days=20)).strftime("%Y-%m-%dT%H:%M")
        form = await http.get("/console/offers/new")
        with audit_log_down(app):
            published = await http.post(
                "/console/offers/new",
                data={**valid_form("UNAUDITED"), "action": "publish",
                      "csrf_token": csrf_of(form.text)},
            )  # fmt: skip
            extended = await http.post(
                f"/console/offers/{offer_id}/extend", data={"ends_at": ends, "csrf_token": token}
            )
            withdrawn = await http.post(
                f"/console/offers/{offer_id}/withdraw", data={"reason": "x", "csrf_token": token}
            )
    for answer in (published, extended, withdrawn):
        assert answer.status_code == 503
        assert "nothing was published: the audit log cannot be written" in answer.text
    assert len(sink.sent) == before


async def test_an_extension_is_on_record_as_attempted_before_it_is_done(app, sink, extendable):
    offer_id = extendable
    async with signed_in(app, "mia", StaffRole.MARKETER) as http:
        page = await http.get(f"/console/offers/{offer_id}")
        ends = (NOW + timedelta(days=20)).strftime("%Y-%m-%dT%H:%M")
        answer = await http.post(
            f"/console/offers/{offer_id}/extend",
            data={"ends_at": ends, "csrf_token": csrf_of(page.text)},
        )
    assert answer.status_code == 303
    assert type(sink.sent[-1]).__name__ == "OfferEndDateExtended"
    entries = await app.state.staff_audit.read(subject=offer_id, action="extend offer")
    assert [e.outcome for e in entries] == ["done", "attempted"]
