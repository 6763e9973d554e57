"""The offer report: test vs control for one offer, whether the difference is more than noise,
and a picture of both groups over time (DESIGN.md §5.16; docs/adr/0029-gaps-closed.md).

The one home of the report's computation: `loyalty offers report` prints it and writes its
chart, and a console can call `read_report`, `render_text` and `write_chart` the same way. It
reads the projection (the `offer_performance` figures, rounded once in SQL, and each member's
figures from `offer_member_activity`); it never writes and never reads a clock.

The tests, named in the output:
- qualifying rate: the two-proportion z-test (pooled standard error), with a 95% Wald
  confidence interval of the difference (test - control);
- spend and visits per member: Welch's test on the members' figures (unequal variances,
  normal approximation: the groups of a held-out offer are hundreds of members or more), with
  a 95% confidence interval of the difference.
A difference is called significant when its two-sided p-value is below 0.05.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

ALPHA = 0.05
Z_95 = 1.959963984540054
"""The standard normal's 97.5th percentile: a two-sided 95% interval."""

_FIGURES = """SELECT p.members, p.qualifying_members, p.qualifying_rate, p.redemptions,
        p.redemptions_per_member, p.visits, p.visits_per_member, p.spend_cents,
        p.spend_per_member_cents, p.points_due, p.points_awarded, p.discount_cents,
        p.qualifying_rate_uplift, p.redemptions_per_member_uplift, p.visits_per_member_uplift,
        p.spend_per_member_uplift
    FROM offer_performance_rows() p WHERE p.offer_id = %s ORDER BY p.in_control_group"""

_OFFER = """SELECT program_id, market, starts_at, ends_at, withdrawn_at, control_share_percent
    FROM offers WHERE offer_id = %s"""

_MEMBERS = """SELECT in_control_group, visits, spend_cents, completions
    FROM offer_member_activity_rows() WHERE offer_id = %s"""

# Each day on which a member first completed the offer: the qualifying rate over time.
_FIRST_COMPLETIONS = """SELECT in_control_group, (first_at AT TIME ZONE 'UTC')::date AS day,
        count(*) FROM (
            SELECT oc.member_id, bool_or(oc.in_control_group) AS in_control_group,
                min(oc.occurred_at) AS first_at
            FROM offer_completions oc JOIN offer_audience a
                ON a.offer_id = oc.offer_id AND a.member_id = oc.member_id
            WHERE oc.offer_id = %s GROUP BY oc.member_id
        ) firsts
    GROUP BY 1, 2 ORDER BY 2"""


class UnknownOfferError(LookupError):
    """No offer of that id was ever published."""


@dataclass(frozen=True)
class Group:
    """One group's figures, as `offer_performance` has them."""

    members: int
    qualifying_members: int
    qualifying_rate: Decimal | None
    redemptions: int
    redemptions_per_member: Decimal | None
    visits: int
    visits_per_member: Decimal | None
    spend_cents: int
    spend_per_member_cents: Decimal | None
    points_due: int
    points_awarded: int
    discount_cents: int


@dataclass(frozen=True)
class Comparison:
    """Test against control on one measure: the difference, its interval and its test."""

    measure: str
    test_name: str
    difference: float | None
    """test - control, in the measure's unit (a rate, cents or visits per member)."""
    low: float | None
    high: float | None
    statistic: float | None
    p_value: float | None

    @property
    def is_significant(self) -> bool:
        return self.p_value is not None and self.p_value < ALPHA


@dataclass(frozen=True)
class Day:
    """One day of the chart: each group's qualifying rate so far."""

    day: date
    test_rate: float
    control_rate: float


@dataclass
class OfferReport:
    """Everything the report says about one offer."""

    offer_id: str
    program_id: str
    market: str
    starts_at: datetime
    ends_at: datetime
    withdrawn_at: datetime | None
    control_share_percent: int
    test: Group
    control: Group
    uplift: dict[str, Decimal | None]
    comparisons: list[Comparison] = field(default_factory=list)
    days: list[Day] = field(default_factory=list)


