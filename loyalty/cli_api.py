"""`loyalty api` (serve the HTTP API), `loyalty token` (mint a bearer token to call it) and
`loyalty feed-events-prune` (the API's own table of app events, kept for its retention)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from rich.console import Console

from processors.base.settings import DEV_API_SECRET, get_settings

console = Console(stderr=True)

WORKER_STARTUP_S = 60
"""How long a worker may take to answer its first health ping (imports on a busy host)."""


@click.command("api")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="API processes sharing the port (uvicorn workers): about one per core the API may "
    "use. One Python process answers a few hundred requests a second (docs/performance.md).",
)
def api(host: str, port: int, workers: int) -> None:
    """Serve the HTTP API (uvicorn) over the configured Postgres and config topic."""
    import uvicorn

    from projections.api.edge import server_config

    settings = get_settings()
    refusal = settings.dev_secret_refusal(host)
    if refusal is not None:
        console.print(f"[red]{refusal}[/red]")
        raise SystemExit(2)
    secret = settings.api_secret.get_secret_value()
    if secret == DEV_API_SECRET:
        console.print(
            "[yellow]LOYALTY_API_SECRET is the development default: anyone can mint tokens "
            "for this server. Set your own outside development.[/yellow]"
        )
    if settings.api_metrics_port:
        _serve_metrics(settings.api_metrics_port, settings.ops_http_host, workers=workers)
    # log_config=None: keep the process's structlog set-up instead of uvicorn's own. The
    # server config bounds the request head, so an over-long URL gets a 414, not a reset.
    if workers == 1:
        config = server_config(served_app(), host=host, port=port, log_config=None,
                               access_log=settings.api_access_log)  # fmt: skip
        uvicorn.Server(config).run()
        return
    from uvicorn.supervisors import Multiprocess

    # Each worker is a process of its own (spawned: nothing is inherited but the environment)
    # that builds its app with `served_app`: its own pools, config feed, command sink and
    # decision listener. The socket is bound here and shared; the kernel spreads connections.
    # A worker answers the supervisor's health pings once it has imported what it needs: on a
    # busy host that takes longer than uvicorn's 5 s default, and it would be killed for it.
    config = server_config(f"{__name__}:served_app", host=host, port=port, log_config=None,
                           factory=True, workers=workers, access_log=settings.api_access_log,
                           timeout_worker_healthcheck=WORKER_STARTUP_S)  # fmt: skip
    Multiprocess(config, sockets=[config.bind_socket()]).run()


def served_app() -> Any:
    """The app one API process serves: configured by the environment (`from_settings`), logs
    as the settings say, the collector tuned."""
    from processors.base import logs
    from processors.base.tuning import tune_gc
    from projections.api.app import from_settings

    settings = get_settings()
    logs.configure(level=settings.log_level, fmt=settings.log_format)
    app = from_settings()  # (the same settings; carts follow the config topic)
    tune_gc()  # collector pauses land in the tail latencies of cart evaluation
    return app


def _serve_metrics(port: int, host: str, *, workers: int) -> None:
    """The metrics on the internal port, like the worker's and the projector's (ADR 18), never
    the public one. With several workers, each writes its counters to files in a directory of
    this server's (prometheus_client's multiprocess mode, set before any worker starts) and
    this process serves their sum."""
    from prometheus_client import REGISTRY, CollectorRegistry, start_http_server

    registry = REGISTRY
    if workers > 1:
        from prometheus_client import multiprocess

        files = tempfile.mkdtemp(prefix="loyalty-api-metrics-")
        atexit.register(shutil.rmtree, files, ignore_errors=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = files
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as error:  # another process has it: serve the API all the same
        console.print(f"[yellow]metrics not served on {port}: {error}[/yellow]")


@click.command("token")
@click.argument("role", type=click.Choice(["member", "staff", "till"]))
@click.argument("subject")
@click.option(
    "--ttl-minutes", default=60, show_default=True, type=click.IntRange(1), help="Validity."
)
@click.option(
    "--staff-role",
    type=click.Choice(["marketer", "agent", "admin"]),
    default=None,
    help="Staff only: the role in the staff console (/console), which signs in with the token.",
)
def token(role: str, subject: str, ttl_minutes: int, staff_role: str | None) -> None:
    """Print a bearer token: `token member M1` reads member M1; `token staff alice` reads all;
    `token staff alice --staff-role marketer` also signs alice in to the console; `token till
    store-0412-t1` prices carts, reserves and releases, locks and redeems issued offers, and
    reads no member's data."""
    from projections.api.auth import Role, StaffRole, issue_token

    if staff_role is not None and role != "staff":
        raise click.BadParameter("only a staff token has a staff role", param_hint="--staff-role")
    secret = get_settings().api_secret.get_secret_value()
    click.echo(
        issue_token(
            secret,
            subject,
            Role(role),
            now=datetime.now(UTC),
            ttl=timedelta(minutes=ttl_minutes),
            staff_role=StaffRole(staff_role) if staff_role else None,
        )
    )


@click.command("feed-events-prune")
@click.option(
    "--keep-days",
    default=None,
    type=click.IntRange(1),
    help="Days kept after an event was received [default: "
    "LOYALTY_API_FEED_EVENTS_RETENTION_DAYS, 395].",
)
@click.option("--batch", default=10_000, show_default=True, type=click.IntRange(1),
              help="Rows deleted per transaction.")  # fmt: skip
def feed_events_prune(keep_days: int | None, batch: int) -> None:
    """Delete the offers page's app events older than the retention period (run it daily:
    docs/adr/0025-offer-feeds.md). The analysts' views then cover that period only."""
    import psycopg

    from projections.api.feed_store import prune_events

    settings = get_settings()
    days = keep_days if keep_days is not None else settings.api_feed_events_retention_days
    before = datetime.now(UTC) - timedelta(days=days)
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        deleted = prune_events(conn, before, batch=batch)
    click.echo(f"{deleted} app events received before {before.isoformat()} deleted")
