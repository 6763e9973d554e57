"""The challenges projection on the real Postgres (docs/adr/0027-challenges.md): what the
worker's rules say about a member's challenges (run through the simulator, the same rules)
becomes challenges, member_challenges, challenge_completions and the participation view; a
redelivered batch and one event at a time write the same tables as one batch."""

from __future__ import annotations

from decimal import Decimal

import pytest

from processors.contract.activities import ActivityKind
from processors.contract.base import Event
from processors.contract.config import ChallengePublished
from processors.contract.offer_definition import Behaviour, BehaviourKind
from processors.contract.offers import (
    ChallengeAwardTakenBack,
    ChallengeCompleted,
    ChallengeProgressed,
)
from projections import db, dump, projection
from projections.projection import Admitted, PartitionBatch
from tests.integration.test_projections_ledger import drop_schema, new_schema
from tests.rules.test_challenges import challenge, engine, journey

pytestmark = pytest.mark.integration

CHALLENGE_EVENTS = (ChallengeProgressed, ChallengeCompleted, ChallengeAwardTakenBack)


@pytest.fixture
def schema(database_url):
    name = new_schema(database_url)
    yield name
    drop_schema(database_url, name)


def history() -> tuple[list[ChallengePublished], list[Event]]:
    """The journey's challenges and what the rules said about them."""
    steps = Behaviour(kind=BehaviourKind.ACTIVITY, activity_kind=ActivityKind.CHALLENGE_STEP)
    published = [challenge(), challenge("ONBOARD", steps, steps=["PROFILE", "APP"])]
    sim = engine(*published)
    said = [e for event in journey() for e in sim.feed(event) if isinstance(e, CHALLENGE_EVENTS)]
    return published, said


def batches(published: list[ChallengePublished], said: list[Event]) -> list[PartitionBatch]:
    return [
        PartitionBatch("config", 0, [Admitted(n, e) for n, e in enumerate(published)]),
        PartitionBatch("offers", 0, [Admitted(n, e) for n, e in enumerate(said)]),
    ]


def test_the_tables_say_what_the_rules_said(database_url, schema):
    published, said = history()
    with db.connect(database_url, schema=schema) as conn:
        projection.apply(conn, batches(published, said))
        standings = conn.execute(
            "SELECT challenge_id, completions, completion_number, progress, threshold"
            " FROM member_challenges ORDER BY challenge_id"
        ).fetchall()
        completions = conn.execute(
            "SELECT challenge_id, completion_number, points_awarded, points_taken_back"
            " FROM challenge_completions ORDER BY challenge_id"
        ).fetchall()
        figures = conn.execute(
            "SELECT challenge_id, members_joined, members_completed, completion_rate,"
            " completions, points_awarded, points_taken_back"
            " FROM challenge_participation ORDER BY challenge_id"
        ).fetchall()
    assert standings == [
        ("ONBOARD", 1, 2, 0, Decimal("2.000")),  # the threshold stays: it is the same
        ("VISITS3", 1, 2, 0, Decimal("3.000")),
    ]
    assert completions == [("ONBOARD", 1, 100, 0), ("VISITS3", 1, 100, 100)]
    assert figures == [
        ("ONBOARD", 1, 1, Decimal("1.0000"), 1, 100, 0),
        ("VISITS3", 1, 1, Decimal("1.0000"), 1, 100, 100),
    ]


def test_a_redelivered_batch_and_one_event_at_a_time_write_the_same_tables(database_url, schema):
    published, said = history()
    with db.connect(database_url, schema=schema) as conn:
        projection.apply(conn, batches(published, said))
        once = dump.sha256(conn)
        conn.execute("DELETE FROM projection_checkpoints")  # the batch comes again
        conn.commit()
        projection.apply(conn, batches(published, said))
        assert dump.sha256(conn) == once
    other = new_schema(database_url)
    try:
        with db.connect(database_url, schema=other) as conn:
            for n, event in enumerate(published):
                projection.apply(conn, [PartitionBatch("config", 0, [Admitted(n, event)])])
            for n, event in enumerate(said):
                projection.apply(conn, [PartitionBatch("offers", 0, [Admitted(n, event)])])
            assert dump.sha256(conn) == once
    finally:
        drop_schema(database_url, other)
