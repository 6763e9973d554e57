"""The `loyalty` command: one entry point for the stack, the engine's processes and the tools."""

from __future__ import annotations

import json
import sys
from collections import deque
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from processors.base import logs
from processors.base.settings import get_settings

console = Console(stderr=True)


@click.group()
@click.option("--log-format", type=click.Choice(["console", "json"]), default=None)
@click.option("--log-level", default=None, help="DEBUG, INFO, WARNING, ...")
def main(log_format: str | None, log_level: str | None) -> None:
    """Loyalty & promotions engine."""
    from loyalty.services import exit_with_parent

    settings = get_settings()
    logs.configure(level=log_level or settings.log_level, fmt=log_format or settings.log_format)
    exit_with_parent()  # started by `Services` (the demo, a test): stop when it is gone


@main.group()
def stack() -> None:
    """The local Kafka + Postgres stack (no Docker needed)."""


@stack.command("up")
def stack_up() -> None:
    """Start Kafka and Postgres (if not running), create topics, migrate. Safe to repeat."""
    from loyalty import stack as local_stack

    try:
        report = local_stack.up(get_settings())
    except local_stack.StackError as error:
        console.print(f"[red]stack up failed:[/red] {error}")
        sys.exit(1)
    table = Table(title=f"local stack ready in {report.seconds:.1f}s", show_header=False)
    table.add_row(
        "Kafka",
        report.bootstrap_servers,
        "started now" if report.kafka_started else "already running",
    )
    table.add_row(
        "Postgres",
        report.database_url,
        "started now" if report.postgres_started else "already running",
    )
    table.add_row("topics created", f"{len(report.topics_created)} of the contract's", "")
    table.add_row(
        "migrations applied", ", ".join(report.migrations_applied) or "none (up to date)", ""
    )
    table.add_row("Kafka log", report.kafka_log or "(external broker)", "")
    table.add_row("Postgres log", report.postgres_log or "(external database)", "")
    console.print(table)


@stack.command("down")
@click.option("--purge", is_flag=True, help="Also delete the broker's and the database's data.")
def stack_down(purge: bool) -> None:
    """Stop what `stack up` started (and nothing else)."""
    from loyalty import stack as local_stack

    stopped = local_stack.down(get_settings(), purge=purge)
    for name, was_running in stopped.items():
        console.print(f"{name}: {'stopped' if was_running else 'was not running'}")


@stack.command("status")
def stack_status() -> None:
    """Whether each local service runs, and where. Exit 1 if one is down."""
    from loyalty import stack as local_stack

    state = local_stack.status(get_settings())
    click.echo(json.dumps(state, indent=2))
    sys.exit(0 if all(service["running"] for service in state.values()) else 1)


@stack.command("logs")
@click.argument("service", type=click.Choice(["kafka", "postgres"]))
@click.option("-n", "--lines", default=50, show_default=True)
def stack_logs(service: str, lines: int) -> None:
    """Print the last lines of a local service's log file."""
    from loyalty import stack as local_stack

    path = Path(str(local_stack.status(get_settings())[service]["log"]))
    if not path.exists():
        console.print(f"no log yet at {path}")
        sys.exit(1)
    with path.open(errors="replace") as handle:
        for line in deque(handle, maxlen=lines):
            click.echo(line, nl=False)


@stack.command("env")
def stack_env() -> None:
    """Print `export` lines that point other tools at the stack."""
    settings = get_settings()
    click.echo(f"export KAFKA_BOOTSTRAP={settings.bootstrap_servers}")
    click.echo(f"export DATABASE_URL={settings.dsn}")


@main.command()
def migrate() -> None:
    """Apply the Postgres migrations that have not run yet."""
    from projections.migrate import apply_migrations

    applied = apply_migrations(get_settings().dsn)
    console.print(f"applied: {', '.join(applied) or 'nothing (up to date)'}")


@main.command()
@click.option("--members", default=20, show_default=True, help="How many demo members.")
@click.option("--api-port", default=8080, show_default=True, help="Port of the HTTP API.")
@click.option("--exit", "exit_after", is_flag=True, help="Stop once the demo has run.")
@click.option("--api-url", default=None,
              help="Use an engine that already runs (worker, projector, API at this URL) "
                   "instead of starting one.")  # fmt: skip