def read_report(conn: psycopg.Connection[Any], offer_id: str) -> OfferReport:
    """The report of `offer_id` from the projection; UnknownOfferError when never published."""
    offer = conn.execute(_OFFER, (offer_id,)).fetchone()
    if offer is None:
        raise UnknownOfferError(offer_id)
    rows = conn.execute(_FIGURES, (offer_id,)).fetchall()
    empty = (0, 0, None, 0, None, 0, None, 0, None, 0, 0, 0)
    test_row = next((r for r in rows[:1]), None)
    control_row = next((r for r in rows[1:2]), None)
    test = Group(*(test_row[:12] if test_row else empty))
    control = Group(*(control_row[:12] if control_row else empty))
    uplift_names = ("qualifying_rate", "redemptions_per_member", "visits_per_member",
                    "spend_per_member")  # fmt: skip
    uplift = dict(zip(uplift_names, test_row[12:] if test_row else (None,) * 4, strict=True))
    members = conn.execute(_MEMBERS, (offer_id,)).fetchall()
    firsts = conn.execute(_FIRST_COMPLETIONS, (offer_id,)).fetchall()
    program_id, market, starts_at, ends_at, withdrawn_at, share = offer
    return OfferReport(
        offer_id=offer_id,
        program_id=program_id,
        market=market,
        starts_at=starts_at,
        ends_at=ends_at,
        withdrawn_at=withdrawn_at,
        control_share_percent=share,
        test=test,
        control=control,
        uplift=uplift,
        comparisons=compare(test, control, members),
        days=cumulative_rates(firsts, test.members, control.members),
    )


def compare(test: Group, control: Group, members: list[tuple[Any, ...]]) -> list[Comparison]:
    """The three comparisons: qualifying rate, spend per member, visits per member."""
    spend = {False: [float(m[2]) for m in members if not m[0]],
             True: [float(m[2]) for m in members if m[0]]}  # fmt: skip
    visits = {False: [float(m[1]) for m in members if not m[0]],
              True: [float(m[1]) for m in members if m[0]]}  # fmt: skip
    return [
        two_proportions(
            "qualifying rate",
            test.qualifying_members,
            test.members,
            control.qualifying_members,
            control.members,
        ),
        welch("spend per member (cents)", spend[False], spend[True]),
        welch("visits per member", visits[False], visits[True]),
    ]


def two_proportions(measure: str, x1: int, n1: int, x2: int, n2: int) -> Comparison:
    """The two-proportion z-test of x1/n1 against x2/n2 (pooled standard error for the test,
    unpooled for the 95% interval of the difference)."""
    name = "two-proportion z-test"
    if n1 == 0 or n2 == 0:
        return Comparison(measure, name, None, None, None, None, None)
    p1, p2 = x1 / n1, x2 / n2
    difference = p1 - p2
    pooled = (x1 + x2) / (n1 + n2)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    if se_pooled == 0:
        return Comparison(measure, name, difference, difference, difference, None, None)
    z = difference / se_pooled
    return Comparison(
        measure, name, difference, difference - Z_95 * se, difference + Z_95 * se, z, _p(z)
    )


def welch(measure: str, test: list[float], control: list[float]) -> Comparison:
    """Welch's test of the means of two samples (unequal variances; the statistic's p-value
    from the normal distribution), with the 95% interval of the difference."""
    name = "Welch's test (normal approximation)"
    if len(test) < 2 or len(control) < 2:
        return Comparison(measure, name, None, None, None, None, None)
    m1, m2 = sum(test) / len(test), sum(control) / len(control)
    v1 = sum((x - m1) ** 2 for x in test) / (len(test) - 1)
    v2 = sum((x - m2) ** 2 for x in control) / (len(control) - 1)
    difference = m1 - m2
    se = math.sqrt(v1 / len(test) + v2 / len(control))
    if se == 0:
        return Comparison(measure, name, difference, difference, difference, None, None)
    statistic = difference / se
    low, high = difference - Z_95 * se, difference + Z_95 * se
    return Comparison(measure, name, difference, low, high, statistic, _p(statistic))


def _p(z: float) -> float:
    """Two-sided p-value of a standard normal statistic."""
    return math.erfc(abs(z) / math.sqrt(2))


