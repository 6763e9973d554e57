"""`loyalty audiences upload AUDIENCE FILE`: a list-based audience (seed 003, "List-based
targeting for audience": a CSV whose header is `loyaltyId`) onto the config topic, as
`AudienceUploaded` parts that offers target by `targeting.audience_id`.

Reading the file is `processors.code_lists` (the reader of product lists and reward codes: bad
rows named by row number, repeats kept once with a warning); this module adds the check of
the members against the `members` projection, the parts, the ids, the clock and the producing.
"""

from __future__ import annotations

import asyncio
import hashlib
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
from processors.base.settings import get_settings
from processors.code_lists import read_code_list
from processors.contract.base import Id
from processors.contract.config import AudienceUploaded
from processors.contract.offer_definition import LIST_MAX
from processors.rules.arithmetic import derived_id

AUDIENCE_HEADER = "loyaltyId"
"""The header of an uploaded audience list (seed 003)."""
FILE_NAME_MAX = 255
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
    """The file's members as one upload in parts of at most LIST_MAX, in file order; `at` is
    their time. The upload's id derives from the audience and the file's content, so the same
    file again is a repeat (each part compacts to one), while another file replaces the
    audience as a whole once all of its parts arrived."""
    listed = read_code_list(path, AUDIENCE_HEADER, count_max=None)
    if listed.errors:
        return AudienceUpload(listed.codes, [], listed.errors, listed.warnings)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    upload_id = derived_id("audience-upload", audience_id, digest)
    starts = range(0, len(listed.codes), LIST_MAX)
    events = [
        AudienceUploaded(
            event_id=derived_id("audience-part", upload_id, str(number)),
            occurred_at=at,
            audience_id=audience_id,
            name=name,
            upload_id=upload_id,
            part_number=number,
            part_count=len(starts),
            member_ids=listed.codes[start : start + LIST_MAX],
            source_file_name=path.name[:FILE_NAME_MAX],
        )
        for number, start in enumerate(starts, start=1)
    ]
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
        click.echo(f"{verb} part {event.part_number} of {event.part_count}: "
                   f"{len(event.member_ids)} member(s) as {event.event_id}")  # fmt: skip
    click.echo(
        f"{verb} {len(found.member_ids)} member(s) for audience {audience_id} in "
        f"{len(found.events)} part(s) to {topic}",
        err=True,
    )
