"""`loyalty bench --quick` on the real stack: each bench's report, its verdicts and the plot's
data come back (counts and shapes, never times)."""

import json
from pathlib import Path

import pytest

from loyalty.bench.suite import run_suite, write_suite
from processors.base.settings import Settings

pytestmark = pytest.mark.integration


def test_the_quick_suite_reports_every_bench_it_runs_with_its_verdicts(
    stack_settings: Settings, tmp_path: Path
) -> None:
    result = run_suite(stack_settings, mode="quick", only=("raw", "projector", "inbox"),
                       log_dir=tmp_path / "logs", echo=lambda _: None)  # fmt: skip

    report_path, plot_path = write_suite(result, tmp_path)

    written = json.loads(report_path.read_text())
    assert [(s["name"], s["error"]) for s in written["steps"]] == [
        ("raw", None), ("projector", None), ("inbox", None),
    ]  # fmt: skip
    assert sorted(v["target"].split()[0] for v in written["verdicts"]) == ["#15", "#16.3"]
    assert all(v["met"] in (True, False) for v in written["verdicts"])
    projector = written["steps"][1]["report"]
    # 200 enrolments, their 200 answers (which open the members) and 3 ledger events each
    assert projector["done_over_run"]["projector events"][-1][1] == 1000
    inbox = written["steps"][2]["report"]
    assert len(inbox["latency_over_run"]["publish_to_visible"]) == 5
    assert plot_path.stat().st_size > 0