def cumulative_rates(
    firsts: list[tuple[Any, ...]], test_members: int, control_members: int
) -> list[Day]:
    """Each day with a first completion: the share of each group that has qualified so far."""
    days: dict[date, list[int]] = {}
    for in_control, day, count in firsts:
        days.setdefault(day, [0, 0])[1 if in_control else 0] += count
    out, test_so_far, control_so_far = [], 0, 0
    for day in sorted(days):
        test_so_far += days[day][0]
        control_so_far += days[day][1]
        out.append(
            Day(
                day,
                test_so_far / test_members if test_members else 0.0,
                control_so_far / control_members if control_members else 0.0,
            )
        )
    return out


def render_text(report: OfferReport) -> str:
    """The report as text: the figures side by side, the uplift, the tests."""
    t, c = report.test, report.control
    rows = [
        ("members", t.members, c.members),
        ("qualifying members", t.qualifying_members, c.qualifying_members),
        ("qualifying rate", t.qualifying_rate, c.qualifying_rate),
        ("redemptions", t.redemptions, c.redemptions),
        ("redemptions per member", t.redemptions_per_member, c.redemptions_per_member),
        ("visits per member", t.visits_per_member, c.visits_per_member),
        ("spend per member (cents)", t.spend_per_member_cents, c.spend_per_member_cents),
        ("points awarded", t.points_awarded, c.points_awarded),
        ("points due (control: would have)", t.points_due, c.points_due),
    ]
    end = "no end" if report.ends_at.year >= 3001 else report.ends_at.isoformat()
    lines = [
        f"offer {report.offer_id} ({report.program_id}, {report.market}): "
        f"{report.starts_at.isoformat()} to {end}, control {report.control_share_percent}%",
        f"{'':34}{'test':>14}{'control':>14}",
        *(f"{name:34}{_cell(a):>14}{_cell(b):>14}" for name, a, b in rows),
        "uplift (test vs control, per member): "
        + ", ".join(f"{k.replace('_', ' ')} {_cell(v)}" for k, v in report.uplift.items()),
    ]
    for comparison in report.comparisons:
        lines.append(_sentence(comparison))
    return "\n".join(lines)


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


def _sentence(c: Comparison) -> str:
    if c.p_value is None or c.difference is None or c.low is None or c.high is None:
        return f"{c.measure}: {c.test_name}: not enough members in a group to test"
    verdict = "significant" if c.is_significant else "not significant (could be noise)"
    return (
        f"{c.measure}: difference {c.difference:+.4f}, 95% CI [{c.low:+.4f}, {c.high:+.4f}], "
        f"{c.test_name} statistic {c.statistic:+.3f}, p = {c.p_value:.4f}: {verdict} "
        f"at {ALPHA:g}"
    )


def write_chart(report: OfferReport, path: Path) -> Path:
    """A PNG of both groups' qualifying rate over time, with the test's verdict in the title."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display
    from matplotlib import dates, pyplot

    figure, axes = pyplot.subplots(figsize=(8, 4.5), dpi=100)
    # From the offer's start (nobody qualified yet), one step a day with a first completion.
    start = report.starts_at.date()
    starts_at_zero = not report.days or report.days[0].day > start
    series = [Day(start, 0.0, 0.0), *report.days] if starts_at_zero else report.days
    days = dates.date2num([d.day for d in series])  # type: ignore[no-untyped-call]
    locator = dates.AutoDateLocator()  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(dates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    for label, rates in (
        (f"test ({report.test.members} members)", [d.test_rate for d in series]),
        (f"control ({report.control.members} members)", [d.control_rate for d in series]),
    ):
        axes.step(days, rates, where="post", marker="o", label=label)
    axes.set_ylabel("share of the group that qualified")
    axes.set_xlabel("day (UTC)")
    axes.set_ylim(bottom=0)
    axes.legend(loc="upper left")
    qualifying = report.comparisons[0] if report.comparisons else None
    verdict = ""
    if qualifying is not None and qualifying.p_value is not None:
        verdict = f"\n{qualifying.test_name}: p = {qualifying.p_value:.4f}"
    axes.set_title(f"{report.offer_id}: test vs control{verdict}")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    pyplot.close(figure)
    return path
