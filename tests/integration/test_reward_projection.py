"""The reward and request-outcome projections on real Postgres, through `projection.apply`:
the catalogue's latest version, a reward's stock counted from its codes and grants whichever
topic arrives first, a redelivery changing nothing, a granted reward closed once, and an
outcome's first answer holding."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta

import pytest

from processors.contract.base import Event
from processors.contract.common import Source
from processors.contract.outcomes import RejectionReason, RequestRejected
from processors.contract.redemptions import RequestType
from processors.contract.rewards import RewardExpired, RewardRedeemed
from projections import db, dump, projection
from projections.projection import Admitted, PartitionBatch
from tests.integration.test_projections_ledger import drop_schema, new_schema, select
from tests.rules.given import T0
from tests.rules.test_rewards import codes, reward
from tests.unit.test_reward_projection_rows import accepted_outcome, grant, return_answers

pytestmark = pytest.mark.integration


@pytest.fixture
def schemas(database_url) -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    for name in made:
        drop_schema(database_url, name)


def fresh(database_url: str, schemas: list[str]) -> str:
    schemas.append(new_schema(database_url))
    return schemas[-1]


def apply(database_url: str, schema: str, *topics: tuple[str, Sequence[Event]]) -> None:
    """Each (topic, events) as one partition batch from offset 0, all in one transaction."""
    batches = [
        PartitionBatch(topic, 0, [Admitted(n, e) for n, e in enumerate(events)])
        for topic, events in topics
    ]
    with db.connect(database_url, schema=schema, autocommit=True) as conn:
        projection.apply(conn, batches)


def stock(database_url: str, schema: str) -> list[tuple]:
    return select(database_url, schema, "SELECT * FROM reward_stock ORDER BY reward_id")


def hash_of(database_url: str, schema: str) -> str:
    with db.connect(database_url, schema=schema) as conn:
        return dump.sha256(conn)


CONFIG = [
    reward("COFFEE", uses_code_stock=True),
    codes("COFFEE", "A1", "A2", "A3"),
    codes("COFFEE", "A3", "B1", batch="b2"),  # A3 again: stocked once
]
USED = RewardRedeemed(
    event_id="used-GR-1", occurred_at=T0 + timedelta(days=1), member_id="M1",
    granted_reward_id="GR-1", reward_id="COFFEE", code="A1", cause_event_id="tx-1",
    source=Source.INSTORE, transaction_id="T9",
)  # fmt: skip
EXPIRED = RewardExpired(
    event_id="expired-GR-1", occurred_at=T0 + timedelta(days=40), member_id="M1",
    granted_reward_id="GR-1", reward_id="COFFEE", code="A1", expires_at=T0 + timedelta(days=30),
    cause_event_id="day-40",
)  # fmt: skip
# GR-3's code came from elsewhere (never stocked): a grant, but no stocked code given.
GRANTS = [grant("GR-1", "A1"), grant("GR-2", "A2"), grant("GR-3", "EXTERNAL-9"), USED, EXPIRED]


def test_stock_and_wallet_are_the_same_whichever_topic_comes_first(database_url, schemas):
    config_first, grants_first, one_by_one = (fresh(database_url, schemas) for _ in range(3))

    apply(database_url, config_first, ("config", CONFIG))
    apply(database_url, config_first, ("rewards", GRANTS))
    apply(database_url, grants_first, ("rewards", GRANTS))
    apply(database_url, grants_first, ("config", CONFIG))
    for n, event in enumerate([*GRANTS, *CONFIG]):
        apply(database_url, one_by_one, (f"topic-{n}", [event]))

    # 4 codes stocked (A1, A2, A3, B1), 2 of them given; 3 grants in all.
    assert stock(database_url, config_first) == [("COFFEE", 4, 2, 3)]
    assert hash_of(database_url, config_first) == hash_of(database_url, grants_first)
    assert hash_of(database_url, config_first) == hash_of(database_url, one_by_one)


def test_a_redelivery_changes_nothing(database_url, schemas):
    schema = fresh(database_url, schemas)
    apply(database_url, schema, ("config", CONFIG), ("rewards", GRANTS))
    before = hash_of(database_url, schema)

    # Under other topic names the checkpoints do not skip them: the writers must.
    apply(database_url, schema, ("config-again", CONFIG), ("rewards-again", GRANTS))

    assert hash_of(database_url, schema) == before
    assert stock(database_url, schema) == [("COFFEE", 4, 2, 3)]


def test_a_granted_reward_is_closed_once_the_first_closing_holding(database_url, schemas):
    schema = fresh(database_url, schemas)
    apply(database_url, schema, ("rewards", GRANTS))

    rows = select(
        database_url, schema,
        "SELECT granted_reward_id, status, closed_at, closed_event_id, redeemed_transaction_id,"
        " code, redemption_token FROM member_rewards ORDER BY granted_reward_id",
    )  # fmt: skip

    assert rows[0][:5] == ("GR-1", "REDEEMED", T0 + timedelta(days=1), "used-GR-1", "T9")
    assert [(r[0], r[1], r[5]) for r in rows[1:]] == [
        ("GR-2", "ISSUED", "A2"), ("GR-3", "ISSUED", "EXTERNAL-9"),
    ]  # fmt: skip


def test_the_catalogue_holds_each_rewards_latest_publication(database_url, schemas):
    schema = fresh(database_url, schemas)
    apply(database_url, schema, ("config", [
        reward("COFFEE"), reward("TEA"), reward("COFFEE", points_cost=90, granted_valid_days=7),
    ]))  # fmt: skip

    rows = select(
        database_url, schema,
        "SELECT reward_id, points_cost, granted_valid_days, localized_copy -> 'fr' ->> 'headline'"
        " FROM rewards ORDER BY reward_id",
    )  # fmt: skip

    assert rows == [("COFFEE", 90, 7, "Un muffin gratuit"), ("TEA", 100, 30, "Un muffin gratuit")]


def test_a_requests_first_outcome_holds(database_url, schemas):
    schema = fresh(database_url, schemas)
    refused = RequestRejected(
        event_id="out-9", occurred_at=T0, member_id="M1", command_id="c1",
        request_type=RequestType.REWARD_REDEMPTION, request_event_id="req-c1",
        reason=RejectionReason.out_of_stock, detail="out of codes",
    )  # fmt: skip
    apply(database_url, schema, ("outcomes", [accepted_outcome("c1"), refused]))
    apply(database_url, schema, ("outcomes-again", [refused]))

    rows = select(
        database_url, schema,
        "SELECT command_id, accepted, reason, points_debited, granted_reward_ids"
        " FROM request_outcomes",
    )  # fmt: skip

    assert rows == [("c1", True, None, 200, ["GR-1", "GR-2"])]


def test_a_refused_return_gives_way_to_its_later_answer(database_url, schemas):
    # Refused before its purchase arrived, sent again and applied (ADR 43): in separate
    # transactions, then a redelivery of the refusal, which changes nothing.
    schema = fresh(database_url, schemas)
    refused, applied = return_answers()
    apply(database_url, schema, ("outcomes", [refused]))
    apply(database_url, schema, ("outcomes-later", [applied]))
    apply(database_url, schema, ("outcomes-again", [refused]))

    rows = select(
        database_url, schema,
        "SELECT command_id, outcome_event_id, accepted, reason FROM request_outcomes",
    )  # fmt: skip

    assert rows == [("R1", "out-r2", True, None)]


def test_outstanding_liability_and_redemption_rates_per_reward(database_url, schemas):
    from processors.contract.offer_definition import DiscountTerms

    five_off = DiscountTerms.model_validate({"kind": "AMOUNT_OFF_CART", "amount_off_cents": 500})
    granted = [
        grant(f"GR-{n}", f"A{n}").model_copy(update={"discount": five_off, "points_spent": 100})
        for n in (1, 2, 3)
    ]
    used = USED.model_copy(update={"discount_cents": 500})
    expired = EXPIRED.model_copy(update={"granted_reward_id": "GR-2", "event_id": "exp-GR-2"})
    schema = fresh(database_url, schemas)
    apply(database_url, schema, ("loyalty.rewards.v1", [*granted, used, expired]))

    [row] = select(database_url, schema, "SELECT * FROM reward_liability")
    # reward, granted, redeemed, expired, outstanding, its points, its amount off, discounts
    # given, redeemed / closed
    assert row[:8] == ("COFFEE", 3, 1, 1, 1, 100, 500, 500)
    assert float(row[8]) == 0.5
    [month] = select(database_url, schema, "SELECT granted, redeemed, expired FROM "
                     "reward_redemption_rates")  # fmt: skip
    assert month == (3, 1, 1)
    query = (
        "SELECT discount ->> 'amount_off_cents', redeemed_discount_cents FROM member_rewards"
        " WHERE granted_reward_id = 'GR-1'"
    )
    [token] = select(database_url, schema, query)
    assert token == ("500", 500)


def test_a_merge_moves_a_reward_whichever_partition_comes_first(database_url, schemas):
    from processors.contract.rewards import RewardGrantReason, RewardMoved

    victims = grant("GR-1", "A1")
    moved = RewardMoved(
        event_id="moved-GR-1", occurred_at=T0 + timedelta(days=2), member_id="M1",
        to_member_id="M2", granted_reward_id="GR-1", reward_id="COFFEE", code="A1",
        cause_event_id="merge-1",
    )  # fmt: skip
    survivors = grant("GR-M2", "A1").model_copy(update={
        "member_id": "M2", "reason": RewardGrantReason.MERGE, "command_id": None,
        "occurred_at": T0 + timedelta(days=2), "redemption_token": "A1",
    })  # fmt: skip
    rows = []
    for order in ([victims, moved], [survivors]), ([survivors], [victims, moved]):
        schema = fresh(database_url, schemas)
        apply(database_url, schema, ("loyalty.config.v1", CONFIG))
        for events in order:  # the victim's partition 0, the survivor's 1, in either order
            partition = 1 if events == [survivors] else 0
            batch = PartitionBatch(
                "loyalty.rewards.v1", partition, [Admitted(n, e) for n, e in enumerate(events)]
            )
            with db.connect(database_url, schema=schema, autocommit=True) as conn:
                projection.apply(conn, [batch])
        rows.append((
            select(database_url, schema, "SELECT granted_reward_id, member_id, status, "
                   "moved_to_member_id, redemption_token FROM member_rewards ORDER BY 1"),
            select(database_url, schema, "SELECT granted, outstanding FROM reward_liability"),
            stock(database_url, schema),
        ))  # fmt: skip
    assert rows[0] == rows[1]
    wallet, liability, _ = rows[0]
    assert wallet == [("GR-1", "M1", "MOVED", "M2", "A1"), ("GR-M2", "M2", "ISSUED", None, "A1")]
    assert liability == [(1, 1)]
