"""Projector benchmark: ledger events/s from Kafka into the ledger projection, against a bare
Postgres COPY of the very same rows, measured in the same run (DESIGN.md §8).

1. A deterministic synthetic ledger (members earning and spending over lots with three
   expiries) is produced Avro-encoded to fresh topics.
2. Baseline: the rows the projection would write, COPYed into fresh, migrated tables in one
   transaction: Postgres alone, no Kafka, no decoding, no conflict handling.
3. Second baseline: the front door alone (decode the same records, validate the enrolments
   and answers; the ledger is trusted, ADR 39; no Kafka, no Postgres): the Python work every
   projector must do, whatever it writes to.
4. The projector replays the topics from offset 0 into other fresh tables, until caught up:
   fetch, front door, rows, staging COPY, conflict-safe inserts, checkpoints.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from aiokafka import AIOKafkaProducer
from psycopg import sql
from psycopg.types.json import Jsonb

from loyalty.bench.report import BenchReport, Measurement, verdict
from loyalty.chaos import delete_topics
from loyalty.stack import kafka
from processors.base.settings import Settings
from processors.codec.avro import AvroCodec
from processors.contract.base import Event
from processors.contract.common import PointsCategory, Source
from processors.contract.enrolments import MemberEnrolled, MemberProfile
from processors.contract.ledger import (
    AccountBalance,
    EntryKind,
    EntryType,
    LedgerEntry,
    LedgerEventRecorded,
    LedgerEventType,
    Lot,
)
from processors.contract.outcomes import RequestAccepted
from processors.contract.redemptions import RequestType
from processors.frontdoor import Delivered, admit
from projections import db
from projections.migrate import apply_migrations
from projections.projection import TRUSTED_TOPICS
from projections.runner import Projector, ProjectorConfig, contract_topic_map
from projections.writers import ledger, outcomes

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
COPY_SHARE_MIN = 0.60
"""Issue #16, target 3: the projector at >= 60 % of a bare COPY of the same rows."""
CHUNK_MEMBERS = 10_000
"""Members whose ledgers are made and produced at a time."""
EXPIRIES = (None, START + timedelta(days=180), START + timedelta(days=365))


def synthetic_ledger(
    members: int, events_per_member: int, *, seed: int = 11, first_member: int = 0
) -> list[Event]:
    """Enrolments, then ledger events in business-time order, consistent per member
    (sequences follow, balances_after are the sums of the entries); members numbered from
    `first_member`, so that ledgers made apart never share a member."""
    rng = random.Random(seed)
    events: list[Event] = []
    lots: dict[str, dict[datetime | None, int]] = {}
    for n in range(first_member, first_member + members):
        member = f"B{n:06d}"
        lots[member] = {}
        events.append(
            MemberEnrolled(event_id=f"enrol-{member}", occurred_at=START, member_id=member,
                           market="CA", program_ids=["CA_REWARDS"], source=Source.APP,
                           profile=MemberProfile(first_name=member, province="QC"))
        )  # fmt: skip
    for sequence in range(1, events_per_member + 1):
        for n in range(first_member, first_member + members):
            member = f"B{n:06d}"
            held = lots[member]
            spendable = [expiry for expiry, points in held.items() if points > 0]
            if spendable and rng.random() < 0.25:
                expiry = rng.choice(spendable)
                entry_type, kind, points = EntryType.DEBIT, EntryKind.REDEMPTION, held[expiry]
                held[expiry] -= points
            else:
                expiry = rng.choice(EXPIRIES)
                entry_type, kind, points = (
                    EntryType.CREDIT,
                    EntryKind.ALLOCATION,
                    rng.randint(1, 900),
                )
                held[expiry] = held.get(expiry, 0) + points
            at = START + timedelta(minutes=sequence * 10 + n % 10)
            log_id = f"{member}:{sequence}"
            ordered = sorted(e for e in held if e is not None and held[e]) + (
                [None] if held.get(None) else []
            )
            net = points if entry_type is EntryType.CREDIT else -points
            events.append(
                LedgerEventRecorded(
                    event_id=f"bench-{log_id}", occurred_at=at, event_log_id=log_id,
                    member_id=member, sequence=sequence, event_type=LedgerEventType.TRANSACTION_ADD,
                    recorded_at=at, cause_event_id=f"tx-{log_id}", source=Source.INSTORE,
                    store_id="S1", points_on_event=net,
                    entries=[LedgerEntry(entry_id=f"{log_id}:0", program_id="CA_REWARDS",
                                         category=PointsCategory.REGULAR, entry_type=entry_type,
                                         kind=kind, points=points, expires_at=expiry)],
                    balances_after=[AccountBalance(
                        program_id="CA_REWARDS", category=PointsCategory.REGULAR,
                        balance=sum(held.values()),
                        lots=[Lot(expires_at=e, points=held[e]) for e in ordered])],
                )
            )  # fmt: skip
    return events