def demo(members: int, api_port: int, exit_after: bool, api_url: str | None) -> None:
    """The main job: stack up, worker + projector + API, a demo stream, results; Ctrl-C stops
    the processes, not Kafka and Postgres (`loyalty stack down`)."""
    import asyncio

    from loyalty import stack as local_stack
    from loyalty.demo import run_demo

    settings = get_settings()
    try:
        report = local_stack.up(settings)
    except local_stack.StackError as error:
        console.print(f"[red]stack up failed:[/red] {error}")
        sys.exit(1)
    console.print(
        f"stack ready in {report.seconds:.1f}s: Kafka {report.bootstrap_servers}, "
        f"Postgres {report.database_url}"
    )
    log_dir = settings.stack_dir / "logs"
    try:
        asyncio.run(run_demo(settings, members=members, console=console, log_dir=log_dir,
                             api_port=api_port, serve=not exit_after, api_url=api_url))  # fmt: skip
    except KeyboardInterrupt:
        console.print("stopped")


@main.command("bench-raw")
@click.option("--messages", default=200_000, show_default=True, help="Records for the Kafka runs.")
@click.option("--rows", default=100_000, show_default=True, help="Rows for the Postgres COPY.")
@click.option(
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="Where to write the JSON report.",
)
def bench_raw(messages: int, rows: int, output: Path | None) -> None:
    """Benchmark the raw stack (the baselines every pipeline is compared with)."""
    import asyncio

    from loyalty import stack as local_stack
    from loyalty.bench.raw import run_raw_bench
    from loyalty.bench.report import write_report

    settings = get_settings()
    local_stack.up(settings)
    report = asyncio.run(run_raw_bench(settings, messages=messages, rows=rows))
    path = write_report(report, output)
    report.print_table(console)
    console.print(f"JSON report: {path}")


@main.command()
@click.option("--quick", is_flag=True, help="Small sizes: a smoke run of every bench (minutes).")
@click.option(
    "--only",
    default=None,
    help="Comma-separated benches to run, in the suite's order (default: all of them).",
)
@click.option(
    "--output-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the JSON report and the PNG plot go (default: bench-results/).",
)
def bench(quick: bool, only: str | None, output_dir: Path | None) -> None:
    """Every benchmark with its same-run baseline: one table, a JSON report, a PNG plot, and
    which target of issues #12-#16 each figure meets."""
    from loyalty import stack as local_stack
    from loyalty.bench.suite import NAMES, print_suite, run_suite, write_suite
    from processors.base.settings import REPO_ROOT

    settings = get_settings()
    local_stack.up(settings)
    chosen = NAMES if only is None else tuple(name.strip() for name in only.split(","))
    result = run_suite(
        settings, mode="quick" if quick else "full", only=chosen,
        log_dir=settings.stack_dir / "logs" / "bench", echo=console.print,
    )  # fmt: skip
    report, plot = write_suite(result, output_dir or REPO_ROOT / "bench-results")
    print_suite(result, console)
    console.print(f"JSON report: {report}\nplot: {plot}")
    if any(step.error for step in result.steps):
        raise SystemExit(1)


def _register_contract_commands() -> None:
    from loyalty.cli_contract import consume, contract, publish

    main.add_command(publish)
    main.add_command(consume)
    main.add_command(contract)


def _register_projection_commands() -> None:
    from loyalty.cli_projections import bench_projector, dump_command, project, rebuild

    main.add_command(project)
    main.add_command(rebuild)
    main.add_command(dump_command)
    main.add_command(bench_projector)


_register_contract_commands()
_register_projection_commands()


def _register_api_commands() -> None:
    from loyalty.cli_api import api, feed_events_prune, token

    main.add_command(api)
    main.add_command(token)
    main.add_command(feed_events_prune)


_register_api_commands()


def _register_offer_commands() -> None:
    from loyalty.cli_offers import offers

    main.add_command(offers)


_register_offer_commands()


def _register_audience_commands() -> None:
    from loyalty.cli_audiences import audiences

    main.add_command(audiences)


_register_audience_commands()


def _register_reward_commands() -> None:
    from loyalty.cli_rewards import rewards

    main.add_command(rewards)


_register_reward_commands()


