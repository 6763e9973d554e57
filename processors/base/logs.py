"""Structured logging: structlog rendering JSON (for machines) or console lines (for people).

Standard-library loggers (aiokafka, aiohttp, psycopg) are routed through the same renderer so
one process writes one format. aiokafka reports at ERROR or WARNING the broker answers it
retries by itself (the group coordinator still loading, a partition's leader still being
elected after a topic is created): those are logged at INFO as what they are, a retry, so that
an error on a healthy start means something.
"""

from __future__ import annotations

import logging
import sys

import structlog


def configure(level: str = "INFO", fmt: str = "console") -> None:
    """Configure structlog and the stdlib root logger once per process."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: structlog.types.Processor
    if fmt == "json":
        shared.append(structlog.processors.format_exc_info)
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())

    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
        )
    )
    handler.addFilter(retries_are_info)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiokafka reports every coordinator hiccup at ERROR/WARNING; keep it at WARNING.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))


def retries_are_info(record: logging.LogRecord) -> bool:
    """A handler filter: an aiokafka record about an error aiokafka retries (a Kafka error
    whose `retriable` is true: `CoordinatorNotAvailableError`, `NotLeaderForPartitionError`,
    ...) becomes an INFO record saying so; it is dropped if the root level hides INFO."""
    if not record.name.startswith("aiokafka") or record.levelno < logging.WARNING:
        return True
    args = record.args if isinstance(record.args, tuple) else ()
    errors = [arg for arg in args if getattr(arg, "retriable", False) is True]
    if not errors:
        return True
    record.msg = f"kafka.retrying: {record.getMessage()} (a transient broker answer; retried)"
    record.args = ()
    record.levelno, record.levelname = logging.INFO, "INFO"
    return logging.getLogger().isEnabledFor(logging.INFO)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A named structured logger."""
    return structlog.stdlib.get_logger(name)
