"""`loyalty offers report` on the real Postgres: test vs control from the projection, the
named tests, and a PNG of both groups over time."""

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from click.testing import CliRunner

from loyalty.cli import main
from processors.base.settings import get_settings
from projections.offer_report import read_report

pytestmark = pytest.mark.integration

START = datetime(2026, 3, 1, tzinfo=UTC)
TEST = [f"T{n:03}" for n in range(200)]
CONTROL = [f"C{n:03}" for n in range(50)]


def _project(dsn: str) -> None:
    """200 test members, 50 control: 100 test members qualify over four days (50%), 10
    control members would have (20%); the qualifiers buy, the others do not."""
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "INSERT INTO offers VALUES ('REPORTED', 'MAIN', 'CA', 1, %s, %s, NULL, 20, '{}')",
            (START, START + timedelta(days=30)),
        )
        for member in TEST + CONTROL:
            conn.execute(
                "INSERT INTO offer_audience VALUES ('REPORTED', %s, %s, %s)",
                (member, member in CONTROL, START),
            )
        qualifiers = TEST[:100] + CONTROL[:10]
        for n, member in enumerate(qualifiers):
            at = START + timedelta(days=1 + n % 4, hours=1)
            control = member in CONTROL
            conn.execute(
                "INSERT INTO offer_completions VALUES (%s, %s, 'REPORTED', 1, 1, NULL, 'MAIN',"
                " 100, %s, 0, %s, %s, %s, %s)",
                (f"c-{member}", member, 0 if control else 100, control, f"tx-{member}",
                 f"cause-{member}", at),
            )  # fmt: skip
            conn.execute(
                "INSERT INTO member_transactions VALUES (%s, %s, 'CA', %s, 2500)",
                (member, f"tx-{member}", at),
            )


def test_the_report_prints_both_groups_the_named_tests_and_writes_a_chart(
    own_database_url, monkeypatch, tmp_path
):
    _project(own_database_url)
    monkeypatch.setenv("DATABASE_URL", own_database_url)
    get_settings.cache_clear()
    try:
        png = tmp_path / "report.png"
        result = CliRunner().invoke(main, ["offers", "report", "REPORTED", "--png", str(png)])
    finally:
        get_settings.cache_clear()

    assert result.exit_code == 0, result.output
    assert "two-proportion z-test" in result.output
    assert "Welch's test" in result.output
    assert "qualifying rate: difference +0.3000" in result.output
    assert "significant at 0.05" in result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    with psycopg.connect(own_database_url) as conn:
        report = read_report(conn, "REPORTED")
    assert (report.test.members, report.control.members) == (200, 50)
    assert (report.test.qualifying_members, report.control.qualifying_members) == (100, 10)
    qualifying = report.comparisons[0]
    assert qualifying.p_value is not None
    assert qualifying.p_value < 0.001
    assert [round(d.test_rate, 3) for d in report.days] == [0.125, 0.25, 0.375, 0.5]
    assert [round(d.control_rate, 3) for d in report.days] == [0.06, 0.12, 0.16, 0.2]


def test_an_offer_never_published_is_refused(own_database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", own_database_url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(main, ["offers", "report", "NEVER_SEEN"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "no offer NEVER_SEEN" in result.output
