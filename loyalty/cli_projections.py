"""`loyalty project`, `loyalty rebuild` and `loyalty dump`: the ledger projection from a shell.

Wiring only: options → `projections.runner`, `projections.rebuild`, `projections.dump`.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console

from processors.base.settings import get_settings
from processors.base.topics import (
    CONFIG,
    ENROLMENTS,
    LEDGER,
    NOTIFICATIONS,
    OFFERS,
    OUTCOMES,
    REWARDS,
    TRANSACTIONS,
)

if TYPE_CHECKING:
    from projections.runner import RunReport

console = Console(stderr=True)

_topic_options = [
    click.option("--ledger-topic", default=None,
                 help=f"Topic carrying {LEDGER.name} events [default: LOYALTY_TOPIC_PREFIX + it]."),
    click.option("--enrolments-topic", default=None,
                 help=f"Topic carrying {ENROLMENTS.name} [default: LOYALTY_TOPIC_PREFIX + it]."),
    click.option("--offers-topic", default=None,
                 help=f"Topic carrying {OFFERS.name} [default: LOYALTY_TOPIC_PREFIX + it]."),
    click.option("--transactions-topic", default=None,
                 help=f"Topic carrying {TRANSACTIONS.name} [default: LOYALTY_TOPIC_PREFIX + it]."),
    click.option("--config-topic", default=None,
                 help=f"Topic carrying {CONFIG.name} [default: LOYALTY_TOPIC_PREFIX + it]."),
    click.option("--rewards-topic", default=None,
                 help=f"Topic carrying {REWARDS.name} [default: LOYALTY_TOPIC_PREFIX + it]."),
    click.option("--outcomes-topic", default=None,
                 help=f"Topic carrying {OUTCOMES.name} [default: LOYALTY_TOPIC_PREFIX + it]."),
    click.option("--notifications-topic", default=None,
                 help=f"Topic carrying {NOTIFICATIONS.name} [default: LOYALTY_TOPIC_PREFIX + it]."),
]  # fmt: skip


F = TypeVar("F", bound=Callable[..., Any])


def _with_topics(command: F) -> F:
    for option in reversed(_topic_options):
        command = option(command)
    return command


@click.command()
@_with_topics
@click.option(
    "--group-id",
    default=None,
    help="Consumer group [default: LOYALTY_TOPIC_PREFIX + loyalty-projector, so "
    "deployments under different prefixes on one broker never share partitions].",
)
@click.option("--schema", default=None, help="Write the tables of this schema (default: live).")
@click.option("--max-records", default=5000, show_default=True, help="Records per transaction.")
@click.option("--http-port", type=int, default=None,
              help="Serve /metrics and /healthz here (default LOYALTY_PROJECTOR_HTTP_PORT, 9401; "
              "0: off).")  # fmt: skip
def project(
    ledger_topic: str | None,
    enrolments_topic: str | None,
    offers_topic: str | None,
    transactions_topic: str | None,
    config_topic: str | None,
    rewards_topic: str | None,
    outcomes_topic: str | None,
    notifications_topic: str | None,
    group_id: str | None,
    schema: str | None,
    max_records: int,
    http_port: int | None,
) -> None:
    """Keep the ledger, member, offer, reward and outcome tables current until Ctrl-C or
    SIGTERM.

    The batch in flight is finished (or, if Postgres is failing, left unacknowledged) before
    the process leaves its consumer group.
    """
    from processors.base.health import serve
    from processors.base.tuning import tune_gc
    from projections.runner import (
        GROUP_ID,
        Projector,
        ProjectorConfig,
        contract_topic_map,
    )

    settings = get_settings()
    tune_gc()
    config = ProjectorConfig(
        settings.dsn,
        settings.bootstrap_servers,
        contract_topic_map(
            ledger_topic or settings.topic(LEDGER.name),
            enrolments_topic or settings.topic(ENROLMENTS.name),
            offers_topic or settings.topic(OFFERS.name),
            transactions=transactions_topic or settings.topic(TRANSACTIONS.name),
            config=config_topic or settings.topic(CONFIG.name),
            rewards=rewards_topic or settings.topic(REWARDS.name),
            outcomes=outcomes_topic or settings.topic(OUTCOMES.name),
            notifications=notifications_topic or settings.topic(NOTIFICATIONS.name),
        ),
        group_id=group_id or settings.topic(GROUP_ID),
        schema=schema,
        max_records=max_records,
        gather_ms=settings.projector_gather_ms,
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        projector = Projector(config)
        port = settings.projector_http_port if http_port is None else http_port
        site = await serve(settings.ops_http_host, port,
                           lambda: projector.health(settings.stall_seconds))  # fmt: skip
        try:
            report = await projector.run(stop=stop)
        finally:
            if site is not None:
                await site.cleanup()
        console.print(
            f"projector stopped: {report.records} record(s), {report.events_applied} event(s) "
            f"applied in {report.transactions} transaction(s), {report.refused} refused"
        )

    asyncio.run(main())


@click.command()
@_with_topics
@click.option("--verify", is_flag=True,
              help="Compare the canonical dumps of the rebuilt and the live tables; when they "
                   "differ while covering the same offsets, list the tables and rows that "
                   "differ, swap nothing and exit 1.")  # fmt: skip
@click.option("--swap-anyway", is_flag=True,
              help="With --verify: swap the rebuilt tables in even if they differ.")  # fmt: skip
@click.option("--no-swap", is_flag=True, help="Build (and verify) only; leave the live tables.")
@click.option("--keep-old", is_flag=True, help="Keep the replaced tables in schema retired_<n>.")
@click.option("--live-schema", default=None, help="Schema of the live tables (default: public).")
def rebuild(
    ledger_topic: str | None,
    enrolments_topic: str | None,
    offers_topic: str | None,
    transactions_topic: str | None,
    config_topic: str | None,
    rewards_topic: str | None,
    outcomes_topic: str | None,
    notifications_topic: str | None,
    verify: bool,
    swap_anyway: bool,
    no_swap: bool,
    keep_old: bool,
    live_schema: str | None,
) -> None:
    """Replay the ledger projection from offset 0 into fresh tables, then swap them in."""
    from processors.base.tuning import tune_gc
    from projections.rebuild import rebuild as run_rebuild
    from projections.runner import contract_topic_map

    settings = get_settings()
    tune_gc()
    with replay_progress(console, "replaying the ledger projection") as on_committed:
        report = asyncio.run(
            run_rebuild(
                settings.dsn,
                settings.bootstrap_servers,
                topics=contract_topic_map(
                    ledger_topic or settings.topic(LEDGER.name),
                    enrolments_topic or settings.topic(ENROLMENTS.name),
                    offers_topic or settings.topic(OFFERS.name),
                    transactions=transactions_topic or settings.topic(TRANSACTIONS.name),
                    config=config_topic or settings.topic(CONFIG.name),
                    rewards=rewards_topic or settings.topic(REWARDS.name),
                    outcomes=outcomes_topic or settings.topic(OUTCOMES.name),
                    notifications=notifications_topic or settings.topic(NOTIFICATIONS.name),
                ),
                live_schema=live_schema,
                verify=verify,
                swap=not no_swap,
                swap_anyway=swap_anyway,
                keep_old=keep_old,
                on_committed=on_committed,
            )
        )
    console.print(
        f"replayed {report.records} record(s) ({report.events_applied} event(s), "
        f"{report.refused} refused) into {report.schema}"
    )
    if verify:
        click.echo(f"rebuilt sha256 {report.rebuilt_sha256}")
        click.echo(f"live    sha256 {report.live_sha256}")
        if not report.comparable:
            click.echo("live and rebuilt cover different offsets: hashes are not comparable")
        else:
            click.echo("identical" if report.identical else "DIFFERENT")
        for difference in report.differences:
            click.echo(f"  {difference.table}: live {difference.live_rows} row(s), rebuilt "
                       f"{difference.rebuilt_rows}")  # fmt: skip
            for row in difference.only_live:
                click.echo(f"    only live:    {row}")
            for row in difference.only_rebuilt:
                click.echo(f"    only rebuilt: {row}")
        if report.swap_refused:
            click.echo("not swapped: the live tables stay (--swap-anyway to swap regardless)")
    if report.swapped:
        kept = f"; old tables kept in {report.retired_schema}" if report.retired_schema else ""
        console.print(f"rebuilt tables are live in {report.live_schema}{kept}")
    sys.exit(1 if report.identical is False else 0)


@click.command("dump")
@click.option("--schema", default=None, help="Dump this schema's tables (default: live).")
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None,
              help="Write the dump here; the sha256 is printed either way.")  # fmt: skip
def dump_command(schema: str | None, output: Path | None) -> None:
    """Print the sha256 of the canonical dump of the ledger projection's tables."""
    from projections import db, dump

    with db.connect(get_settings().dsn, schema=schema) as conn:
        if output is None:
            digest = dump.sha256(conn)
        else:
            with output.open("wb") as out:
                digest = dump.write(conn, out)
    click.echo(digest)


