"""The offer report page's pieces that need no database: the chart's coordinates and the
budget's alert state (under 5 % left)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from projections.console.offer_queries import Progress
from projections.console.pages import TEMPLATES
from projections.console.routes_reports import HEIGHT, PAD, WIDTH, chart
from projections.offer_report import Day, Group, OfferReport


def report(days: list[Day]) -> OfferReport:
    group = Group(10, 0, None, 0, None, 0, None, 0, None, 0, 0, 0)
    return OfferReport(
        offer_id="TVC",
        program_id="MAIN",
        market="CA",
        starts_at=datetime(2026, 3, 1, tzinfo=UTC),
        ends_at=datetime(2026, 3, 11, tzinfo=UTC),
        withdrawn_at=None,
        control_share_percent=20,
        test=group,
        control=group,
        uplift={},
        days=days,
    )


def test_both_groups_start_at_zero_on_the_first_day_and_step_up_to_their_share():
    drawn = chart(report([Day(date(2026, 3, 3), 0.25, 0.5), Day(date(2026, 3, 5), 0.5, 0.5)]))
    bottom, top = HEIGHT - PAD, PAD
    assert drawn.test_points[0] == (PAD, bottom)  # the start: nobody qualified yet
    assert drawn.control_points[-1] == (WIDTH - PAD, top)  # 50 %, the highest share
    assert drawn.test_points[-1] == (WIDTH - PAD, top)
    # Steps: each day's share holds until the next day's.
    assert drawn.test.split()[1].split(",")[1] == str(float(bottom))
    assert [label for _, label in drawn.days] == ["2026-03-01", "2026-03-05"]


def test_an_offer_nobody_qualified_for_is_a_flat_line_on_a_ten_percent_scale():
    drawn = chart(report([]))
    assert drawn.test == f"{float(PAD)},{float(HEIGHT - PAD)}"
    assert drawn.ticks[-1][1] == "10.0%"


@pytest.mark.parametrize(("used", "alert"), [(95, False), (96, True), (120, True), (0, False)])
def test_a_budget_alerts_when_less_than_five_percent_is_left(used, alert):
    progress = Progress(used, 100)
    assert progress.is_alert is alert
    shown = TEMPLATES.get_template("offers/progress.html").render(p=progress, unit="points")
    assert ("under 5 % left" in shown) is alert
    assert ('class="meter alert"' in shown) is alert


def test_without_a_limit_there_is_nothing_to_run_out_of():
    assert not Progress(10**9, None).is_alert
    shown = TEMPLATES.get_template("offers/progress.html").render(p=Progress(7, None), unit="uses")
    assert "7 uses, no limit" in shown
