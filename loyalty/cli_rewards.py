"""`loyalty rewards codes add REWARD FILE`: a reward's unique codes from a CSV file onto the
config topic, as `RewardCodesAdded` batches (seed 004; docs/adr/0020-rewards.md).

Reading the file is `processors.code_lists` (the same reader as offer files' product lists:
a `code` header, problems named by row); this module adds the batching, the ids, the clock and
the producing. A reward is published with `loyalty publish --topic loyalty.config.v1` (a
`RewardPublished` in JSON form, one a line): there is no reward file format of its own yet.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import click
from aiokafka.errors import KafkaError
from pydantic import TypeAdapter, ValidationError

from loyalty.cli_contract import codec, current_config
from loyalty.producing import publish_events
from processors.base.settings import get_settings
from processors.code_lists import REWARD_CODE_HEADER, read_code_list
from processors.contract.base import Id
from processors.contract.config import RewardCodesAdded
from processors.contract.offer_definition import LIST_MAX
from processors.rules.arithmetic import derived_id
from processors.rules.member import Config

FILE_NAME_MAX = 255
"""`RewardCodesAdded.source_file_name` is at most this long."""


@dataclass(frozen=True)
class CodeUpload:
    """What a file gives: the batches to publish (none if there is any error), the problems."""

    codes: list[str] = field(default_factory=list)
    events: list[RewardCodesAdded] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def batch_id(reward_id: str, content: bytes, index: int) -> str:
    """A batch's event id: the same reward, file content and position give the same id, so
    publishing a file again repeats its batches (stocked once) instead of adding new ones."""
    return derived_id("reward-codes", reward_id, hashlib.sha256(content).hexdigest(), str(index))


def read_upload(reward_id: str, path: Path, *, at: datetime) -> CodeUpload:
    """The file's codes as batches of at most LIST_MAX, in file order; `at` is their time.

    A row that is no code (1–128 printable ASCII characters) is an error naming its row; a
    code repeated in the file is kept once, with a warning naming both rows.
    """
    listed = read_code_list(path, REWARD_CODE_HEADER, count_max=None)
    if listed.errors:
        return CodeUpload(listed.codes, [], listed.errors, listed.warnings)
    content = path.read_bytes()
    name = path.name[:FILE_NAME_MAX]
    warnings = list(listed.warnings) + _case_twins(listed.codes, path)
    events = [
        RewardCodesAdded(
            event_id=batch_id(reward_id, content, index),
            occurred_at=at,
            reward_id=reward_id,
            codes=listed.codes[start : start + LIST_MAX],
            source_file_name=name,
        )
        for index, start in enumerate(range(0, len(listed.codes), LIST_MAX))
    ]
    return CodeUpload(listed.codes, events, [], warnings)


def _case_twins(codes: list[str], path: Path) -> list[str]:
    """A warning per code that differs from an earlier one only by case: both are stocked (a
    vendor's codes may be case-sensitive), but a till matches a token exactly, so a cashier
    who types the other case is told `reward_unknown`."""
    first: dict[str, str] = {}
    found = []
    for code in codes:
        twin = first.setdefault(code.upper(), code)
        if twin != code:
            found.append(f"{path}: {code!r} differs from {twin!r} only by case; both stocked, "
                         "and a till matches a token exactly")  # fmt: skip
    return found


def stockable(config: Config, reward_id: str) -> str | None:
    """Why `reward_id`'s stock cannot take codes as the config topic holds it (never
    published, or its grants take no code), or None: a mistyped id would stock codes no
    grant ever takes."""
    reward = config.rewards.get(reward_id)
    if reward is None:
        return (f"no reward {reward_id} was ever published: publish it first (a RewardPublished "
                "with `loyalty publish`) or check the id")  # fmt: skip
    if not reward.uses_code_stock:
        return f"reward {reward_id} takes no code from a stock (its uses_code_stock is false)"
    return None


@click.group()
def rewards() -> None:
    """Rewards: their code stocks."""


@rewards.group()
def codes() -> None:
    """A reward's stock of unique codes."""


@codes.command("add")
@click.argument("reward_id", metavar="REWARD")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check the file and show the batches; publish none.")
def add(reward_id: str, file: Path, dry_run: bool) -> None:
    """Add the codes of FILE (CSV with a `code` header) to REWARD's stock.

    Every bad row is reported with its row number and nothing is published; a code repeated
    in the file is reported and kept once. The codes go to loyalty.config.v1 as RewardCodesAdded
    batches of at most 5,000, each id derived from the reward, the file's content and the
    batch's position: running the same file again is a repeat, and the reward's agent skips
    codes the reward already has.
    """
    try:
        TypeAdapter(Id).validate_python(reward_id)
    except ValidationError:
        raise click.BadParameter(
            "1 to 128 printable ASCII characters", param_hint="REWARD"
        ) from None
    upload = read_upload(reward_id, file, at=datetime.now(UTC))
    for warning in upload.warnings:
        click.echo(f"warning: {warning}", err=True)
    for error in upload.errors:
        click.echo(f"error: {error}", err=True)
    if upload.errors:
        click.echo(f"{len(upload.errors)} error(s); nothing published", err=True)
        sys.exit(1)
    settings = get_settings()
    problem = stockable(current_config(settings), reward_id)
    if problem is not None:
        click.echo(f"error: {problem}; nothing published", err=True)
        sys.exit(1)
    topic = settings.topic(RewardCodesAdded.topic)
    if not dry_run:
        try:
            asyncio.run(publish_events(settings, upload.events, codec()))
        except KafkaError as error:
            click.echo(f"could not publish to {topic}: {error}; nothing was published", err=True)
            sys.exit(1)
    verb = "would publish" if dry_run else "published"
    for event in upload.events:
        click.echo(f"{verb} {len(event.codes)} code(s) as {event.event_id}")
    click.echo(
        f"{verb} {len(upload.codes)} code(s) for {reward_id} in {len(upload.events)} batch(es) "
        f"to {topic}",
        err=True,
    )