def _register_code_commands() -> None:
    from loyalty.cli_codes import codes

    main.add_command(codes)


_register_code_commands()


@main.command("bench-ledger")
@click.option("--members", default=2000, show_default=True)
@click.option("--purchases", default=20000, show_default=True, help="Events, with --mix.")
@click.option("--mix", is_flag=True, help="The realistic mix: 200 offers, baskets of 1-30 lines.")
@click.option("--offers", default=200, show_default=True, help="Live offers, with --mix.")
@click.option("--output", type=click.Path(path_type=Path), default=None)
def bench_ledger(members: int, purchases: int, mix: bool, offers: int, output: Path | None) -> None:
    """End to end: purchases → worker → ledger → projector → Postgres, vs a bare aiokafka loop."""
    import asyncio

    from loyalty import stack as local_stack
    from loyalty.bench.ledger import mix_load, purchases_load, run_ledger_bench
    from loyalty.bench.report import write_report
    from projections.migrate import temporary_database

    settings = get_settings()
    local_stack.up(settings)
    load = asyncio.run(
        mix_load(members, purchases, offers) if mix else purchases_load(members, purchases)
    )
    with temporary_database(settings.dsn, "loyalty_bench") as dsn:
        log_dir = settings.stack_dir / "logs" / "bench-ledger"
        report = asyncio.run(run_ledger_bench(settings, dsn, load=load, log_dir=log_dir))
    path = write_report(report, output)
    report.print_table(console)
    console.print(f"engine / loop = {report.context['ratio_engine_to_loop']}; JSON report: {path}")


@main.command("bench-state")
@click.option("--members", default=100_000, show_default=True)
@click.option(
    "--purchases",
    default=10_000,
    show_default=True,
    help="Purchases over the held states, each of a member not in the cache.",
)
@click.option(
    "--distinct",
    default=10_000,
    show_default=True,
    help="States decided by the rules; the others are copies under their own ids.",
)
@click.option("--rounds", default=2, show_default=True, help="Alternating rounds per variant.")
@click.option("--no-broker", is_flag=True, help="Skip the recovery from a changelog topic.")
@click.option("--worker", is_flag=True, help="Also a real worker: its RSS and recovery time.")
@click.option("--day-tick", is_flag=True, help="With --worker: a day's tick over every member.")
@click.option("--output", type=click.Path(path_type=Path), default=None)
def bench_state(members: int, purchases: int, distinct: int, rounds: int, no_broker: bool,
                worker: bool, day_tick: bool, output: Path | None) -> None:  # fmt: skip
    """Member states at scale: RSS a member, a batch's cost and a partition's recovery time,
    in memory and on disk (RocksDB), beside the same states' raw JSON in a plain dict."""
    from loyalty import stack as local_stack
    from loyalty.bench.report import write_report
    from loyalty.bench.state import run_state_bench

    settings = get_settings()
    if not no_broker:
        local_stack.up(settings)
    report = run_state_bench(
        members=members, purchases=purchases, distinct=distinct, rounds=rounds,
        partitions=settings.partitions,
        bootstrap=None if no_broker else settings.bootstrap_servers,
        topic_prefix=settings.topic(""), workdir=settings.stack_dir, echo=console.print,
    )  # fmt: skip
    if worker and not no_broker:
        import asyncio

        from loyalty.bench.state_worker import measure_worker

        report.context["worker"] = asyncio.run(measure_worker(
            settings, members=members, purchases=purchases, distinct=distinct,
            day_tick=day_tick, log_dir=settings.stack_dir / "logs" / "bench-state",
            echo=console.print,
        ))  # fmt: skip
    path = write_report(report, output)
    report.print_table(console)
    console.print(f"JSON report: {path}")