async def run_projector_bench(
    settings: Settings, *, members: int, events_per_member: int, max_records: int = 5000
) -> BenchReport:
    """Produce the synthetic ledger, then time the COPY baseline and the projector. The
    ledger is made and produced `CHUNK_MEMBERS` members at a time (a million events do not
    fit in memory as models); the front door's baseline is timed on the first chunk."""
    run = uuid.uuid4().hex[:8]
    ledger_topic, enrolments_topic = f"bench.{run}.ledger", f"bench.{run}.enrolments"
    outcomes_topic = f"bench.{run}.outcomes"
    await kafka.ensure_topics(
        settings.bootstrap_servers,
        {topic: (settings.partitions, {})
         for topic in (ledger_topic, enrolments_topic, outcomes_topic)},
    )  # fmt: skip
    rows, enrolments, answers = ledger.LedgerRows(), [], []
    sample: list[Event] = []
    for first in range(0, members, CHUNK_MEMBERS):
        chunk = synthetic_ledger(min(CHUNK_MEMBERS, members - first), events_per_member,
                                 seed=11 + first, first_member=first)  # fmt: skip
        ledger_events = [e for e in chunk if isinstance(e, LedgerEventRecorded)]
        joined = [e for e in chunk if isinstance(e, MemberEnrolled)]
        accepted = [_accepted(e) for e in joined]  # the worker's answers open the members
        await _produce(settings.bootstrap_servers, enrolments_topic, joined)
        await _produce(settings.bootstrap_servers, outcomes_topic, accepted)
        await _produce(settings.bootstrap_servers, ledger_topic, ledger_events)
        # Members apart: their rows simply add up.
        made = ledger.rows_of(e.model_dump() for e in ledger_events)
        rows.events += made.events
        rows.entries += made.entries
        rows.event_balances += made.event_balances
        rows.accounts |= made.accounts
        enrolments += joined
        answers += accepted
        sample = sample or chunk
    total = len(rows.events) + len(enrolments) + len(answers)

    report = BenchReport(
        "projector",
        context={"partitions": settings.partitions, "members": members,
                 "ledger_events": len(rows.events), "max_records": max_records},
    )  # fmt: skip
    baseline = f"bench_copy_{run}"
    projected = f"bench_projector_{run}"
    try:
        apply_migrations(settings.dsn, schema=baseline)
        apply_migrations(settings.dsn, schema=projected)
        report.add(
            await asyncio.to_thread(
                _measure_copy, settings.dsn, baseline, rows, enrolments, answers
            )
        )
        report.add(_measure_front_door(sample))
        config = ProjectorConfig(
            settings.dsn, settings.bootstrap_servers,
            contract_topic_map(ledger_topic, enrolments_topic, offers=None,
                               outcomes=outcomes_topic),
            group_id=None, schema=projected, max_records=max_records,
        )  # fmt: skip
        done = report.done_over_run.setdefault("projector events", [(time.time(), 0.0)])
        started, cpu = time.perf_counter(), time.process_time()
        result = await Projector(config).run(
            until_caught_up=True,
            on_committed=lambda run, _: done.append((time.time(), run.events_applied)),
        )
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        assert result.events_applied == total, "the projector missed events"
        with db.connect(settings.dsn, schema=projected) as conn:
            opened = conn.execute("SELECT count(*) FROM members").fetchone()
        assert opened == (len(enrolments),), "the projector left enrolments unopened"
        projector = report.add(
            Measurement("projector: Kafka → ledger projection", "events", total, seconds,
                        f"front door + write + checkpoint, {result.transactions} txs, "
                        f"{cpu / total * 1e6:.0f} µs of this process's CPU an event")
        )  # fmt: skip
        copy = report.measurements[0]
        report.context["ratio_projector_to_copy"] = round(projector.rate / copy.rate, 3)
        # CPU time does not depend on the neighbours' load as the rates do (Postgres's not in).
        report.context["projector_cpu_us_per_event"] = round(cpu / total * 1e6, 1)
        report.judge(verdict(
            "#16.3 projector / bare COPY of the same rows", projector.rate / copy.rate,
            at_least=COPY_SHARE_MIN, unit="×",
            baseline=f"COPY {copy.rate:,.0f} events/s, projector {projector.rate:,.0f}/s",
        ))  # fmt: skip
    finally:
        with psycopg.connect(settings.dsn, autocommit=True) as conn:
            for schema in (baseline, projected):
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                )
        await delete_topics(settings.bootstrap_servers, f"bench.{run}.")
    return report


