"""A benchmark report: measurements, a JSON file and a human table."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from processors.base.settings import REPO_ROOT


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
class BenchReport:
    """Measurements of one run, with the context needed to compare runs."""

    suite: str
    measurements: list[Measurement] = field(default_factory=list)
    context: dict[str, object] = field(default_factory=dict)
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def add(self, measurement: Measurement) -> Measurement:
        self.measurements.append(measurement)
        return measurement

    def to_json(self) -> dict[str, object]:
        return {
            "suite": self.suite,
            "started_at": self.started_at,
            "context": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "machine": platform.machine(),
                **self.context,
            },
            "measurements": [
                {**asdict(m), "rate_per_second": round(m.rate, 1)} for m in self.measurements
            ],
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
        console.print(table)
        cpu = self.context.get("cpu_seconds")
        if isinstance(cpu, dict):
            for stage, used in cpu.items():
                spent = ", ".join(f"{name} {value}" for name, value in used.items())
                console.print(f"CPU seconds during {stage}: {spent}")


def write_report(report: BenchReport, output: Path | None = None) -> Path:
    """Write the JSON report (default: bench-results/<suite>-<time>.json) and return its path."""
    if output is None:
        stamp = report.started_at.replace(":", "").replace("-", "")[:15]
        output = REPO_ROOT / "bench-results" / f"{report.suite}-{stamp}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    return output
