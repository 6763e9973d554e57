"""`loyalty worker`: the stream processors (`processors.app`, on `processors.runtime`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click


@click.command()
@click.option("--loglevel", default=None, help="Overrides the log level (DEBUG, INFO, ...).")
def worker(loglevel: str | None) -> None:
    """Run the processors: member inputs → ledger, offer and reward rules → ledger, offers,
    rewards, outcome and step events; offer-use and reward-stock decisions; the clock and
    config fan-outs. Serves /metrics and /healthz on LOYALTY_WORKER_HTTP_PORT (9400); stops on
    SIGTERM or Ctrl-C."""
    from processors.app import main

    if loglevel:
        logging.getLogger().setLevel(loglevel.upper())
    asyncio.run(main())


@click.command()
@click.option("--prefix", default=None, help="The deployment's topic prefix (default: settings).")
@click.option("--limit", default=50, show_default=True, help="Unaccounted records to list.")
def audit(prefix: str | None, limit: int) -> None:
    """Reconcile every input record with what the engine did with it (an output citing it, a
    no-op by design, or a dead letter); list the unaccounted ones and exit 1 if there are any."""
    from loyalty.audit import audit as run_audit
    from loyalty.audit import render
    from processors.base.settings import get_settings

    settings = get_settings()
    if prefix is not None:
        settings = settings.model_copy(update={"topic_prefix": prefix})
    report = asyncio.run(run_audit(settings))
    click.echo(render(report, limit))
    raise SystemExit(0 if report.ok else 1)


@click.command()
@click.option("--runs", default=10, show_default=True)
@click.option("--members", default=3000, show_default=True)
@click.option("--cap", default=1000, show_default=True, help="The offer's total-uses cap.")
@click.option("--seed", default=1, show_default=True, help="Kill moments and pauses.")
@click.option("--deadline", default=120.0, show_default=True, help="Seconds before a stall.")
@click.option("--pause-share", default=0.3, show_default=True,
              help="Share of runs that restart after a pause (1-12 s), not at once.")  # fmt: skip
@click.option("--logs", "log_dir", type=click.Path(path_type=Path), default=Path(".stack/chaos"))
@click.option("--keep-topics", is_flag=True, help="Keep clean runs' topics (failed runs' are).")
def chaos(runs: int, members: int, cap: int, seed: int, deadline: float, pause_share: float,
          log_dir: Path, keep_topics: bool) -> None:  # fmt: skip
    """Kill-and-restart fault runs on the local stack: per run, finished or stalled, the
    audit's unaccounted records, grants against the cap, id conflicts, balances against the
    rules. Exit 1 if any run was not clean."""
    from loyalty import stack
    from loyalty.chaos import run_chaos
    from processors.base.settings import get_settings

    settings = get_settings()
    stack.up(settings)
    results = asyncio.run(run_chaos(settings, log_dir, runs=runs, members=members, cap=cap,
                                    seed=seed, deadline=deadline, pause_share=pause_share,
                                    echo=click.echo, keep_topics=keep_topics))  # fmt: skip
    raise SystemExit(0 if all(r.ok for r in results) else 1)


@click.group("dead-letters")
def dead_letters() -> None:
    """The records the front door and the rules refused (loyalty.deadletter.v1), and their
    replay to their original topic once what refused them is fixed."""


_FILTERS = (
    click.option("--prefix", default=None, help="The deployment's topic prefix."),
    click.option("--reason", default=None, help="Only this reason (REFUSED, INVALID, ...)."),
    click.option("--refusal", default=None, help="Only REFUSED ones with this rule's reason."),
    click.option("--type", "event_type", default=None, help="Only this event type."),
    click.option("--original-topic", default=None, help="Only those read from this topic."),
)


def _with_filters(command: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(_FILTERS):
        command = option(command)
    return command


def _letters(
    prefix: str | None,
    reason: str | None,
    refusal: str | None,
    event_type: str | None,
    original_topic: str | None,
) -> tuple[Any, list[Any]]:
    from loyalty.dead_letters import chosen, read_letters
    from processors.base.settings import get_settings
    from processors.contract.deadletter import DeadLetterReason

    settings = get_settings()
    if prefix is not None:
        settings = settings.model_copy(update={"topic_prefix": prefix})
    try:
        why = DeadLetterReason(reason.upper()) if reason is not None else None
    except ValueError:
        known = ", ".join(r.value for r in DeadLetterReason)
        raise click.BadParameter(
            f"no reason {reason!r}; one of {known}", param_hint="--reason"
        ) from None
    letters = asyncio.run(read_letters(settings))
    return settings, chosen(letters, reason=why, refusal=refusal, event_type=event_type,
                            original_topic=original_topic)  # fmt: skip


@dead_letters.command("list")
@_with_filters
@click.option("--limit", default=20, show_default=True, help="The last letters to show.")
def list_dead_letters(limit: int, **filters: str | None) -> None:
    """Counts by reason and event type, and the last letters with where they came from."""
    from loyalty.dead_letters import summary

    _, letters = _letters(**filters)
    click.echo(summary(letters, limit))


@dead_letters.command("replay")
@_with_filters
@click.option("--dry-run", is_flag=True, help="Say what would be replayed; produce nothing.")
def replay_dead_letters(dry_run: bool, **filters: str | None) -> None:
    """Produce the chosen letters' original records again, unchanged, to their original topic
    (one id means one event: what was applied meanwhile changes nothing). A reason, refusal,
    type or topic must be given: replaying every letter at once is rarely what is meant."""
    from loyalty.dead_letters import replay, summary

    if not any(filters[k] for k in ("reason", "refusal", "event_type", "original_topic")):
        raise click.UsageError(
            "choose what to replay: --reason, --refusal, --type or --original-topic"
        )
    settings, letters = _letters(**filters)
    click.echo(summary(letters, limit=0))
    if dry_run:
        click.echo("dry run: nothing produced")
        return
    produced = asyncio.run(replay(settings, letters))
    click.echo(f"replayed {produced} record(s) to their original topics")