@main.command("bench-cart")
@click.option("--offers", default=500, show_default=True, help="Offers published.")
@click.option("--carts", default=5000, show_default=True, help="Carts evaluated (after warm-up).")
@click.option("--members", default=2000, show_default=True)
@click.option("--output", type=click.Path(path_type=Path), default=None)
def bench_cart(offers: int, carts: int, members: int, output: Path | None) -> None:
    """POST /v1/carts/evaluate latency over HTTP vs GET /healthz, and evaluate_cart alone."""
    import asyncio

    from loyalty import stack as local_stack
    from loyalty.bench.cart import TITLE, run_cart_bench
    from loyalty.bench.report import print_latency_report, write_report
    from projections.migrate import temporary_database

    settings = get_settings()
    local_stack.up(settings)
    with temporary_database(settings.dsn, "loyalty_bench") as dsn:
        log_dir = settings.stack_dir / "logs" / "bench-cart"
        bench = run_cart_bench(
            settings, dsn, offers=offers, members=members, carts=carts, log_dir=log_dir
        )
        report = asyncio.run(bench)
    path = write_report(report, output)
    print_latency_report(report, console, TITLE)
    console.print(f"JSON report: {path}")


@main.command("bench-feed")
@click.option("--offers", default=500, show_default=True, help="Offers published.")
@click.option("--members", default=100_000, show_default=True)
@click.option(
    "--rates",
    default="250,500,1000",
    show_default=True,
    help="Feed requests a second, half anonymous, half personalised: one measurement each.",
)
@click.option(
    "--healthz-share",
    default=0.25,
    show_default=True,
    help="GET /healthz per feed request, interleaved: the baseline.",
)
@click.option("--seconds", default=20.0, show_default=True, help="Measured load per rate.")
@click.option("--warmup-seconds", default=5.0, show_default=True)
@click.option(
    "--probes",
    default=200,
    show_default=True,
    help="Purchases timed from send to visible in the member's feed.",
)
@click.option("--probe-members", default=20, show_default=True)
@click.option("--poll-ms", default=5.0, show_default=True, help="How often a probe reads the feed.")
@click.option("--api-workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="`loyalty api --workers`: API processes serving the load.")  # fmt: skip
@click.option("--active-members", default=0, show_default=True, type=click.IntRange(0),
              help="Members the personalised requests go to, each asking again within the run "
              "(an app's sessions); 0: any of the 20,000 with a token.")  # fmt: skip
@click.option("--member-feeds-mib", default=None, type=click.IntRange(0),
              help="The API's LOYALTY_API_MEMBER_FEEDS_MIB (0: no member feed kept); "
              "default: the API's own.")  # fmt: skip
@click.option("--output", type=click.Path(path_type=Path), default=None)
def bench_feed(offers: int, members: int, rates: str, healthz_share: float, seconds: float,
               warmup_seconds: float, probes: int, probe_members: int, poll_ms: float,
               api_workers: int, active_members: int, member_feeds_mib: int | None,
               output: Path | None) -> None:  # fmt: skip
    """The offer feeds at fixed request rates vs GET /healthz, and event -> visible."""
    import asyncio

    from loyalty import stack as local_stack
    from loyalty.bench.feed import print_latency_table, run_feed_bench
    from loyalty.bench.report import write_report
    from projections.migrate import temporary_database

    settings = get_settings()
    local_stack.up(settings)
    with temporary_database(settings.dsn, "loyalty_bench") as dsn:
        bench = run_feed_bench(
            settings, dsn, offers=offers, members=members,
            rates=[float(rate) for rate in rates.split(",")], healthz_share=healthz_share,
            seconds=seconds, warmup_seconds=warmup_seconds, probes=probes,
            probe_members=probe_members, poll_ms=poll_ms, api_workers=api_workers,
            active_members=active_members, member_feeds_mib=member_feeds_mib,
            log_dir=settings.stack_dir / "logs" / "bench-feed", echo=console.print,
        )  # fmt: skip
        report = asyncio.run(bench)
        # Before the database is dropped: a refused drop must not lose the figures.
        path = write_report(report, output)
    print_latency_table(report, console)
    console.print(f"JSON report: {path}")


@main.command("bench-inbox")
@click.option(
    "--probes",
    default=200,
    show_default=True,
    help="Messages timed from POST to visible, and records through the bare broker.",
)
@click.option(
    "--poll-ms", default=5.0, show_default=True, help="How often a probe reads the anonymous inbox."
)
@click.option("--output", type=click.Path(path_type=Path), default=None)
def bench_inbox(probes: int, poll_ms: float, output: Path | None) -> None:  # fmt: skip
    """Inbox message posted -> visible (p99 target 1 s) vs the broker's produce -> consume."""
    import asyncio

    from loyalty import stack as local_stack
    from loyalty.bench.inbox import TITLE, run_inbox_bench
    from loyalty.bench.report import print_latency_report, write_report
    from projections.migrate import temporary_database

    settings = get_settings()
    local_stack.up(settings)
    with temporary_database(settings.dsn, "loyalty_bench") as dsn:
        bench = run_inbox_bench(
            settings, dsn, probes=probes, poll_ms=poll_ms,
            log_dir=settings.stack_dir / "logs" / "bench-inbox", echo=console.print,
        )  # fmt: skip
        report = asyncio.run(bench)
        path = write_report(report, output)
    print_latency_report(report, console, TITLE)
    console.print(f"JSON report: {path}")


@main.command("bench-codes")
@click.option("--rate", default=200.0, show_default=True, help="Code reservations a second.")
@click.option("--seconds", default=30.0, show_default=True, help="Measured load.")
@click.option("--warmup-seconds", default=5.0, show_default=True)
@click.option(
    "--api-workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="API processes (`loyalty api --workers`).",
)
@click.option(
    "--healthz-share",
    default=0.25,
    show_default=True,
    type=click.FloatRange(0.01, 1.0),
    help="GET /healthz (the baseline) at this share of the reservations' rate.",
)
@click.option("--output", type=click.Path(path_type=Path), default=None)
def bench_codes(
    rate: float, seconds: float, warmup_seconds: float, api_workers: int, healthz_share: float,
    output: Path | None,
) -> None:  # fmt: skip
    """Promo code validation with reservation at a fixed rate vs GET /healthz."""
    import asyncio

    from loyalty import stack as local_stack
    from loyalty.bench.codes import TITLE, run_codes_bench
    from loyalty.bench.report import print_latency_report, write_report
    from projections.migrate import temporary_database

    settings = get_settings()
    local_stack.up(settings)
    with temporary_database(settings.dsn, "loyalty_bench") as dsn:
        bench = run_codes_bench(
            settings, dsn, rate=rate, seconds=seconds, warmup_seconds=warmup_seconds,
            log_dir=settings.stack_dir / "logs" / "bench-codes", echo=console.print,
            api_workers=api_workers, healthz_share=healthz_share,
        )  # fmt: skip
        report = asyncio.run(bench)
    path = write_report(report, output)
    print_latency_report(report, console, TITLE)
    console.print(f"JSON report: {path}")


@main.command("bench-redeem")
@click.option("--members", default=200, show_default=True, help="Members, each funded once.")
@click.option("--rate", default=50.0, show_default=True, help="Redemptions a second.")
@click.option("--seconds", default=60.0, show_default=True, help="Measured load.")
@click.option("--warmup-seconds", default=20.0, show_default=True)
@click.option("--output", type=click.Path(path_type=Path), default=None)
def bench_redeem(members: int, rate: float, seconds: float, warmup_seconds: float,
                 output: Path | None) -> None:  # fmt: skip
    """The redemption round trip (POST -> decided answer) at a fixed rate vs GET /healthz."""
    import asyncio

    from loyalty import stack as local_stack
    from loyalty.bench.redeem import TITLE, run_redeem_bench
    from loyalty.bench.report import print_latency_report, write_report
    from projections.migrate import temporary_database

    settings = get_settings()
    local_stack.up(settings)
    with temporary_database(settings.dsn, "loyalty_bench") as dsn:
        bench = run_redeem_bench(
            settings, dsn, members=members, rate=rate, seconds=seconds,
            warmup_seconds=warmup_seconds, log_dir=settings.stack_dir / "logs" / "bench-redeem",
            echo=console.print,
        )  # fmt: skip
        report = asyncio.run(bench)
    path = write_report(report, output)
    print_latency_report(report, console, TITLE)
    console.print(f"JSON report: {path}")


def _register_worker_commands() -> None:
    from loyalty.cli_worker import audit, chaos, dead_letters, worker

    main.add_command(worker)
    main.add_command(audit)
    main.add_command(chaos)
    main.add_command(dead_letters)


_register_worker_commands()


def _register_simulate_command() -> None:
    from loyalty.cli_simulate import simulate

    main.add_command(simulate)


_register_simulate_command()

if __name__ == "__main__":
    main()
