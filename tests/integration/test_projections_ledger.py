"""The ledger projection on the real broker and the real Postgres.

Every test projects into its own schema (migrated from scratch) from its own topics, so the
tests share nothing but the servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

import psycopg
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import REGISTRY
from psycopg import sql

from loyalty.stack import kafka
from processors.codec.avro import AvroCodec
from processors.contract.enrolments import MemberProfile, MemberProfileUpdated, MembersMerged
from processors.contract.ledger import LedgerEventRecorded
from projections import checkpoints as checkpoints_module
from projections import db, dump, projection, runner
from projections.migrate import apply_migrations
from projections.projection import Admitted, PartitionBatch
from projections.rebuild import rebuild
from projections.runner import Projector, ProjectorConfig, contract_topic_map
from projections.writers import members
from tests.builders import T0, enrolled, enrolment_answered, ledger_history, offer_history

pytestmark = pytest.mark.integration

CODEC = AvroCodec()


@dataclass(frozen=True)
class Feed:
    """The test's topics and what was produced to them."""

    ledger_topic: str
    enrolments_topic: str
    enrolments: list
    ledger: list
    offers_topic: str
    offers: list
    outcomes_topic: str
    outcomes: list

    @property
    def topics(self) -> dict[str, str]:
        return contract_topic_map(
            self.ledger_topic, self.enrolments_topic, self.offers_topic,
            outcomes=self.outcomes_topic,
        )  # fmt: skip

    @property
    def size(self) -> int:
        """How many records were produced to the feed's topics."""
        return len(self.ledger) + len(self.enrolments) + len(self.offers) + len(self.outcomes)


def new_schema(database_url: str) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    apply_migrations(database_url, schema=name)
    return name


