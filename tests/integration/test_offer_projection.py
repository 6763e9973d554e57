"""The offers projection on the real broker and the real Postgres: OfferCompleted and
OfferProgressed into offer_completions, member_offer_uses and member_offer_progress, the member
facts the cart preview needs, redelivery, and replay equals live.

Every test projects into its own schema from its own topics (the ledger projection's own
suite, test_projections_ledger.py, also carries offer events through its restarts, kills and
rebuilds)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from processors.codec.avro import AvroCodec
from processors.contract.enrolments import MemberEnrolled, MemberProfile, MemberProfileUpdated
from processors.contract.offers import OfferTargeted
from projections import db, dump, projection
from projections.projection import Admitted, PartitionBatch
from projections.rebuild import rebuild
from projections.runner import Projector, ProjectorConfig, contract_topic_map
from tests.builders import T0, enrolled, enrolment_answered, offer_history
from tests.integration.test_projections_ledger import drop_schema, new_schema, produce, select

pytestmark = pytest.mark.integration

CODEC = AvroCodec()


@pytest.fixture
def schema(database_url):
    name = new_schema(database_url)
    yield name
    drop_schema(database_url, name)


def encoded(events):
    return [(event.partition_key().encode(), CODEC.encode(event)) for event in events]


def targeted(member: str) -> OfferTargeted:
    return OfferTargeted(
        event_id=f"targeted-{member}", occurred_at=T0, member_id=member, offer_id="ACC_SPEND",
        in_control_group=False, cause_event_id="offer-published",
    )  # fmt: skip


async def feed(bootstrap, new_topic, offers, enrolments=()) -> dict[str, str]:
    """The topics, with `enrolments` and `offers` produced and every enrolment accepted."""
    topics = {
        "ledger": await new_topic("ledger", partitions=2),
        "enrolments": await new_topic("enrolments", partitions=2),
        "offers": await new_topic("offers", partitions=2),
        "outcomes": await new_topic("outcomes", partitions=2),
    }
    await produce(bootstrap, topics["enrolments"], encoded(enrolments))
    answers = [enrolment_answered(e) for e in enrolments if isinstance(e, MemberEnrolled)]
    await produce(bootstrap, topics["outcomes"], encoded(answers))
    await produce(bootstrap, topics["offers"], encoded(offers))
    return contract_topic_map(
        topics["ledger"], topics["enrolments"], topics["offers"], outcomes=topics["outcomes"]
    )


async def project(database_url, bootstrap, topics, schema, **changes):
    config = ProjectorConfig(
        database_url, bootstrap, topics, group_id=f"test-offers-{uuid.uuid4().hex[:8]}",
        schema=schema, **changes,
    )  # fmt: skip
    return await asyncio.wait_for(Projector(config).run(until_caught_up=True), timeout=60)


def hash_of(database_url, schema) -> str:
    with db.connect(database_url, schema=schema) as conn:
        return dump.sha256(conn)


async def test_offer_events_become_completions_uses_and_the_latest_progress(
    database_url, bootstrap_servers, new_topic, schema
):
    offers = offer_history(2)
    topics = await feed(bootstrap_servers, new_topic, [targeted("M000"), *offers])

    report = await project(database_url, bootstrap_servers, topics, schema)

    assert report.refused == 0
    assert report.events_applied == len(offers) + 1  # the targeting: offer_audience (ADR 15)
    assert select(
        database_url, schema,
        "SELECT event_id, member_id, offer_id, use_number, points_awarded, discount_cents"
        " FROM offer_completions ORDER BY event_id",
    ) == [
        ("completed-M000-3", "M000", "ACC_SPEND", 1, 500, 0),
        ("completed-M000-5", "M000", "CART_OFF", 1, 0, 250),
        ("completed-M001-3", "M001", "ACC_SPEND", 1, 500, 0),
        ("completed-M001-5", "M001", "CART_OFF", 1, 0, 251),
    ]  # fmt: skip
    assert select(
        database_url, schema,
        "SELECT member_id, offer_id, uses, points_awarded, discount_cents, last_completed_at"
        " FROM member_offer_uses ORDER BY 1, 2",
    ) == [
        ("M000", "ACC_SPEND", 1, 500, 0, T0 + timedelta(hours=3)),
        ("M000", "CART_OFF", 1, 0, 250, T0 + timedelta(hours=5)),
        ("M001", "ACC_SPEND", 1, 500, 0, T0 + timedelta(hours=3)),
        ("M001", "CART_OFF", 1, 0, 251, T0 + timedelta(hours=5)),
    ]  # fmt: skip
    # The second use's progress, not the first's: the newest OfferProgressed wins.
    assert select(
        database_url, schema,
        "SELECT member_id, offer_id, use_number, progress, updated_at"
        " FROM member_offer_progress ORDER BY 1",
    ) == [
        (member, "ACC_SPEND", 2,
         [{"behaviour_index": 0, "metric": "SPEND_CENTS", "progress": "1500.000",
           "threshold": "10000.000"}],
         T0 + timedelta(hours=4))
        for member in ("M000", "M001")
    ]  # fmt: skip


def test_a_redelivered_batch_counts_each_completion_once(database_url, schema):
    offers = offer_history(3)
    # The same completion twice on the topic (a producer retry), then the whole batch again
    # after its checkpoint was lost.
    records = [Admitted(n, event) for n, event in enumerate([*offers, offers[2]])]
    batches = [PartitionBatch("offers", 0, records)]
    with db.connect(database_url, schema=schema) as conn:
        projection.apply(conn, batches)
        once = dump.sha256(conn)
        uses = conn.execute("SELECT sum(uses), sum(points_awarded) FROM member_offer_uses")
        assert uses.fetchone() == (6, 1500)
        conn.execute("DELETE FROM projection_checkpoints")
        conn.commit()
        again = projection.apply(conn, batches)
        assert again.events_applied == len(records)
        assert dump.sha256(conn) == once


def test_an_older_progress_applied_late_never_rolls_the_newest_back(database_url, schema):
    offers = offer_history(1)
    newest, older = offers[3], offers[0]
    with db.connect(database_url, schema=schema) as conn:
        projection.apply(conn, [PartitionBatch("offers", 0, [Admitted(0, newest)])])
        projection.apply(conn, [PartitionBatch("offers", 0, [Admitted(1, older)])])
        row = conn.execute("SELECT use_number, updated_at FROM member_offer_progress").fetchone()
    assert row == (2, T0 + timedelta(hours=4))


def test_members_keep_every_market_and_programme_and_the_newest_profile(database_url, schema):
    later = T0 + timedelta(days=1)
    events = [
        enrolled("M1", program_ids=["CA_REWARDS"]),
        MemberProfileUpdated(
            event_id="profile-M1", occurred_at=later, member_id="M1", source="APP",
            profile=MemberProfile(first_name="Ada", attributes={"tier": "GOLD"}),
        ),
        # A second enrolment, older than the profile update: its programmes count, its
        # profile does not.
        enrolled("M1", event_id="enrol-M1-US", market="US", program_ids=["US_CLUB", "AAA"]),
    ]  # fmt: skip
    with db.connect(database_url, schema=schema) as conn:
        projection.apply(conn, [PartitionBatch("enrolments", 0, [Admitted(0, events[0])])])
        projection.apply(conn, [PartitionBatch("enrolments", 0, [Admitted(1, events[1])])])
        projection.apply(conn, [PartitionBatch("enrolments", 0, [Admitted(2, events[2])])])
        answers = [enrolment_answered(events[2]), enrolment_answered(events[0])]
        projection.apply(
            conn, [PartitionBatch("outcomes", 0, list(map(Admitted, (0, 1), answers)))]
        )
        row = conn.execute(
            "SELECT market, markets, program_ids, profile->'attributes', first_name FROM members"
        ).fetchone()
    assert row == ("CA", ["CA", "US"], ["AAA", "CA_REWARDS", "US_CLUB"], {"tier": "GOLD"}, "Ada")


async def test_replay_without_checkpoints_and_a_rebuild_give_the_same_offer_tables(
    database_url, bootstrap_servers, new_topic, schema
):
    enrolments = [enrolled(f"M{n:03d}") for n in range(4)]
    topics = await feed(bootstrap_servers, new_topic, offer_history(4), enrolments)
    await project(database_url, bootstrap_servers, topics, schema)
    live = hash_of(database_url, schema)
    select(database_url, schema, "DELETE FROM projection_checkpoints RETURNING 1")
    await project(database_url, bootstrap_servers, topics, schema)
    assert hash_of(database_url, schema) == live

    report = await rebuild(
        database_url, bootstrap_servers, topics=topics, live_schema=schema, verify=True
    )

    assert report.identical
    assert report.rebuilt_sha256 == live
    rows = select(database_url, schema, "SELECT count(*) FROM member_offer_uses")
    assert rows == [(8,)]
