"""The offer report: what `loyalty offers report` prints, from the same module
(`projections.offer_report`), with a chart of both groups over time drawn as SVG on the server
(readable without JavaScript) and the budget and total-use progress, alerting under 5 % left."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated

import psycopg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from projections.console.offer_queries import OfferQueries
from projections.console.pages import now, render
from projections.console.roles import Area
from projections.console.sessions import Staff, allowed
from projections.offer_report import Day, OfferReport, UnknownOfferError, read_report

router = APIRouter(include_in_schema=False)
Analyst = Annotated[Staff, Depends(allowed(Area.REPORTS))]

WIDTH, HEIGHT, PAD = 640, 280, 44


@dataclass(frozen=True)
class Chart:
    """Both groups' share qualified so far, day by day, as SVG coordinates."""

    test: str
    control: str
    ticks: list[tuple[float, str]]
    days: list[tuple[float, str]]
    test_points: list[tuple[float, float]]
    control_points: list[tuple[float, float]]


def chart(report: OfferReport) -> Chart:
    start = report.starts_at.date()
    days = (
        report.days
        if report.days and report.days[0].day == start
        else [Day(start, 0.0, 0.0), *report.days]
    )
    top = max([0.1, *(max(d.test_rate, d.control_rate) for d in days)])
    span = max((days[-1].day - days[0].day).days, 1)

    def x(day: Day) -> float:
        return round(PAD + (WIDTH - 2 * PAD) * (day.day - days[0].day).days / span, 1)

    def y(rate: float) -> float:
        return round(HEIGHT - PAD - (HEIGHT - 2 * PAD) * rate / top, 1)

    def steps(rates: list[float]) -> tuple[str, list[tuple[float, float]]]:
        points: list[tuple[float, float]] = []
        for n, (day, rate) in enumerate(zip(days, rates, strict=True)):
            if n:
                points.append((x(day), points[-1][1]))
            points.append((x(day), y(rate)))
        return " ".join(f"{a},{b}" for a, b in points), [
            (x(d), y(r)) for d, r in zip(days, rates, strict=True)
        ]

    test, test_points = steps([d.test_rate for d in days])
    control, control_points = steps([d.control_rate for d in days])
    ticks = [(y(top * k / 4), f"{top * k / 4:.1%}") for k in range(5)]
    labels = [(x(d), d.day.isoformat()) for d in (days[0], days[-1])]
    return Chart(test, control, ticks, labels, test_points, control_points)


def _read(dsn: str, offer_id: str) -> OfferReport | None:
    with psycopg.connect(dsn) as conn:
        try:
            return read_report(conn, offer_id)
        except UnknownOfferError:
            return None


@router.get("/reports/{offer_id}")
async def report_page(request: Request, staff: Analyst, offer_id: str) -> Response:
    # The report module reads with a plain connection, as the CLI does: in a thread here.
    report = await asyncio.to_thread(_read, request.app.state.dsn, offer_id)
    if report is None:
        return render(
            request, "refused.html", staff, 404, reason=f"No offer {offer_id} was ever published"
        )
    rows = await OfferQueries(request.app.state.pool).offers(now=now(request), offer_id=offer_id)
    return render(
        request,
        "report.html",
        staff,
        report=report,
        chart=chart(report),
        offer=rows[0] if rows else None,
        width=WIDTH,
        height=HEIGHT,
        pad=PAD,
    )
