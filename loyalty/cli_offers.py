"""`loyalty offers validate|publish FILES...`: offer files (YAML or JSON) from a shell.

Reading and checking the files is `processors.offer_files` (no Kafka, no clock); this module
adds the clock (an offer's `occurred_at` is the moment it is published), the output, and the
producing of `OfferPublished` events to the config topic.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from aiokafka.errors import KafkaError

from loyalty.cli_contract import codec, current_config
from loyalty.producing import publish_events
from processors.base.settings import get_settings
from processors.contract.config import OfferPublished
from processors.contract.offer_definition import EVERGREEN_ENDS_AT
from processors.offer_changes import extension
from processors.offer_files import OfferFiles, OfferResult, find_offer_files, load_offer_files

FILES = click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
AS_JSON = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON document instead of lines."
)


@click.group()
def offers() -> None:
    """Offer files: check them, publish them to the config topic."""


@offers.command("validate")
@FILES
@AS_JSON
def validate(files: tuple[Path, ...], as_json: bool) -> None:
    """Check offer files (or directories of them) and report every problem.

    Prints one line per valid offer and one per problem (file, offer, field path, reason);
    exit status 1 if any offer or file is invalid. Warnings do not fail.
    """
    loaded = _load(files)
    if as_json:
        click.echo(json.dumps(_json_report(loaded), indent=2, ensure_ascii=False))
    else:
        for result in loaded.results:
            if result.event is not None:
                click.echo(f"ok {_where(result)}: {_summary(result.event)}")
        _echo_problems(loaded)
        click.echo(_totals(loaded), err=True)
    sys.exit(0 if loaded.is_valid else 1)


@offers.command("publish")
@FILES
@AS_JSON
def publish(files: tuple[Path, ...], as_json: bool) -> None:
    """Check offer files, then publish every offer as OfferPublished to loyalty.config.v1.

    Nothing is produced unless every offer of every file is valid. Each offer is keyed by its
    offer_id, so it replaces the offer's earlier definition in the compacted topic.
    """
    loaded = _load(files)
    if not loaded.is_valid:
        if as_json:
            click.echo(json.dumps({**_json_report(loaded), "published": []}, indent=2))
        else:
            _echo_problems(loaded)
            click.echo(f"{_totals(loaded)}; nothing published", err=True)
        sys.exit(1)
    settings = get_settings()
    topic = settings.topic(OfferPublished.topic)
    try:
        asyncio.run(publish_events(settings, loaded.events, codec()))
    except KafkaError as error:
        where = f"{topic} at {settings.bootstrap_servers}"
        click.echo(f"could not publish to {where}: {error}; nothing was published", err=True)
        sys.exit(1)
    if as_json:
        published = [_json_offer(r) for r in loaded.results]
        click.echo(json.dumps({**_json_report(loaded), "published": published}, indent=2))
    else:
        _echo_problems(loaded)
        for result in loaded.results:
            assert result.event is not None, "a valid set has an event per offer"
            click.echo(f"published {_where(result)} as {result.event.event_id}")
        click.echo(f"published {len(loaded.events)} offer(s) to {topic}", err=True)


def _load(files: tuple[Path, ...]) -> OfferFiles:
    # Not in the loader: the clock is read here, once, so every offer gets the same time.
    published_at = datetime.now(UTC)
    return load_offer_files(find_offer_files(files), published_at=published_at)


def _where(result: OfferResult) -> str:
    return f"{result.file}: offer {result.index} ({result.offer_id})"


def _summary(event: OfferPublished) -> str:
    schedule = event.schedule
    ends = "no end" if schedule.is_evergreen else f"{schedule.ends_at:%Y-%m-%d %H:%M}Z"
    kinds = "+".join(b.kind.value for b in event.behaviours)
    return (
        f"{kinds} → {event.reward.kind.value}, rank {event.rank}, "
        f"{schedule.starts_at:%Y-%m-%d %H:%M}Z to {ends}"
    )


def _echo_problems(loaded: OfferFiles) -> None:
    for problem in loaded.problems:
        click.echo(f"{problem.severity.value}: {problem}", err=True)


def _totals(loaded: OfferFiles) -> str:
    valid = len(loaded.events)
    return (
        f"{valid} valid offer(s), {len(loaded.results) - valid} invalid, "
        f"{len(loaded.errors)} error(s), {len(loaded.warnings)} warning(s)"
    )


def _json_offer(result: OfferResult) -> dict[str, Any]:
    return {
        "file": result.file,
        "index": result.index,
        "offer_id": result.offer_id,
        "valid": result.event is not None,
        "event_id": result.event.event_id if result.event else None,
    }


def _json_report(loaded: OfferFiles) -> dict[str, Any]:
    return {
        "valid": loaded.is_valid,
        "offers": [_json_offer(result) for result in loaded.results],
        "problems": [problem.as_json() for problem in loaded.problems],
    }


@offers.command("extend")
@click.argument("offer_id")
@click.option(
    "--ends-at",
    "ends_at_text",
    required=True,
    help='The new end, RFC 3339 (e.g. 2026-12-31T23:59:59Z), or "never" (does not expire).',
)
@click.option("--by", "requested_by", required=True, help="The staff user extending it.")
@click.option("--reason", default=None, help="Why, for the audit trail.")
def extend(offer_id: str, ends_at_text: str, requested_by: str, reason: str | None) -> None:
    """Extend a live offer's end date (DESIGN.md §5.11): checked against the offer and its
    programme as the config topic holds them now, refused with the rule broken, else
    published as OfferEndDateExtended. The worker applies the same rules again."""
    settings = get_settings()
    try:
        ends_at = (
            EVERGREEN_ENDS_AT
            if ends_at_text.strip().lower() == "never"
            else datetime.fromisoformat(ends_at_text.replace("Z", "+00:00"))
        )
    except ValueError:
        raise click.BadParameter("an RFC 3339 instant or never", param_hint="--ends-at") from None
    if ends_at.tzinfo is None:
        raise click.BadParameter("give the offset, e.g. Z", param_hint="--ends-at")
    now = datetime.now(UTC)  # the command's business time: the one clock read, here
    config = current_config(settings)
    event = extension(config, offer_id, ends_at, now=now, requested_by=requested_by, reason=reason)
    if isinstance(event, str):
        click.echo(f"refused: {event}", err=True)
        sys.exit(1)
    asyncio.run(publish_events(settings, [event], codec()))
    click.echo(f"extended {offer_id} to {event.ends_at.isoformat()} as {event.event_id}")


@offers.command("report")
@click.argument("offer_id")
@click.option(
    "--png",
    "png_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the chart (default: OFFER_ID-report.png here).",
)
def report(offer_id: str, png_path: Path | None) -> None:
    """Test vs control for one offer, from the projection: both groups' members, qualifying
    rate, redemptions, spend and visits per member, the uplift, and whether each difference is
    more than noise (the test named); writes a PNG of both groups over time."""
    import psycopg

    from projections.offer_report import UnknownOfferError, read_report, render_text, write_chart

    with psycopg.connect(get_settings().dsn) as conn:
        try:
            found = read_report(conn, offer_id)
        except UnknownOfferError:
            click.echo(f"no offer {offer_id} was ever published", err=True)
            sys.exit(1)
    click.echo(render_text(found))
    path = write_chart(found, png_path or Path(f"{offer_id}-report.png"))
    click.echo(f"chart: {path}")
