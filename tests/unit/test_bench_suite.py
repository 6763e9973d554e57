"""`loyalty bench` gathers every bench's report into one JSON report and one plot, and judges
each target from the run's own figures (counts and shapes are asserted, never times)."""

import json
import time
from pathlib import Path

from rich.console import Console

from loyalty.bench.report import BenchReport, Latencies, Measurement, verdict
from loyalty.bench.suite import NAMES, STEPS, StepResult, SuiteResult, print_suite, write_suite


def _latency_report(now: float) -> BenchReport:
    report = BenchReport("latency")
    times = Latencies("cart", [0.002, 0.004, 0.003], [now + 0.1, now + 0.2, now + 1.3])
    report.add_latencies(times, "requests", "POST /v1/carts/evaluate")
    report.judge(verdict("#16.4 cart p99", times.percentile(99), at_most=5.0, unit="ms"))
    return report


def _throughput_report(now: float) -> BenchReport:
    report = BenchReport("projector")
    report.add(Measurement("baseline: COPY", "events", 1000, 0.1))
    report.add(Measurement("projector", "events", 1000, 0.25))
    report.done_over_run["projector events"] = [(now, 0), (now + 0.1, 400), (now + 0.25, 1000)]
    report.judge(verdict("#16.3 projector / COPY", 0.4, at_least=0.6, unit="×"))
    return report


def test_a_target_is_met_only_on_the_right_side_of_its_limit() -> None:
    assert verdict("t", 5.0, at_most=5.0).met is True
    assert verdict("t", 5.1, at_most=5.0).met is False
    assert verdict("t", 0.6, at_least=0.6).met is True
    assert verdict("t", 0.59, at_least=0.6).met is False
    assert verdict("t", None, at_least=0.6).met is None


def test_the_suite_writes_one_report_with_every_step_and_verdict_and_a_png(tmp_path: Path) -> None:
    now = time.time()
    result = SuiteResult("quick", now, [
        StepResult("cart", "the till", now, 2.0, _latency_report(now)),
        StepResult("projector", "the projector", now + 2, 1.0, _throughput_report(now + 2)),
        StepResult("feed", "the feeds", now + 3, 0.5, None, "RuntimeError: the API exited"),
    ])  # fmt: skip

    report_path, plot_path = write_suite(result, tmp_path)

    written = json.loads(report_path.read_text())
    assert [s["name"] for s in written["steps"]] == ["cart", "projector", "feed"]
    assert written["steps"][2]["error"] == "RuntimeError: the API exited"
    assert [(v["target"], v["met"]) for v in written["verdicts"]] == [
        ("#16.4 cart p99", True),
        ("#16.3 projector / COPY", False),
    ]
    cart = written["steps"][0]["report"]
    assert len(cart["latency_over_run"]["cart"]) == 3
    assert cart["context"]["load_average"]
    assert plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_table_names_each_target_and_whether_it_is_met() -> None:
    now = time.time()
    result = SuiteResult("quick", now, [
        StepResult("projector", "the projector", now, 1.0, _throughput_report(now)),
    ])  # fmt: skip
    console = Console(record=True, width=200)

    print_suite(result, console)

    text = console.export_text()
    assert "#16.3 projector / COPY" in text
    assert "not met" in text


def test_every_step_has_a_quick_and_a_full_size() -> None:
    assert len(set(NAMES)) == len(STEPS)
    assert all(set(step.sizes) == {"quick", "full"} for step in STEPS)
