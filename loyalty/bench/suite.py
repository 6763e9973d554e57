"""`loyalty bench`: every benchmark with its baseline, one after the other on the local stack,
into one table, one JSON report and one plot, each target of issues #12-#16 judged from the
same run's figures (issue #16, target 5).

A step is one benchmark module run at the sizes of a mode: `full` the issues' sizes, `quick`
small sizes for a smoke test (the report's shape, never its times). A step that fails is
reported with its error and the next one runs: one broken bench must not hide the others.
Each step that loads the API or a projection gets a fresh database; topics are the step's own.
"""

from __future__ import annotations

import asyncio
import json
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from loyalty.bench.report import (
    BenchReport,
    StepResult,
    SuiteResult,
    print_verdicts,
    wide,
)
from processors.base.settings import Settings

Echo = Callable[[str], None]


@dataclass(frozen=True)
class Step:
    """One benchmark: `run(settings, dsn, sizes, log_dir, echo)` at `sizes[mode]`."""

    name: str
    what: str
    run: Callable[[Settings, str, dict[str, Any], Path, Echo], BenchReport]
    sizes: dict[str, dict[str, Any]]


def _raw(
    settings: Settings, dsn: str, sizes: dict[str, Any], log_dir: Path, echo: Echo
) -> BenchReport:
    from loyalty.bench.raw import run_raw_bench

    return asyncio.run(run_raw_bench(settings, **sizes))


def _ledger(
    settings: Settings, dsn: str, sizes: dict[str, Any], log_dir: Path, echo: Echo
) -> BenchReport:
    from loyalty.bench.ledger import mix_load, run_ledger_bench

    load = asyncio.run(mix_load(sizes["members"], sizes["events"], sizes["offers"]))
    return asyncio.run(run_ledger_bench(settings, dsn, load=load, log_dir=log_dir))


def _state(
    settings: Settings, dsn: str, sizes: dict[str, Any], log_dir: Path, echo: Echo
) -> BenchReport:
    from loyalty.bench.state import run_state_bench
    from loyalty.bench.state_worker import judge, measure_worker

    report = run_state_bench(
        members=sizes["members"], purchases=sizes["purchases"], distinct=sizes["distinct"],
        rounds=sizes["rounds"], partitions=settings.partitions,
        bootstrap=settings.bootstrap_servers, topic_prefix=settings.topic(""),
        workdir=settings.stack_dir, echo=echo,
    )  # fmt: skip
    worker = asyncio.run(measure_worker(
        settings, members=sizes["members"], purchases=sizes["purchases"],
        distinct=sizes["distinct"], day_tick=False, log_dir=log_dir, echo=echo,
    ))  # fmt: skip
    report.context["worker"] = worker
    judge(report, worker)
    return report


def _projector(
    settings: Settings, dsn: str, sizes: dict[str, Any], log_dir: Path, echo: Echo
) -> BenchReport:
    from loyalty.bench.projector import run_projector_bench

    return asyncio.run(run_projector_bench(settings.model_copy(update={"database_url": dsn}),
                                           **sizes))  # fmt: skip


def _cart(
    settings: Settings, dsn: str, sizes: dict[str, Any], log_dir: Path, echo: Echo
) -> BenchReport:
    from loyalty.bench.cart import run_cart_bench

    return asyncio.run(run_cart_bench(settings, dsn, log_dir=log_dir, **sizes))


def _served(module: str) -> Callable[[Settings, str, dict[str, Any], Path, Echo], BenchReport]:
    """A bench of the running services (`loyalty.bench.<module>.run_<module>_bench(settings,
    dsn, log_dir=, echo=, **sizes)`), imported when it runs."""

    def run(
        settings: Settings, dsn: str, sizes: dict[str, Any], log_dir: Path, echo: Echo
    ) -> BenchReport:
        bench = getattr(import_module(f"loyalty.bench.{module}"), f"run_{module}_bench")
        report: BenchReport = asyncio.run(bench(settings, dsn, log_dir=log_dir, echo=echo, **sizes))
        return report

    return run


API_WORKERS = 2
"""API processes the full mode's served benches run, as `docker compose` does
(`LOYALTY_API_WORKERS`): the issues' rates are judged against the API as deployed."""