def drop_schema(database_url: str, name: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def schema(database_url):
    """A fresh schema with every migration applied: this test's "live" tables."""
    name = new_schema(database_url)
    yield name
    drop_schema(database_url, name)


@pytest.fixture
def schemas(database_url):
    """More fresh schemas on demand: `schemas()`."""
    made: list[str] = []

    def make() -> str:
        made.append(new_schema(database_url))
        return made[-1]

    yield make
    for name in made:
        drop_schema(database_url, name)


async def produce(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for key, value in records:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


def encoded(events) -> list[tuple[bytes, bytes]]:
    return [(event.partition_key().encode(), CODEC.encode(event)) for event in events]


def member_changes() -> list:
    """A profile update of M001 and the merge of M002 into M003, after their enrolments."""
    return [
        MemberProfileUpdated(
            event_id="profile-M001",
            occurred_at=T0.replace(hour=12),
            member_id="M001",
            source="APP",
            profile=MemberProfile(first_name="Renamed", email="m1@example.com", province="ON"),
        ),
        MembersMerged(
            event_id="merge-M002",
            occurred_at=T0.replace(hour=13),
            victim_member_id="M002",
            survivor_member_id="M003",
            source="CALL_CENTER",
        ),
    ]


def refused_stranger():
    """An enrolment the engine refuses (another market's programme): it opens nobody."""
    return enrolled("M900", market="US")


async def make_feed(bootstrap, new_topic, *, members=6, events_per_member=12, partitions=3):
    enrolments, ledger = ledger_history(members, events_per_member)
    answers = [enrolment_answered(e) for e in enrolments]
    stranger = refused_stranger()
    answers.append(enrolment_answered(stranger, refused="market_mismatch"))
    enrolments = [*enrolments, stranger, *member_changes()]
    feed = Feed(
        await new_topic("ledger", partitions=partitions),
        await new_topic("enrolments", partitions=partitions),
        enrolments,
        ledger,
        await new_topic("offers", partitions=partitions),
        offer_history(members),
        await new_topic("outcomes", partitions=partitions),
        answers,
    )
    await produce(bootstrap, feed.outcomes_topic, encoded(feed.outcomes))
    await produce(bootstrap, feed.enrolments_topic, encoded(feed.enrolments))
    await produce(bootstrap, feed.ledger_topic, encoded(feed.ledger))
    await produce(bootstrap, feed.offers_topic, encoded(feed.offers))
    return feed


def config(database_url, bootstrap, feed, schema, **changes) -> ProjectorConfig:
    fields = {"group_id": f"test-projector-{uuid.uuid4().hex[:8]}", "schema": schema, **changes}
    return ProjectorConfig(database_url, bootstrap, feed.topics, **fields)


async def project(database_url, bootstrap, feed, schema, **changes) -> runner.RunReport:
    """Run a projector over the feed until it has caught up with what was produced."""
    run = Projector(config(database_url, bootstrap, feed, schema, **changes))
    return await asyncio.wait_for(run.run(until_caught_up=True), timeout=60)


def select(database_url, schema, query, params=()):
    with db.connect(database_url, schema=schema) as conn:
        return conn.execute(query, params).fetchall()


def dump_hash(database_url, schema) -> str:
    with db.connect(database_url, schema=schema) as conn:
        return dump.sha256(conn)


def checkpoints(database_url, schema) -> dict[tuple[str, int], int]:
    rows = select(
        database_url, schema, "SELECT topic, partition, next_offset FROM projection_checkpoints"
    )
    return {(topic, partition): offset for topic, partition, offset in rows}


async def fresh_hash(database_url, bootstrap, feed, schemas) -> str:
    """The dump hash of the whole feed projected in one uninterrupted run."""
    reference = schemas()
    await project(database_url, bootstrap, feed, reference)
    return dump_hash(database_url, reference)


def counter(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- What the tables say ------------------------------------------------------------------


async def test_the_projected_tables_say_what_the_ledger_says(
    database_url, bootstrap_servers, new_topic, schema
):
    feed = await make_feed(bootstrap_servers, new_topic)

    report = await project(database_url, bootstrap_servers, feed, schema)

    assert report.refused == 0
    assert report.events_applied == feed.size
    ledger: list[LedgerEventRecorded] = feed.ledger
    assert select(database_url, schema, "SELECT count(*) FROM ledger_events") == [(len(ledger),)]
    # Each account's balance is the sum of its entries.
    mismatched = select(
        database_url,
        schema,
        """SELECT b.member_id, b.program_id, b.category, b.balance, e.total
           FROM member_balances b
           JOIN (SELECT member_id, program_id, category,
                        sum(CASE entry_type WHEN 'CREDIT' THEN points ELSE -points END) AS total
                 FROM ledger_entries GROUP BY 1, 2, 3) e USING (member_id, program_id, category)
           WHERE b.balance <> e.total""",
    )
    assert mismatched == []
    # Balances and lots are those of each account's last ledger event.
    expected_balances, expected_lots = {}, {}
    for event in ledger:
        for after in event.balances_after:
            account = (event.member_id, after.program_id, after.category.value)
            expected_balances[account] = (after.balance, event.sequence)
            expected_lots[account] = {lot.expires_at: lot.points for lot in after.lots}
    balances = select(
        database_url,
        schema,
        "SELECT member_id, program_id, category, balance, sequence FROM member_balances",
    )
    assert {(m, p, c): (b, s) for m, p, c, b, s in balances} == expected_balances
    lots: dict = {}
    for m, p, c, expires_at, points in select(
        database_url,
        schema,
        "SELECT member_id, program_id, category, nullif(expires_at, 'infinity'), points"
        " FROM member_lots",
    ):
        lots.setdefault((m, p, c), {})[expires_at] = points
    assert lots == {account: lots for account, lots in expected_lots.items() if lots}
    # Entries keep their order within the event; every event has its balances after.
    entries = select(
        database_url, schema, "SELECT entry_id, event_log_id, position FROM ledger_entries"
    )
    assert sorted(entries) == sorted(
        (entry.entry_id, event.event_log_id, n)
        for event in ledger
        for n, entry in enumerate(event.entries)
    )
    assert select(database_url, schema, "SELECT count(*) FROM ledger_event_balances") == [
        (sum(len(event.balances_after) for event in ledger),)
    ]
    members = {
        row[0]: row[1:]
        for row in select(
            database_url,
            schema,
            "SELECT member_id, first_name, email, province, status, merged_into FROM members",
        )
    }
    assert len(members) == 6  # M900's refused enrolment opened nobody
    assert members["M000"] == ("First M000", None, "QC", "ACTIVE", None)
    assert members["M001"] == ("Renamed", "m1@example.com", "ON", "ACTIVE", None)
    assert members["M002"][3:] == ("MERGED", "M003")


def members_rows(conn) -> dict:
    with conn.transaction():  # leaves the connection idle for the next `apply`
        return {
            row[0]: row[1:]
            for row in conn.execute(
                "SELECT member_id, market, enrolled_at, markets, program_ids, first_name, status,"
                " merged_into FROM members"
            )
        }


def applied_one_by_one(conn, events) -> None:
    """Each event in its own batch (its own transaction), in the order given."""
    for event in events:
        projection.apply(conn, [PartitionBatch(f"t-{event.event_id}", 0, [Admitted(0, event)])])


def test_an_enrolment_opens_its_member_once_accepted_in_either_order(database_url, schemas):
    joined = enrolled("M1", occurred_at=T0)
    later = enrolled(
        "M1", event_id="enrol-M1-US", occurred_at=T0 + timedelta(hours=3), market="US",
        program_ids=["US_REWARDS"],
    )  # fmt: skip
    renamed = MemberProfileUpdated(
        event_id="profile-M1", occurred_at=T0 + timedelta(hours=2), member_id="M1", source="APP",
        profile=MemberProfile(first_name="Renamed", province="QC"),
    )  # fmt: skip
    events = [joined, enrolment_answered(joined), renamed, later, enrolment_answered(later)]
    orders = [
        events,
        # Answers first, the second enrolment before the first, the update while both wait.
        [events[4], events[1], later, renamed, joined],
        # Each enrolment after its answer, the update before either enrolment is opened.
        [renamed, joined, later, events[4], events[1]],
    ]
    seen = []
    for order in orders:
        with db.connect(database_url, schema=schemas()) as conn:
            applied_one_by_one(conn, order)
            seen.append(members_rows(conn))
            assert conn.execute("SELECT count(*) FROM member_enrolments_pending").fetchone() == (0,)

    assert seen[0] == seen[1] == seen[2]
    # The earliest enrolment's market and time; both markets and programmes; the newest profile.
    market, enrolled_at, markets, programs, first_name, status, _ = seen[0]["M1"]
    assert (market, enrolled_at, markets, programs) == (
        "CA",
        T0,
        ["CA", "US"],
        ["CA_REWARDS", "US_REWARDS"],
    )
    # `later` (hour 3) carries a profile newer than the update (hour 2).
    assert (first_name, status) == ("First M1", "ACTIVE")


def test_a_refused_enrolment_opens_nobody_and_adds_no_market(database_url, schema):
    joined = enrolled("M1")
    refused = enrolled(
        "M1", event_id="enrol-M1-US", occurred_at=T0 + timedelta(hours=1), market="US",
        program_ids=["US_REWARDS"],
    )  # fmt: skip
    stranger = enrolled("M2", program_ids=["NO_SUCH_PROGRAMME"])
    with db.connect(database_url, schema=schema) as conn:
        applied_one_by_one(
            conn,
            [
                joined, refused, stranger, enrolment_answered(joined),
                enrolment_answered(refused, refused="market_mismatch"),
                enrolment_answered(stranger, refused="unknown_programme"),
            ],
        )  # fmt: skip
        rows = members_rows(conn)
        waiting = conn.execute("SELECT count(*) FROM member_enrolments_pending").fetchone()

    assert set(rows) == {"M1"}
    assert rows["M1"][2:4] == (["CA"], ["CA_REWARDS"])
    assert waiting == (0,)


def test_an_enrolment_and_its_answer_written_at_once_by_two_projectors_open_the_member(
    database_url, schema
):
    """Two projectors of one group: one writes the enrolment while the other writes its answer.
    The second waits for the first's transaction (members.serialize), so its settle sees the
    enrolment and opens the member; without the wait each would miss the other's row."""
    joined = enrolled("M1")
    answer = [PartitionBatch("outcomes", 0, [Admitted(0, enrolment_answered(joined))])]
    waiting = (
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    with (
        db.connect(database_url, schema=schema) as first,
        db.connect(database_url, schema=schema) as second,
        db.connect(database_url, schema=schema, autocommit=True) as watch,
    ):
        done = threading.Event()
        other = threading.Thread(target=lambda: (projection.apply(second, answer), done.set()))
        with first.transaction():
            members.serialize(first)
            members.write(first, [joined])
            members.settle(first)  # no answer yet: the enrolment waits
            other.start()
            # Until the other projector has finished, or is seen waiting for this one.
            while not done.is_set() and watch.execute(waiting).fetchone() == (0,):
                time.sleep(0.01)
        other.join(timeout=60)
        rows = members_rows(first)

    assert done.is_set()
    assert set(rows) == {"M1"}


def test_an_enrolment_without_its_answer_waits_and_a_merge_reaches_it(database_url, schema):
    joined = enrolled("M1")
    merged = MembersMerged(
        event_id="merge-M1", occurred_at=T0 + timedelta(hours=1), victim_member_id="M1",
        survivor_member_id="M2", source="CALL_CENTER",
    )  # fmt: skip
    with db.connect(database_url, schema=schema) as conn:
        applied_one_by_one(conn, [joined, merged])
        before_answer = members_rows(conn)
        applied_one_by_one(conn, [enrolment_answered(joined)])
        after_answer = members_rows(conn)

    assert before_answer == {}
    assert after_answer["M1"][4:] == ("First M1", "MERGED", "M2")


# --- Redelivery, restarts and crashes -----------------------------------------------------


def test_a_batch_applied_twice_changes_nothing_the_second_time(database_url, schema):
    enrolments, ledger = ledger_history(3, 5)
    batches = [
        PartitionBatch("ledger", 0, [Admitted(n, e) for n, e in enumerate(ledger)]),
        PartitionBatch("enrolments", 0, [Admitted(n, e) for n, e in enumerate(enrolments)]),
    ]
    with db.connect(database_url, schema=schema) as conn:
        first = projection.apply(conn, batches)
        before = dump.sha256(conn)
        again = projection.apply(conn, batches)

        assert first.events_applied == len(ledger) + len(enrolments)
        assert again.events_applied == 0
        assert again.next_offsets == first.next_offsets
        assert dump.sha256(conn) == before


def test_a_checkpoint_advances_only_over_new_offsets(database_url, schema):
    with db.connect(database_url, schema=schema) as conn:
        moves = [
            checkpoints_module.advance(conn, "p", "t", 0, offset) for offset in (0, 1, 1, 0, 5, 3)
        ]
        stored = checkpoints_module.load(conn, "p", ["t"])

    assert moves == [True, True, False, False, True, False]
    assert stored == {("t", 0): 6}


def test_checkpoints_are_claimed_and_stored_for_every_partition_at_once(database_url, schema):
    partitions = [("a", 0), ("a", 1), ("b", 0)]
    with db.connect(database_url, schema=schema) as conn:
        with conn.transaction():
            assert checkpoints_module.claim(conn, "p", partitions) == dict.fromkeys(partitions, 0)
            checkpoints_module.store(conn, "p", {("a", 0): 7, ("b", 0): 3})
        with conn.transaction():
            claimed = checkpoints_module.claim(conn, "p", partitions)
            checkpoints_module.store(conn, "p", {("a", 0): 5, ("a", 1): 2})  # 5: never back
        stored = checkpoints_module.load(conn, "p", ["a", "b"])

    assert claimed == {("a", 0): 7, ("a", 1): 0, ("b", 0): 3}
    assert stored == {("a", 0): 7, ("a", 1): 2, ("b", 0): 3}


async def test_a_restarted_projector_resumes_from_its_postgres_checkpoints(
    database_url, bootstrap_servers, new_topic, schema
):
    feed = await make_feed(bootstrap_servers, new_topic)
    await project(database_url, bootstrap_servers, feed, schema)
    after_first_run = dump_hash(database_url, schema)

    # A new consumer group has no Kafka offsets at all: positions come from Postgres.
    again = await project(database_url, bootstrap_servers, feed, schema)

    assert again.records == 0
    assert dump_hash(database_url, schema) == after_first_run


async def test_replaying_everything_without_checkpoints_changes_nothing(
    database_url, bootstrap_servers, new_topic, schema
):
    feed = await make_feed(bootstrap_servers, new_topic)
    await project(database_url, bootstrap_servers, feed, schema)
    after_first_run = dump_hash(database_url, schema)
    select(database_url, schema, "DELETE FROM projection_checkpoints RETURNING 1")

    again = await project(database_url, bootstrap_servers, feed, schema)

    assert again.events_applied == feed.size
    assert dump_hash(database_url, schema) == after_first_run


async def test_a_projector_stopped_half_way_then_restarted_builds_the_same_tables(
    database_url, bootstrap_servers, new_topic, schema, schemas
):
    feed = await make_feed(bootstrap_servers, new_topic)
    total = feed.size
    half = Projector(config(database_url, bootstrap_servers, feed, schema, max_records=10))
    await asyncio.wait_for(half.run(stop_after=total // 2), timeout=60)
    applied = sum(checkpoints(database_url, schema).values())
    assert 0 < applied < total

    await project(database_url, bootstrap_servers, feed, schema)

    assert sum(checkpoints(database_url, schema).values()) == total
    assert dump_hash(database_url, schema) == await fresh_hash(
        database_url, bootstrap_servers, feed, schemas
    )


async def test_a_projector_killed_mid_way_loses_and_doubles_nothing(
    database_url, bootstrap_servers, new_topic, schema, schemas
):
    feed = await make_feed(bootstrap_servers, new_topic, members=40, events_per_member=50)
    total = feed.size
    env = {**os.environ, "DATABASE_URL": database_url, "KAFKA_BOOTSTRAP": bootstrap_servers}
    # Every topic the projector reads is this test's own: the shared ones hold others' records.
    # (A shared outcomes topic holding a kept dev stack's answers made the checkpoints
    # outnumber the feed.)
    names = ("transactions", "config", "rewards", "notifications")
    quiet = {f"{feed.ledger_topic}-{name}": (1, {}) for name in names}
    await kafka.ensure_topics(bootstrap_servers, quiet)
    transactions_topic, config_topic, rewards_topic, notifications_topic = quiet
    # fmt: off
    process = subprocess.Popen(
        [sys.executable, "-m", "loyalty.cli", "project", "--ledger-topic", feed.ledger_topic,
         "--enrolments-topic", feed.enrolments_topic, "--offers-topic", feed.offers_topic,
         "--transactions-topic", transactions_topic, "--config-topic", config_topic,
         "--outcomes-topic", feed.outcomes_topic, "--rewards-topic", rewards_topic,
         "--notifications-topic", notifications_topic, "--schema", schema,
         "--group-id", f"killed-{uuid.uuid4().hex[:8]}", "--max-records", "20"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    # fmt: on
    try:
        applied = 0
        deadline = asyncio.get_running_loop().time() + 60
        while applied == 0 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
            applied = sum(checkpoints(database_url, schema).values())
        process.send_signal(signal.SIGKILL)
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait(timeout=30)
    assert 0 < applied < total, "the kill must land mid-way"

    await project(database_url, bootstrap_servers, feed, schema)

    assert sum(checkpoints(database_url, schema).values()) == total
    assert dump_hash(database_url, schema) == await fresh_hash(
        database_url, bootstrap_servers, feed, schemas
    )


# --- Postgres failing ---------------------------------------------------------------------


def fail_on_entry(database_url, schema, entry_id: str) -> None:
    """A trigger that makes Postgres refuse one entry: a real failure in mid-transaction."""
    with db.connect(database_url, schema=schema) as conn:
        conn.execute(
            sql.SQL(
                "CREATE FUNCTION refuse_entry() RETURNS trigger LANGUAGE plpgsql AS $$"
                " BEGIN IF NEW.entry_id = {} THEN RAISE EXCEPTION 'refused by test'; END IF;"
                " RETURN NEW; END $$"
            ).format(sql.Literal(entry_id))
        )
        conn.execute(
            "CREATE TRIGGER refuse_entry BEFORE INSERT ON ledger_entries"
            " FOR EACH ROW EXECUTE FUNCTION refuse_entry()"
        )
        conn.commit()


def stop_failing(database_url, schema) -> None:
    with db.connect(database_url, schema=schema) as conn:
        conn.execute("DROP TRIGGER refuse_entry ON ledger_entries")
        conn.commit()


def test_a_transaction_failing_mid_batch_leaves_neither_rows_nor_checkpoints(database_url, schema):
    enrolments, ledger = ledger_history(3, 5)
    fail_on_entry(database_url, schema, ledger[7].entries[0].entry_id)
    batches = [
        PartitionBatch("enrolments", 0, [Admitted(n, e) for n, e in enumerate(enrolments)]),
        PartitionBatch("ledger", 0, [Admitted(n, e) for n, e in enumerate(ledger)]),
    ]

    with (
        db.connect(database_url, schema=schema) as conn,
        pytest.raises(psycopg.errors.RaiseException),
    ):
        projection.apply(conn, batches)

    for table in (*projection.TABLES, "projection_checkpoints"):
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
        assert select(database_url, schema, query) == [(0,)], table
    stop_failing(database_url, schema)
    with db.connect(database_url, schema=schema) as conn:
        assert projection.apply(conn, batches).events_applied == len(ledger) + len(enrolments)


async def test_a_failing_postgres_write_is_retried_until_it_succeeds_never_skipped(
    database_url, bootstrap_servers, new_topic, schema, schemas
):
    feed = await make_feed(bootstrap_servers, new_topic, partitions=1)
    poisoned = feed.ledger[len(feed.ledger) // 2]
    fail_on_entry(database_url, schema, poisoned.entries[0].entry_id)
    retries_before = counter("loyalty_projection_write_retries_total", projection="ledger")
    run = asyncio.create_task(project(database_url, bootstrap_servers, feed, schema, max_records=7))

    deadline = asyncio.get_running_loop().time() + 30
    while (
        counter("loyalty_projection_write_retries_total", projection="ledger") < retries_before + 2
    ):
        assert asyncio.get_running_loop().time() < deadline, "the failure was never retried"
        await asyncio.sleep(0.05)
    # Stuck on the poisoned batch: every event before the checkpoint is in, none after it.
    stuck_at = checkpoints(database_url, schema).get((feed.ledger_topic, 0), 0)
    projected = {
        row[0] for row in select(database_url, schema, "SELECT event_log_id FROM ledger_events")
    }
    assert projected == {e.event_log_id for e in feed.ledger[:stuck_at]}
    assert poisoned.event_log_id not in projected
    stop_failing(database_url, schema)
    report = await run

    assert report.retries >= 2
    assert dump_hash(database_url, schema) == await fresh_hash(
        database_url, bootstrap_servers, feed, schemas
    )


# --- Records the front door refuses -------------------------------------------------------


async def ledger_feed(new_topic, enrolments, ledger) -> Feed:
    """Fresh topics for members' enrolments and ledgers (nothing produced yet), no offers."""
    return Feed(
        await new_topic("ledger"), await new_topic("enrolments"), enrolments, ledger,
        await new_topic("offers"), [], await new_topic("outcomes"), [],
    )  # fmt: skip


def refused_count(feed: Feed, reason: str) -> float:
    """`loyalty_projection_refused_total` of the feed's ledger topic for `reason`."""
    return counter(
        "loyalty_projection_refused_total", projection="ledger", topic=feed.ledger_topic,
        reason=reason,
    )  # fmt: skip


class RecordingLog:
    def __init__(self):
        self.records: list[tuple[str, str, dict]] = []

    def __getattr__(self, level):
        return lambda event, **fields: self.records.append((level, event, fields))


async def test_refused_records_are_logged_counted_and_passed_over_never_silently(
    database_url, bootstrap_servers, new_topic, schema, monkeypatch
):
    enrolments, ledger = ledger_history(2, 3)
    feed = await ledger_feed(new_topic, enrolments, ledger)
    await produce(
        bootstrap_servers, feed.enrolments_topic, [(b"M000", b"garbage"), *encoded(enrolments)]
    )
    wrong_key = (b"SOMEONE-ELSE", CODEC.encode(ledger[0]))
    await produce(
        bootstrap_servers,
        feed.ledger_topic,
        [*encoded(ledger[:2]), wrong_key, *encoded(ledger[2:])],
    )
    log = RecordingLog()
    monkeypatch.setattr(runner, "log", log)
    refused_ledger = refused_count(feed, "KEY_MISMATCH")

    report = await project(database_url, bootstrap_servers, feed, schema)

    assert report.refused == 2
    assert report.events_applied == len(ledger) + len(enrolments)
    errors = [fields for level, _, fields in log.records if level == "error"]
    assert [(e["topic"], e["offset"], e["reason"]) for e in errors] == [
        (feed.ledger_topic, 2, "KEY_MISMATCH")
    ]
    warnings = [
        fields for level, event, fields in log.records if event == "projection.input_record_skipped"
    ]
    assert [(w["topic"], w["offset"], w["reason"]) for w in warnings] == [
        (feed.enrolments_topic, 0, "NOT_FRAMED")
    ]
    assert refused_count(feed, "KEY_MISMATCH") == refused_ledger + 1
    assert checkpoints(database_url, schema) == {
        (feed.ledger_topic, 0): len(ledger) + 1,
        (feed.enrolments_topic, 0): len(enrolments) + 1,
    }


async def test_a_ledger_record_that_does_not_decode_is_refused_with_its_cause_not_projected(
    database_url, bootstrap_servers, new_topic, schema, schemas, monkeypatch
):
    # The ledger is read without a second validation (ADR 39): what does not decode against
    # its schema is still refused, loudly, with why, and the records around it are projected.
    enrolments, ledger = ledger_history(2, 3)
    feed = await ledger_feed(new_topic, enrolments, ledger)
    await produce(bootstrap_servers, feed.enrolments_topic, encoded(enrolments))
    (key, value), *_ = encoded(ledger[:1])
    truncated, trailing = (key, value[:-2]), (key, value + b"\x00")
    await produce(
        bootstrap_servers, feed.ledger_topic, [*encoded(ledger[:2]), truncated, trailing,
                                               *encoded(ledger[2:])],
    )  # fmt: skip
    log = RecordingLog()
    monkeypatch.setattr(runner, "log", log)
    before = refused_count(feed, "MALFORMED")

    report = await project(database_url, bootstrap_servers, feed, schema)

    assert report.refused == 2
    errors = [fields for level, _, fields in log.records if level == "error"]
    assert [(e["offset"], e["reason"]) for e in errors] == [(2, "MALFORMED"), (3, "MALFORMED")]
    assert "LedgerEventRecorded body does not decode" in errors[0]["error"]
    assert "trailing bytes" in errors[1]["error"]
    assert refused_count(feed, "MALFORMED") == before + 2
    assert checkpoints(database_url, schema)[(feed.ledger_topic, 0)] == len(ledger) + 2
    clean = await ledger_feed(new_topic, enrolments, ledger)
    await produce(bootstrap_servers, clean.enrolments_topic, encoded(enrolments))
    await produce(bootstrap_servers, clean.ledger_topic, encoded(ledger))
    assert dump_hash(database_url, schema) == await fresh_hash(
        database_url, bootstrap_servers, clean, schemas
    )


# --- Rebuild ------------------------------------------------------------------------------


async def test_a_rebuild_from_offset_zero_equals_live_and_takes_its_place(
    database_url, bootstrap_servers, new_topic, schema
):
    feed = await make_feed(bootstrap_servers, new_topic)
    await project(database_url, bootstrap_servers, feed, schema)
    live_hash = dump_hash(database_url, schema)
    live_checkpoints = checkpoints(database_url, schema)

    report = await rebuild(
        database_url, bootstrap_servers, topics=feed.topics, live_schema=schema, verify=True
    )

    assert report.comparable
    assert report.identical
    assert report.rebuilt_sha256 == report.live_sha256 == live_hash
    assert report.swapped
    assert dump_hash(database_url, schema) == live_hash
    assert checkpoints(database_url, schema) == live_checkpoints
    leftovers = select(
        database_url, schema, "SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)",
        ([report.schema, report.schema.replace("rebuild", "retired")],),
    )  # fmt: skip
    assert leftovers == []


async def test_a_verified_rebuild_that_differs_names_the_rows_and_swaps_nothing(
    database_url, bootstrap_servers, new_topic, schema
):
    feed = await make_feed(bootstrap_servers, new_topic)
    await project(database_url, bootstrap_servers, feed, schema)
    with db.connect(database_url, schema=schema, autocommit=True) as conn:  # live drifted
        conn.execute(
            "UPDATE member_balances SET balance = balance + 7"
            " WHERE member_id = (SELECT min(member_id) FROM member_balances)"
        )
    drifted = dump_hash(database_url, schema)

    report = await rebuild(
        database_url, bootstrap_servers, topics=feed.topics, live_schema=schema, verify=True
    )

    assert report.identical is False
    assert report.swap_refused
    assert not report.swapped
    assert dump_hash(database_url, schema) == drifted  # the live tables stay
    (difference,) = report.differences
    assert difference.table == "member_balances"
    assert difference.live_rows == difference.rebuilt_rows
    assert len(difference.only_live) == len(difference.only_rebuilt) >= 1

    with psycopg.connect(database_url, autocommit=True) as listening:
        listening.execute("LISTEN loyalty_decided")
        forced = await rebuild(
            database_url, bootstrap_servers, topics=feed.topics, live_schema=schema, verify=True,
            swap_anyway=True,
        )  # fmt: skip
        # The API's feed caches are told that every table changed (no row was written live).
        told = [n.payload for n in listening.notifies(timeout=5.0, stop_after=100_000)]
    assert forced.swapped
    assert dump_hash(database_url, schema) == forced.rebuilt_sha256 != drifted
    assert "feed:*" in told


async def test_a_live_projector_keeps_going_across_a_rebuild_swap(
    database_url, bootstrap_servers, new_topic, schema, schemas
):
    feed = await make_feed(bootstrap_servers, new_topic)
    stop = asyncio.Event()
    live = Projector(config(database_url, bootstrap_servers, feed, schema, max_records=5))
    running = asyncio.create_task(live.run(stop=stop))
    try:
        total = feed.size
        await wait_for_checkpoints(database_url, schema, total)

        report = await rebuild(
            database_url, bootstrap_servers, topics=feed.topics, live_schema=schema,
            keep_old=True,
        )  # fmt: skip
        assert report.swapped
        # After the swap the live projector writes into the rebuilt tables, not the old ones
        # it had cached plans for (kept here, so that a stale write would land somewhere).
        extra_enrolments, extra = ledger_history(3, 4, seed=2, first_member=100)
        await produce(bootstrap_servers, feed.enrolments_topic, encoded(extra_enrolments))
        await produce(bootstrap_servers, feed.ledger_topic, encoded(extra))
        await wait_for_checkpoints(database_url, schema, total + len(extra_enrolments) + len(extra))
    finally:
        stop.set()
        live_report = await asyncio.wait_for(running, timeout=30)

    assert live_report.retries == 0
    retired = report.retired_schema
    assert select(database_url, retired, "SELECT count(*) FROM ledger_events") == [
        (len(feed.ledger),)
    ]
    drop_schema(database_url, retired)
    assert dump_hash(database_url, schema) == await fresh_hash(
        database_url, bootstrap_servers, feed, schemas
    )


async def test_a_checkpoint_found_behind_the_consumer_is_read_again_from_there(
    database_url, bootstrap_servers, new_topic, schema, schemas
):
    feed = await make_feed(bootstrap_servers, new_topic, partitions=1)
    stop = asyncio.Event()
    live = Projector(config(database_url, bootstrap_servers, feed, schema))
    running = asyncio.create_task(live.run(stop=stop))
    try:
        total = feed.size
        await wait_for_checkpoints(database_url, schema, total)
        # As a rebuild's swap would: the tables go back to an earlier position, under the
        # feet of a running projector.
        with db.connect(database_url, schema=schema) as conn:
            conn.execute(
                "TRUNCATE ledger_event_balances, ledger_entries, ledger_events, member_balances,"
                " member_lots"
            )
            conn.execute(
                "DELETE FROM projection_checkpoints WHERE topic = %s", (feed.ledger_topic,)
            )
            conn.commit()
        _, extra = ledger_history(2, 3, seed=2, first_member=100)
        await produce(bootstrap_servers, feed.ledger_topic, encoded(extra))
        await wait_for_checkpoints(database_url, schema, total + len(extra))
    finally:
        stop.set()
        report = await asyncio.wait_for(running, timeout=30)

    assert report.rewinds >= 1
    whole = Feed(
        feed.ledger_topic, feed.enrolments_topic, feed.enrolments, feed.ledger + extra,
        feed.offers_topic, feed.offers, feed.outcomes_topic, feed.outcomes,
    )  # fmt: skip
    assert dump_hash(database_url, schema) == await fresh_hash(
        database_url, bootstrap_servers, whole, schemas
    )


async def test_a_trickle_is_gathered_into_few_transactions_and_all_of_it_is_projected(
    database_url, bootstrap_servers, new_topic, schema, schemas
):
    """Under light load a fetch waits up to `gather_ms` for more: the records arriving one at
    a time share transactions, and the last of them is written though the bytes a fetch
    waits for never come (a fetch that gathered nothing more still returns)."""
    feed = await make_feed(bootstrap_servers, new_topic)
    stop = asyncio.Event()
    live = Projector(config(database_url, bootstrap_servers, feed, schema, gather_ms=500))
    committed: list[int] = []
    running = asyncio.create_task(
        live.run(stop=stop, on_committed=lambda report, _: committed.append(report.records))
    )
    try:
        total = feed.size
        await wait_for_checkpoints(database_url, schema, total)
        before = len(committed)
        extra_enrolments, extra = ledger_history(2, 10, seed=3, first_member=200)
        await produce(bootstrap_servers, feed.enrolments_topic, encoded(extra_enrolments))
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, enable_idempotence=True)
        await producer.start()
        try:
            for key, value in encoded(extra):  # one at a time, as a quiet hour's events come
                await producer.send_and_wait(feed.ledger_topic, value, key=key)
                await asyncio.sleep(0.02)
        finally:
            await producer.stop()
        await wait_for_checkpoints(database_url, schema, total + len(extra_enrolments) + len(extra))
    finally:
        stop.set()
        report = await asyncio.wait_for(running, timeout=30)

    trickled = len(committed) - before
    assert 1 <= trickled <= (len(extra) + len(extra_enrolments)) // 2, committed[before:]
    assert report.retries == 0
    whole = Feed(
        feed.ledger_topic, feed.enrolments_topic, feed.enrolments + extra_enrolments,
        feed.ledger + extra, feed.offers_topic, feed.offers, feed.outcomes_topic, feed.outcomes,
    )  # fmt: skip
    assert dump_hash(database_url, schema) == await fresh_hash(
        database_url, bootstrap_servers, whole, schemas
    )


async def wait_for_checkpoints(database_url, schema, total: int) -> None:
    deadline = asyncio.get_running_loop().time() + 60
    while sum(checkpoints(database_url, schema).values()) < total:
        assert asyncio.get_running_loop().time() < deadline, "the projector did not catch up"
        await asyncio.sleep(0.05)


# --- The benchmark ------------------------------------------------------------------------


async def test_the_projector_benchmark_projects_every_event_it_times(stack_settings, database_url):
    from loyalty.bench.projector import run_projector_bench

    settings = stack_settings.model_copy(update={"database_url": database_url})

    report = await run_projector_bench(settings, members=20, events_per_member=3)

    # 60 ledger events, 20 enrolments and their 20 answers (which open the members: the
    # bench checks it); the front door's baseline on the first chunk's 80.
    assert [(m.name.split(":")[0], m.count) for m in report.measurements] == [
        ("baseline", 100),
        ("baseline", 80),
        ("projector", 100),
    ]
    left = select(
        database_url, None, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'bench\\_%%'"
    )
    assert left == [(0,)]
