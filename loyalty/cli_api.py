"""`loyalty api` (serve the HTTP API) and `loyalty token` (mint a bearer token to call it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click
from rich.console import Console

from processors.base.settings import DEV_API_SECRET, get_settings

console = Console(stderr=True)


@click.command("api")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
def api(host: str, port: int) -> None:
    """Serve the HTTP API (uvicorn) over the configured Postgres and config topic."""
    import uvicorn

    from projections.api.app import from_settings
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
    from processors.base.tuning import tune_gc

    if settings.api_metrics_port:
        from prometheus_client import start_http_server

        # Internal, like the worker's and the projector's (ADR 18): never the public port.
        try:
            start_http_server(settings.api_metrics_port, addr=settings.ops_http_host)
        except OSError as error:  # another process has it: serve the API all the same
            console.print(f"[yellow]metrics not served on {settings.api_metrics_port}: "
                          f"{error}[/yellow]")  # fmt: skip
    app = from_settings()  # (the same settings; carts follow the config topic)
    tune_gc()  # collector pauses land in the tail latencies of cart evaluation
    # log_config=None: keep the process's structlog set-up instead of uvicorn's own. The
    # server config bounds the request head, so an over-long URL gets a 414, not a reset.
    uvicorn.Server(server_config(app, host=host, port=port, log_config=None)).run()


@click.command("token")
@click.argument("role", type=click.Choice(["member", "staff"]))
@click.argument("subject")
@click.option(
    "--ttl-minutes", default=60, show_default=True, type=click.IntRange(1), help="Validity."
)
def token(role: str, subject: str, ttl_minutes: int) -> None:
    """Print a bearer token: `token member M1` reads member M1; `token staff alice` reads all."""
    from projections.api.auth import Role, issue_token

    secret = get_settings().api_secret.get_secret_value()
    click.echo(
        issue_token(
            secret,
            subject,
            Role(role),
            now=datetime.now(UTC),
            ttl=timedelta(minutes=ttl_minutes),
        )
    )
