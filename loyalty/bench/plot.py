"""The plot of a `loyalty bench` run (matplotlib, no display): throughput and latency over
the run, every step on one time axis, each step's span shaded and named."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loyalty.bench.report import SuiteResult


def _per_second(times: list[float], start: float) -> tuple[list[float], list[float]]:
    """Answers a second, in one-second buckets from `start`."""
    buckets = Counter(int(t - start) for t in times)
    xs = sorted(buckets)
    return [x + 0.5 for x in xs], [float(buckets[x]) for x in xs]


def _rates(points: list[tuple[float, float]], start: float) -> tuple[list[float], list[float]]:
    """Units a second between samples of a running count."""
    xs, ys = [], []
    for (t0, n0), (t1, n1) in pairwise(points):
        if t1 > t0:
            xs.append((t0 + t1) / 2 - start)
            ys.append((n1 - n0) / (t1 - t0))
    return xs, ys


def plot_suite(result: SuiteResult, path: Path) -> Path:
    """Throughput (top) and latency (bottom, log scale) against seconds since the run began."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start = result.started_at
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(14, 8), sharex=True)
    for n, step in enumerate(result.steps):
        left = step.started_at - start
        for axis in (top, bottom):
            axis.axvspan(left, left + step.seconds, color="0.93" if n % 2 else "0.97", zorder=0)
        top.annotate(step.name, (left, 1.0), xycoords=("data", "axes fraction"),
                     va="bottom", fontsize=8)  # fmt: skip
        if step.report is None:
            continue
        for name, points in step.report.latency_over_run.items():
            label = f"{step.name}: {name}"
            xs, ys = _per_second([t for t, _ in points], start)
            top.plot(xs, ys, linewidth=0.8, label=label)
            bottom.scatter([t - start for t, _ in points], [ms for _, ms in points], s=2,
                           label=label)  # fmt: skip
        for name, points in step.report.done_over_run.items():
            xs, ys = _rates(points, start)
            top.plot(xs, ys, linewidth=0.8, label=f"{step.name}: {name}")
    top.set_ylabel("per second")
    top.set_yscale("symlog", linthresh=10)
    top.set_ylim(bottom=0)
    bottom.set_ylabel("latency, ms")
    bottom.set_yscale("log")
    bottom.set_xlabel("seconds since the run began")
    for axis in (top, bottom):
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        axis.grid(True, which="major", linewidth=0.3)
    figure.suptitle(f"loyalty bench ({result.mode}): throughput and latency over the run")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
