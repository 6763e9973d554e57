"""The local stack: a real Kafka broker and a real PostgreSQL, started without Docker.

`up` is idempotent: it starts what is not running, then proves both services work (a real
produce/consume, a real `SELECT 1`), creates the contract's topics and applies migrations.
`down` stops only what `up` started.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from dataclasses import dataclass, field

from loyalty.stack import kafka, postgres
from loyalty.stack.errors import StackError
from processors.base.settings import Settings
from projections.migrate import apply_migrations

__all__ = ["StackError", "StackReport", "down", "status", "up"]


@dataclass
class StackReport:
    """What `up` found and did, and where things are."""

    bootstrap_servers: str
    database_url: str
    kafka_started: bool = False
    postgres_started: bool = False
    topics_created: list[str] = field(default_factory=list)
    migrations_applied: list[str] = field(default_factory=list)
    seconds: float = 0.0
    kafka_log: str = ""
    postgres_log: str = ""


def up(settings: Settings) -> StackReport:
    """Start whatever is not running, wait until healthy, create topics, migrate."""
    started = time.monotonic()
    report = StackReport(settings.bootstrap_servers, settings.dsn)
    if settings.kafka_bootstrap is None:
        report.kafka_started = kafka.start(settings)
        report.kafka_log = str(kafka.KafkaPaths.of(settings).logs / "server.log")
    if settings.database_url is None:
        report.postgres_started = postgres.start(settings)
        report.postgres_log = str(postgres.log_file(settings))
    asyncio.run(kafka.check_round_trip(settings.bootstrap_servers))
    postgres.check_select_one(settings.dsn)
    report.topics_created = asyncio.run(
        kafka.ensure_topics(settings.bootstrap_servers, kafka.contract_topics(settings))
    )
    report.migrations_applied = apply_migrations(settings.dsn)
    report.seconds = time.monotonic() - started
    return report


def down(settings: Settings, *, purge: bool = False) -> dict[str, bool]:
    """Stop the services this stack started; with `purge`, delete their data too."""
    stopped = {"kafka": kafka.stop(settings), "postgres": postgres.stop(settings)}
    if purge:
        shutil.rmtree(kafka.KafkaPaths.of(settings).home, ignore_errors=True)
        postgres.purge(settings)
    return stopped


def status(settings: Settings) -> dict[str, dict[str, object]]:
    """Whether each local service runs, and where."""
    return {
        "kafka": {
            "running": kafka.is_running(settings),
            "address": settings.bootstrap_servers,
            "log": str(kafka.KafkaPaths.of(settings).logs / "server.log"),
        },
        "postgres": {
            "running": postgres.is_running(settings),
            "address": settings.dsn,
            "log": str(postgres.log_file(settings)),
        },
    }
