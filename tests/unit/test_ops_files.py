"""The operations files in ops/ name what the worker really exports: a dashboard panel over a
metric that does not exist would stay empty without a word."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

import processors.app  # noqa: F401 - registers every metric the worker serves

OPS = Path("ops")


def exported() -> set[str]:
    names: set[str] = set()
    for collector in list(REGISTRY._collector_to_names):
        for metric in collector.collect():
            suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
            names |= {metric.name + s for s in suffixes.get(metric.type, ("",))}
    return names


def test_every_metric_the_dashboard_queries_is_exported_by_the_worker():
    dashboard = json.loads((OPS / "grafana/dashboards/worker.json").read_text())
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\bloyalty_[a-z_]+", target["expr"])
    }
    assert queried
    assert queried <= exported(), queried - exported()


def test_prometheus_scrapes_the_worker_on_its_metrics_port():
    config = yaml.safe_load((OPS / "prometheus.yml").read_text())
    targets = {t for job in config["scrape_configs"] for c in job["static_configs"]
               for t in c["targets"]}  # fmt: skip
    assert "worker:9400" in targets