@contextmanager
def replay_progress(
    console: Console, what: str
) -> Iterator[Callable[[RunReport, int | None], None]]:
    """A progress bar for a replay: records committed of those up to the end offsets, the
    rate and the time left (rich's estimate from the recent rate)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TaskProgressColumn(), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
               TextColumn("ETA"), TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(what, total=None, rate="")

        def on_committed(report: RunReport, ends: int | None) -> None:
            speed = bar.tasks[0].speed
            bar.update(task, completed=report.records, total=ends,
                       rate=f"{speed:,.0f} records/s" if speed else "")  # fmt: skip

        yield on_committed


@click.command("bench-projector")
@click.option("--members", default=10_000, show_default=True)
@click.option("--events-per-member", default=10, show_default=True)
@click.option("--max-records", default=5000, show_default=True, help="Records per transaction.")
@click.option("--output", type=click.Path(path_type=Path), default=None,
              help="Where to write the JSON report.")  # fmt: skip
def bench_projector(
    members: int, events_per_member: int, max_records: int, output: Path | None
) -> None:
    """Benchmark the ledger projector against a bare COPY of the same rows (same run)."""
    from loyalty import stack as local_stack
    from loyalty.bench.projector import run_projector_bench
    from loyalty.bench.report import write_report
    from processors.base.tuning import tune_gc

    settings = get_settings()
    local_stack.up(settings)
    tune_gc()  # as `loyalty project` runs
    report = asyncio.run(
        run_projector_bench(
            settings, members=members, events_per_member=events_per_member,
            max_records=max_records,
        )
    )  # fmt: skip
    path = write_report(report, output)
    report.print_table(console)
    console.print(f"JSON report: {path}")
