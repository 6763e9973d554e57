"""`loyalty audiences upload AUDIENCE FILE`: a list-based audience (seed 003, "List-based
targeting for audience": a CSV whose header is `loyaltyId`) onto the config topic, as
`AudienceUploaded` parts that offers target by `targeting.audience_id`.

Reading the file and making its parts is `processors.audience_lists` (through the reader of
product lists and reward codes: bad rows named by row number, repeats kept once with a
warning); this module adds the check of the members against the `members` projection, the
clock and the producing.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import click
import psycopg
from aiokafka.errors import KafkaError
from pydantic import TypeAdapter, ValidationError

from loyalty.cli_contract import codec
from loyalty.producing import publish_events
from processors.audience_lists import AUDIENCE_HEADER, audience_parts
from processors.base.settings import get_settings
from processors.code_lists import read_code_list
from processors.contract.base import Id
from processors.contract.config import AudienceUploaded

SHOWN_MAX = 20
"""Unknown members named one by one; beyond, counted."""


@dataclass(frozen=True)
class AudienceUpload:
    """What a file gives: the parts to publish (none if there is any error), the problems."""

    member_ids: list[str] = field(default_factory=list)
    events: list[AudienceUploaded] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def read_upload(
    audience_id: str, path: Path, *, at: datetime, name: str | None = None
) -> AudienceUpload:
    """The file's members as one upload's parts (`processors.audience_lists`); `at` is their
    time."""
    listed = read_code_list(path, AUDIENCE_HEADER, count_max=None)
    if listed.errors:
        return AudienceUpload(listed.codes, [], listed.errors, listed.warnings)
    events = audience_parts(audience_id, listed.codes, at=at, name=name, file_name=path.name)
    return AudienceUpload(listed.codes, events, [], listed.warnings)


def unknown_members(conn: psycopg.Connection, member_ids: list[str]) -> list[str]:
    """The ids the `members` projection does not know (in the order given)."""
    known = {
        row[0]
        for row in conn.execute(
            "SELECT member_id FROM members WHERE member_id = ANY(%s)", (member_ids,)
        )
    }
    return [member_id for member_id in member_ids if member_id not in known]


def _unknown_warning(path: Path, unknown: list[str]) -> str:
    shown = ", ".join(unknown[:SHOWN_MAX]) + (" …" if len(unknown) > SHOWN_MAX else "")
    return (
        f"{path}: {len(unknown)} member(s) unknown to the members projection, kept (they are "
        f"targeted if they enrol): {shown}"
    )


@click.group()
def audiences() -> None:
    """Audiences offers target by `targeting.audience_id`."""


@audiences.command("upload")
@click.argument("audience_id", metavar="AUDIENCE")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--name", default=None, help="The audience's internal name.")
@click.option("--dry-run", is_flag=True, help="Check the file and show the parts; publish none.")
def upload(audience_id: str, file: Path, name: str | None, dry_run: bool) -> None:
    """Upload FILE (CSV with a `loyaltyId` header) as AUDIENCE's members.

    Every bad row is reported with its row number and nothing is published; a member repeated
    in the file is reported and kept once; members the members projection does not know are
    reported and kept. The list goes to loyalty.config.v1 as AudienceUploaded parts of at most
    5,000 members and replaces the audience's previous list once all its parts arrived.
    """
    try:
        TypeAdapter(Id).validate_python(audience_id)
    except ValidationError:
        raise click.BadParameter(
            "1 to 128 printable ASCII characters", param_hint="AUDIENCE"
        ) from None
    settings = get_settings()
    found = read_upload(audience_id, file, at=datetime.now(UTC), name=name)
    warnings = list(found.warnings)
    if not found.errors:
        try:
            with psycopg.connect(settings.dsn) as conn:
                unknown = unknown_members(conn, found.member_ids)
        except psycopg.OperationalError as error:
            click.echo(f"error: cannot check the members in Postgres: {error}", err=True)
            sys.exit(1)
        if unknown:
            warnings.append(_unknown_warning(file, unknown))
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    for problem in found.errors:
        click.echo(f"error: {problem}", err=True)
    if found.errors:
        click.echo(f"{len(found.errors)} error(s); nothing published", err=True)
        sys.exit(1)
    topic = settings.topic(AudienceUploaded.topic)
    if not dry_run:
        try:
            asyncio.run(publish_events(settings, found.events, codec()))
        except KafkaError as error:
            click.echo(f"could not publish to {topic}: {error}; nothing was published", err=True)
            sys.exit(1)
    verb = "would publish" if dry_run else "published"
    for event in found.events:
        click.echo(
            f"{verb} part {event.part_number} of {event.part_count}: "
            f"{len(event.member_ids)} member(s) as {event.event_id}"
        )
    click.echo(
        f"{verb} {len(found.member_ids)} member(s) for audience {audience_id} in "
        f"{len(found.events)} part(s) to {topic}",
        err=True,
    )
