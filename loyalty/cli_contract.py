"""`loyalty publish`, `loyalty consume` and `loyalty contract ...`: the contract from a shell."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import uuid
from pathlib import Path
from typing import TextIO

import click
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from rich.console import Console

from loyalty import contract as files
from processors.base.settings import REPO_ROOT, Settings, get_settings
from processors.base.topics import CONTRACT_TOPICS, by_name
from processors.codec.avro import AvroCodec, DecodeError
from processors.codec.json_form import JsonFormError, from_json_line, to_json_line
from processors.config_feed import ConfigFeed
from processors.contract.catalogue import events_on
from processors.contract.config import OfferPublished
from processors.rules.member import Config

console = Console(stderr=True)
TOPIC_NAMES = [spec.name for spec in CONTRACT_TOPICS]


def codec() -> AvroCodec:
    """The codec with every recorded schema version, so old records still decode."""
    return AvroCodec.with_history()


def current_config(settings: Settings) -> Config:
    """The programmes, offers, rewards and promotions the config topic holds now; a command
    that cannot read it says why and exits 1 (it checks what it is about to publish)."""
    try:
        return asyncio.run(_read_config(settings))
    except (KafkaError, TimeoutError) as error:
        topic = settings.topic(OfferPublished.topic)
        click.echo(f"could not read {topic} to check against it: {error}", err=True)
        sys.exit(1)


async def _read_config(settings: Settings) -> Config:
    # The feed's INFO lines (events read that change nothing) are for a service's log, not a
    # one-line command's answer.
    quiet = logging.getLogger("processors.config_feed")
    quiet.setLevel(max(logging.WARNING, quiet.getEffectiveLevel()))
    feed = ConfigFeed(settings.bootstrap_servers, settings.topic(OfferPublished.topic), codec())
    task = asyncio.create_task(feed.run())
    try:
        await asyncio.wait_for(feed.ready.wait(), timeout=60)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return feed.config


def parse_lines(
    handle: TextIO, topic: str, avro: AvroCodec
) -> tuple[list[tuple[bytes, bytes]], list[str]]:
    """(key, value) records for the valid lines, and one error per rejected line."""
    allowed = events_on(topic)
    records: list[tuple[bytes, bytes]] = []
    errors: list[str] = []
    for number, line in enumerate(handle, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            event = from_json_line(line)
        except JsonFormError as error:
            errors.append(f"line {number}: {error}")
            continue
        if type(event) not in allowed:
            errors.append(
                f"line {number}: {type(event).__name__} does not belong on {topic}; allowed: "
                + ", ".join(sorted(e.__name__ for e in allowed))
            )
            continue
        records.append((event.partition_key().encode(), avro.encode(event)))
    return records, errors


async def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    """Produce `records` and wait until the broker acknowledged every one."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


@click.command()
@click.option("--topic", "-t", required=True, type=click.Choice(TOPIC_NAMES))
@click.argument("source", type=click.File("r"))
def publish(topic: str, source: TextIO) -> None:
    """Validate JSON-lines events (FILE, or - for stdin), encode them to Avro, produce them.

    Valid lines are produced keyed as the contract says; each bad line is reported with its
    number, field and reason, and the exit status is 1 if any line was rejected.
    """
    by_name(topic)
    records, errors = parse_lines(source, topic, codec())
    for error in errors:
        click.echo(f"rejected {error}", err=True)
    if records:
        settings = get_settings()
        asyncio.run(produce(settings.bootstrap_servers, settings.topic(topic), records))
    click.echo(f"published {len(records)} event(s) to {topic}, rejected {len(errors)}", err=True)
    sys.exit(1 if errors else 0)


@click.command()
@click.option("--topic", "-t", required=True, type=click.Choice(TOPIC_NAMES))
@click.option("--from-beginning/--latest", default=True, show_default=True)
@click.option("--max", "max_events", type=int, default=None, help="Stop after this many.")
@click.option("--idle-timeout", type=float, default=5.0, show_default=True,
              help="Stop after this many seconds without a record (0: never).")  # fmt: skip
def consume(topic: str, from_beginning: bool, max_events: int | None, idle_timeout: float) -> None:
    """Print a topic's events as JSON lines (undecodable records are reported on stderr)."""
    asyncio.run(_consume(topic, from_beginning, max_events, idle_timeout))


async def _consume(
    topic: str, from_beginning: bool, max_events: int | None, idle_timeout: float
) -> None:
    avro = codec()
    settings = get_settings()
    consumer = AIOKafkaConsumer(
        settings.topic(topic),
        bootstrap_servers=settings.bootstrap_servers,
        group_id=f"loyalty-consume-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest" if from_beginning else "latest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen = 0
    loop = asyncio.get_running_loop()
    last_record = loop.time()
    try:
        while max_events is None or seen < max_events:
            batches = await consumer.getmany(timeout_ms=500)
            if not batches:
                if idle_timeout and loop.time() - last_record > idle_timeout:
                    break
                continue
            last_record = loop.time()
            for records in batches.values():
                for record in records:
                    seen += 1
                    try:
                        click.echo(to_json_line(avro.decode(record.value)))
                    except DecodeError as error:
                        click.echo(
                            f"{record.topic}[{record.partition}]@{record.offset}: "
                            f"{error.reason.value}: {error.detail}",
                            err=True,
                        )
    finally:
        await consumer.stop()


@click.group()
def contract() -> None:
    """The contract's files: schemas, history, golden corpus, docs."""


@contract.command("generate")
def contract_generate() -> None:
    """Write schemas/ (one file per type, one self-contained file per event, the parse order)
    and the generated part of docs/contract.md from the models."""
    changed = files.generate_schema_files()
    files.DOCS_FILE.write_text(files.render_docs())
    console.print(f"{len(changed)} schema file(s) changed; {files.DOCS_FILE} written")


@contract.command("snapshot")
def contract_snapshot() -> None:
    """Record new schema versions in schemas/history with a golden encoded example.

    A change the fingerprint cannot see (a default) is recorded as a version of its own; one
    that would change how records already written read (a decimal's scale, a timestamp's unit)
    is refused, and nothing is written.
    """
    try:
        written = files.snapshot()
    except files.ContractError as error:
        console.print(str(error))
        sys.exit(1)
    for path in written:
        click.echo(f"wrote {path.relative_to(REPO_ROOT)}")
    versions = [path for path in written if path.suffix == ".avsc"]
    console.print(f"{len(versions)} new version(s) recorded")


@contract.command("check")
def contract_check() -> None:
    """Exit 1 if schema files, history or docs lag behind the models.

    The history is compared on the whole schema but its docs, not only on the fingerprint:
    the fingerprint cannot see a default, a logical type or a decimal's scale.
    """
    problems = files.stale_schema_files()
    problems += files.history_problems()
    if not files.DOCS_FILE.exists() or files.DOCS_FILE.read_text() != files.render_docs():
        problems.append(f"{Path(files.DOCS_FILE).name} is out of date")
    for problem in problems:
        console.print(problem)
    if problems:
        console.print("run `loyalty contract generate` and `loyalty contract snapshot`")
        sys.exit(1)
    console.print("contract files are current")
