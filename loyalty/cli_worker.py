"""`loyalty worker`: the stream processors (the Faust app in `processors.app`)."""

from __future__ import annotations

import click


@click.command()
@click.option("--loglevel", default="info", show_default=True)
def worker(loglevel: str) -> None:
    """Run the processors: member inputs → ledger rules → ledger, outcome and step events."""
    from faust.worker import Worker

    from processors.app import app

    Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()
