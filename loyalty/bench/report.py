"""A benchmark report: measurements, latencies, the targets they meet, a JSON file and a
human table. Every benchmark fills one; `loyalty bench` gathers them (`loyalty.bench.suite`)."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from processors import native
from processors.base.settings import REPO_ROOT

QUANTILES = ("p50_ms", "p95_ms", "p99_ms", "max_ms")


@dataclass
class Measurement:
    """One timed run: `count` units of work in `seconds`."""

    name: str
    unit: str
    count: int
    seconds: float
    note: str = ""

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Latencies:
    """Per-request times of one measurement, in seconds, and when each answer came (Unix
    time, for the plot over the run; empty where a bench does not say)."""

    name: str
    seconds: list[float] = field(default_factory=list)
    at: list[float] = field(default_factory=list)

    def add(self, seconds: float, at: float | None = None) -> None:
        self.seconds.append(seconds)
        if at is not None:
            self.at.append(at)

    def percentile(self, q: float) -> float:
        """Nearest rank, in milliseconds."""
        ordered = sorted(self.seconds)
        rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
        return ordered[rank - 1] * 1000

    def summary(self) -> dict[str, float]:
        return {
            "count": len(self.seconds),
            "mean_ms": round(sum(self.seconds) / len(self.seconds) * 1000, 3),
            **{f"p{q}_ms": round(self.percentile(q), 3) for q in (50, 95, 99)},
            "max_ms": round(max(self.seconds) * 1000, 3),
        }

    def measurement(self, unit: str, note: str) -> Measurement:
        """The times as a report line: their count and sum, the percentiles in the note."""
        s = self.summary()
        return Measurement(
            self.name, unit, len(self.seconds), sum(self.seconds),
            f"p50 {s['p50_ms']:.2f} · p95 {s['p95_ms']:.2f} · p99 {s['p99_ms']:.2f} ms; {note}",
        )  # fmt: skip


@dataclass(frozen=True)
class Verdict:
    """Whether one figure of the run meets one target of an issue."""

    target: str
    """The issue and its words, e.g. "#16.3 projector >= 60 % of COPY"."""
    figure: float | None
    limit: float
    at_most: bool
    """True: the figure must not exceed the limit; False: it must reach it."""
    unit: str = ""
    baseline: str = ""
    """How the figure was made relative to the same run (a ratio's denominator)."""

    @property
    def met(self) -> bool | None:
        if self.figure is None:
            return None
        return self.figure <= self.limit if self.at_most else self.figure >= self.limit

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "met": self.met}


def verdict(
    target: str, figure: float | None, *, at_most: float | None = None,
    at_least: float | None = None, unit: str = "", baseline: str = "",
) -> Verdict:  # fmt: skip
    """A target met or not by `figure`: give exactly one of `at_most` and `at_least`."""
    assert (at_most is None) != (at_least is None)
    limit = at_most if at_most is not None else at_least
    assert limit is not None
    figure = None if figure is None else round(figure, 4)
    return Verdict(target, figure, limit, at_most is not None, unit, baseline)


@dataclass
class BenchReport:
    """Measurements of one run, with the context needed to compare runs, the targets their
    figures meet, and what happened over the run for the plot: latencies (name -> [(Unix
    time, ms)]) and work done (name -> [(Unix time, units done so far)])."""

    suite: str
    measurements: list[Measurement] = field(default_factory=list)
    context: dict[str, object] = field(default_factory=dict)
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    verdicts: list[Verdict] = field(default_factory=list)
    latency_over_run: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    done_over_run: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    def add(self, measurement: Measurement) -> Measurement:
        self.measurements.append(measurement)
        return measurement

    def add_latencies(self, times: Latencies, unit: str, note: str, name: str = "") -> None:
        """`times` as a measurement (named `name` or its own name), and over the run."""
        line = times.measurement(unit, note)
        line.name = name or line.name
        self.add(line)
        if times.at:
            self.latency_over_run[line.name] = [
                (at, s * 1000) for at, s in zip(times.at, times.seconds, strict=True)
            ]

    def judge(self, *verdicts: Verdict) -> None:
        self.verdicts.extend(verdicts)

    def to_json(self) -> dict[str, object]:
        return {
            "suite": self.suite,
            "started_at": self.started_at,
            "context": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "machine": platform.machine(),
                "rule_core": native.BUILD,  # compiled or from source (ADR 41)
                "load_average": [round(x, 2) for x in os.getloadavg()],
                **self.context,
            },
            "measurements": [
                {**asdict(m), "rate_per_second": round(m.rate, 1)} for m in self.measurements
            ],
            "verdicts": [v.to_json() for v in self.verdicts],
            "latency_over_run": _rounded(self.latency_over_run),
            "done_over_run": _rounded(self.done_over_run),
        }

    def print_table(self, console: Console) -> None:
        table = Table(title=f"benchmark: {self.suite}")
        for column in ("measurement", "count", "seconds", "rate/s", "note"):
            table.add_column(
                column, justify="left" if column in ("measurement", "note") else "right"
            )
        for m in self.measurements:
            table.add_row(
                m.name, f"{m.count:,} {m.unit}", f"{m.seconds:.2f}", f"{m.rate:,.0f}", m.note
            )
        wide(console).print(table)
        cpu = self.context.get("cpu_seconds")
        if isinstance(cpu, dict):
            for stage, used in cpu.items():
                spent = ", ".join(f"{name} {value}" for name, value in used.items())
                console.print(f"CPU seconds during {stage}: {spent}")
        print_verdicts(self.verdicts, console)