STEPS: tuple[Step, ...] = (
    Step("raw", "the stack alone: produce, bare consume→produce loop, COPY", _raw, {
        "quick": {"messages": 2_000, "rows": 2_000},
        "full": {"messages": 200_000, "rows": 100_000},
    }),
    Step("ledger", "#16.1 worker end to end on the realistic mix vs the bare loop", _ledger, {
        "quick": {"members": 200, "events": 300, "offers": 20},
        "full": {"members": 100_000, "events": 20_000, "offers": 200},
    }),
    Step("state", "#16.2 member state at scale, the worker's RSS and recovery", _state, {
        "quick": {"members": 2_000, "purchases": 200, "distinct": 200, "rounds": 1},
        "full": {"members": 1_000_000, "purchases": 10_000, "distinct": 10_000, "rounds": 1},
    }),
    Step("projector", "#16.3 projector vs a bare COPY of the same rows", _projector, {
        "quick": {"members": 200, "events_per_member": 3},
        "full": {"members": 100_000, "events_per_member": 10},
    }),
    Step("cart", "#16.4 the till over HTTP vs healthz; the rule at 10 and 10,000 offers", _cart, {
        "quick": {"offers": 60, "members": 20, "carts": 40, "warmup": 5, "scaling_carts": 20,
                  "scaling_offers": 200},
        "full": {"offers": 1_150, "members": 2_000, "carts": 5_000},
    }),
    Step("feed", "#14 offer feeds under load vs healthz; event → visible", _served("feed"), {
        "quick": {"offers": 40, "members": 300, "rates": [20.0], "healthz_share": 0.25,
                  "seconds": 2.0, "warmup_seconds": 1.0, "probes": 5, "probe_members": 2,
                  "poll_ms": 5.0},
        "full": {"offers": 500, "members": 100_000, "rates": [250.0, 1000.0],
                 "healthz_share": 0.25, "seconds": 20.0, "warmup_seconds": 5.0, "probes": 200,
                 "probe_members": 20, "poll_ms": 5.0, "api_workers": API_WORKERS},
    }),
    Step("inbox", "#15 inbox publish → visible vs broker produce → consume", _served("inbox"), {
        "quick": {"probes": 5, "poll_ms": 5.0},
        "full": {"probes": 200, "poll_ms": 5.0},
    }),
    Step("codes", "#13 promo code reservation at 200/s vs healthz", _served("codes"), {
        "quick": {"rate": 20.0, "seconds": 2.0, "warmup_seconds": 1.0},
        "full": {"rate": 200.0, "seconds": 30.0, "warmup_seconds": 5.0,
                 "api_workers": API_WORKERS},
    }),
    Step("redeem", "#12 redemption round trip at 50/s vs healthz", _served("redeem"), {
        "quick": {"members": 10, "rate": 10.0, "seconds": 2.0, "warmup_seconds": 1.0},
        "full": {"members": 200, "rate": 50.0, "seconds": 60.0, "warmup_seconds": 20.0},
    }),
)  # fmt: skip
NAMES = tuple(step.name for step in STEPS)


def run_suite(
    settings: Settings, *, mode: str, only: Sequence[str] = NAMES, log_dir: Path,
    echo: Echo = print,
) -> SuiteResult:  # fmt: skip
    """Run the steps named in `only`, in the suite's order, at `mode`'s sizes."""
    from projections.migrate import temporary_database

    unknown = set(only) - set(NAMES)
    if unknown:
        raise ValueError(f"no such benchmark: {sorted(unknown)}; known: {', '.join(NAMES)}")
    result = SuiteResult(mode, time.time())
    for step in STEPS:
        if step.name not in only:
            continue
        echo(f"[bold]{step.name}[/]: {step.what}")
        started, clock = time.time(), time.perf_counter()
        outcome = StepResult(step.name, step.what, started, 0.0)
        try:
            with temporary_database(settings.dsn, "loyalty_bench") as dsn:
                outcome.report = step.run(
                    settings, dsn, step.sizes[mode], log_dir / step.name, echo
                )
        except Exception as error:  # noqa: BLE001 - reported; the next step runs
            # A report made before the error (dropping its database failed) is kept.
            when = "after its report: " if outcome.report is not None else ""
            outcome.error = f"{when}{type(error).__name__}: {error}"
            echo(f"[red]{step.name} failed[/]: {outcome.error}")
            (log_dir / f"{step.name}.error.txt").parent.mkdir(parents=True, exist_ok=True)
            (log_dir / f"{step.name}.error.txt").write_text(traceback.format_exc())
        outcome.seconds = time.perf_counter() - clock
        result.steps.append(outcome)
        echo(f"{step.name}: {outcome.seconds:.0f} s")
    return result


def print_suite(result: SuiteResult, console: Console) -> None:
    """One table of every step's measurements, then the targets each figure meets."""
    table = Table(title=f"loyalty bench ({result.mode})")
    for column in ("bench", "measurement", "count", "rate/s"):
        table.add_column(column, justify="right" if column in ("count", "rate/s") else "left")
    table.add_column("note", max_width=60, overflow="ellipsis", no_wrap=True)
    for step in result.steps:
        if step.report is None:
            table.add_row(step.name, f"[red]failed[/] after {step.seconds:.0f} s", "", "",
                          step.error or "")  # fmt: skip
            continue
        if step.error:
            table.add_row(step.name, "[red]failed[/] after its report", "", "", step.error)
        for n, m in enumerate(step.report.measurements):
            table.add_row(step.name if n == 0 else "", m.name, f"{m.count:,} {m.unit}",
                          f"{m.rate:,.0f}", m.note)  # fmt: skip
        table.add_section()
    wide(console).print(table)
    print_verdicts(result.verdicts, console)


def write_suite(result: SuiteResult, directory: Path) -> tuple[Path, Path]:
    """The JSON report and the plot, side by side in `directory`."""
    from loyalty.bench.plot import plot_suite

    directory.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(result.started_at))
    report = directory / f"bench-{result.mode}-{stamp}.json"
    report.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    return report, plot_suite(result, directory / f"bench-{result.mode}-{stamp}.png")