async def _produce(bootstrap: str, topic: str, events: Sequence[Event]) -> None:
    codec = AvroCodec()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=True, linger_ms=5,
        max_batch_size=256 * 1024,
    )  # fmt: skip
    await producer.start()
    try:
        pending = []
        for event in events:
            key = event.partition_key().encode()
            pending.append(await producer.send(topic, codec.encode(event), key=key))
            if len(pending) >= 10_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


def _measure_front_door(events: list[Event]) -> Measurement:
    codec = AvroCodec()
    records = [
        Delivered(event.topic, 0, n, event.partition_key().encode(), codec.encode(event), 0)
        for n, event in enumerate(events)
    ]
    started = time.perf_counter()
    for record in records:
        admit(codec, record, trusted=record.topic in TRUSTED_TOPICS)
    seconds = time.perf_counter() - started
    return Measurement(
        "baseline: front door alone", "events", len(records), seconds,
        "decode (+ validate off the ledger), no Kafka, no Postgres",
    )  # fmt: skip


def _accepted(enrolment: MemberEnrolled) -> RequestAccepted:
    """The worker's answer to `enrolment`: accepted (its event id is its command id)."""
    return RequestAccepted(
        event_id=f"answer-{enrolment.event_id}", occurred_at=enrolment.occurred_at,
        member_id=enrolment.member_id, command_id=enrolment.event_id,
        request_type=RequestType.ENROLMENT, request_event_id=enrolment.event_id,
    )  # fmt: skip


OUTCOME_COLUMNS = (
    "member_id", "command_id", "request_type", "outcome_event_id", "request_event_id",
    "accepted", "reason", "detail", "points_debited", "discount_cents", "ledger_event_log_id",
    "granted_reward_ids", "issued_offer_id", "decided_at",
)  # fmt: skip
"""`request_outcomes`' columns in the order `outcomes.rows_of` fills them."""


def _measure_copy(
    dsn: str,
    schema: str,
    rows: ledger.LedgerRows,
    enrolments: list[MemberEnrolled],
    answers: list[RequestAccepted],
) -> Measurement:
    members = [
        (e.member_id, e.market, e.occurred_at, e.profile.first_name, e.profile.last_name,
         e.profile.email, e.profile.preferred_locale, e.profile.province, "ACTIVE", None,
         e.occurred_at, [e.market], sorted(e.program_ids),
         Jsonb(e.profile.model_dump(mode="json")))
        for e in enrolments
    ]  # fmt: skip
    lots = [
        (*account, "infinity" if at is None else at, points) for *account, at, points in rows.lots()
    ]
    tables: list[tuple[str, Sequence[Any], Sequence[str] | None]] = [
        ("members", members, None),
        ("request_outcomes", outcomes.rows_of(answers), OUTCOME_COLUMNS),
        ("ledger_events", rows.events, None),
        ("ledger_entries", rows.entries, None),
        ("ledger_event_balances", rows.event_balances, None),
        ("member_balances", rows.balances(), None),
        ("member_lots", lots, None),
    ]
    count = len(rows.events) + len(enrolments) + len(answers)
    with db.connect(dsn, schema=schema) as conn:
        started = time.perf_counter()
        with conn.cursor() as cursor:
            for table, data, named in tables:
                columns = list(named) if named is not None else [
                    row[0]
                    for row in conn.execute(
                        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass"
                        " AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                        (table,),
                    )
                ]  # fmt: skip
                statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                    sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
                )
                with cursor.copy(statement) as copy:
                    for row in data:
                        copy.write_row(row)
        conn.commit()
        seconds = time.perf_counter() - started
    return Measurement(
        "baseline: bare COPY of the same rows", "events", count, seconds,
        "same 7 tables, indexes and FKs; one transaction",
    )  # fmt: skip