def _rounded(series: dict[str, list[tuple[float, float]]]) -> dict[str, list[list[float]]]:
    return {
        name: [[round(t, 3), round(v, 3)] for t, v in points] for name, points in series.items()
    }


def wide(console: Console, width: int = 160) -> Console:
    """`console`, or one as wide as `width` on the same file when it is narrower (a pipe or a
    log file reads as 80 columns, too narrow for a table of figures and notes)."""
    return console if console.width >= width else Console(file=console.file, width=width)


def print_verdicts(verdicts: Iterable[Verdict], console: Console) -> None:
    """One line a target: the figure, the limit, met or not."""
    table = Table(title="targets")
    for column in ("target", "figure", "limit", "met", "beside"):
        table.add_column(column, justify="right" if column in ("figure", "limit") else "left")
    shown = False
    for v in verdicts:
        shown = True
        figure = "—" if v.figure is None else f"{v.figure:,.4g} {v.unit}".strip()
        limit = f"{'≤' if v.at_most else '≥'} {v.limit:,.4g} {v.unit}".strip()
        met = {True: "[green]met[/]", False: "[red]not met[/]", None: "no figure"}[v.met]
        table.add_row(v.target, figure, limit, met, v.baseline)
    if shown:
        wide(console).print(table)


def print_latencies(
    title: str, latency: dict[str, dict[str, float]], console: Console,
    extra: dict[str, str] | None = None, extra_column: str = "",
) -> None:  # fmt: skip
    """The percentiles of each measurement side by side, in milliseconds; `extra` adds one
    column (answers by outcome, a ratio) keyed by measurement."""
    table = Table(title=title)
    columns = ["measurement", "count", "mean", "p50", "p95", "p99", "max"]
    for column in columns + ([extra_column] if extra is not None else []):
        table.add_column(column, justify="left" if column == "measurement" else "right")
    for name, s in latency.items():
        cells = [f"{s[k]:.2f}" for k in ("mean_ms", *QUANTILES)]
        more = [extra.get(name, "")] if extra is not None else []
        table.add_row(name, f"{s['count']:,.0f}", *cells, *more)
    wide(console).print(table)


def print_latency_report(report: BenchReport, console: Console, title: str) -> None:
    """A latency bench's report: its `latency_ms` side by side with the answers by outcome
    (where it counted them), what the generator achieved, and the targets."""
    latency: dict[str, dict[str, float]] = report.context["latency_ms"]  # type: ignore[assignment]
    outcomes = report.context.get("outcomes")
    seen = None
    if isinstance(outcomes, dict) and all(isinstance(v, dict) for v in outcomes.values()):
        seen = {name: ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
                for name, counts in outcomes.items()}  # fmt: skip
    print_latencies(title, latency, console, seen, "outcomes")
    said = {
        "achieved_requests_per_s": "achieved {}/s",
        "generator_lag_max_ms": "generator at most {} ms late",
        "api_cpu_ms_per_request": "API CPU {} ms a request",
        "agent_wait_ms": "request → its agent's batch (worker histogram) {}",
    }
    line = [form.format(report.context[key]) for key, form in said.items()
            if report.context.get(key) is not None]  # fmt: skip
    if line:
        console.print(" · ".join(line))
    print_verdicts(report.verdicts, console)


def write_report(report: BenchReport, output: Path | None = None) -> Path:
    """Write the JSON report (default: bench-results/<suite>-<time>.json) and return its path."""
    if output is None:
        stamp = report.started_at.replace(":", "").replace("-", "")[:15]
        output = REPO_ROOT / "bench-results" / f"{report.suite}-{stamp}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    return output


@dataclass
class StepResult:
    """One benchmark of `loyalty bench`'s run: its report, or why it has none."""

    name: str
    what: str
    started_at: float
    seconds: float
    report: BenchReport | None = None
    error: str | None = None


@dataclass
class SuiteResult:
    """A whole `loyalty bench` run (`bench.suite` runs it, `bench.plot` draws it)."""

    mode: str
    started_at: float
    steps: list[StepResult] = field(default_factory=list)

    @property
    def verdicts(self) -> list[Verdict]:
        return [v for step in self.steps if step.report for v in step.report.verdicts]

    def to_json(self) -> dict[str, Any]:
        return {
            "suite": "all",
            "mode": self.mode,
            "started_at": self.started_at,
            "seconds": round(sum(step.seconds for step in self.steps), 1),
            "steps": [
                {
                    "name": s.name,
                    "what": s.what,
                    "started_at": s.started_at,
                    "seconds": round(s.seconds, 1),
                    "error": s.error,
                    "report": s.report.to_json() if s.report else None,
                }
                for s in self.steps
            ],
            "verdicts": [v.to_json() for v in self.verdicts],
        }
