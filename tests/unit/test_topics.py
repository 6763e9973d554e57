"""The topic catalogue is the contract of DESIGN.md §6: names, keys, partitions, policies."""

import pytest

from processors.base.topics import CONTRACT_TOPICS, Direction, by_name
from processors.contract.catalogue import events_on

DESIGN_INPUTS = {
    "loyalty.enrolments.v1",
    "loyalty.transactions.v1",
    "loyalty.activities.v1",
    "loyalty.redemptions.v1",
    "loyalty.config.v1",
    "loyalty.clock.v1",
}
DESIGN_OUTPUTS = {
    "loyalty.ledger.v1",
    "loyalty.rewards.v1",
    "loyalty.offers.v1",
    "loyalty.outcomes.v1",
    "loyalty.notifications.v1",
    "loyalty.deadletter.v1",
}


def test_every_contract_topic_is_in_the_catalogue_once():
    names = [spec.name for spec in CONTRACT_TOPICS]
    assert len(names) == len(set(names))
    assert {s.name for s in CONTRACT_TOPICS if s.direction is Direction.INPUT} == DESIGN_INPUTS
    assert {s.name for s in CONTRACT_TOPICS if s.direction is Direction.OUTPUT} == DESIGN_OUTPUTS
    assert {s.name for s in CONTRACT_TOPICS if s.direction is Direction.INTERNAL} == {
        "loyalty.internal.ledger-steps.v1",
        "loyalty.internal.clock-ticks.v1",
        "loyalty.internal.offer-uses.v1",
        "loyalty.internal.offer-targeting.v1",
        "loyalty.internal.reward-stock.v1",
        "loyalty.internal.promotion-uses.v1",
    }


def test_member_keyed_topics_are_co_partitioned():
    # A member's inputs and its table must be co-partitioned (processors.base.topics).
    member_keyed = [s for s in CONTRACT_TOPICS if s.key.startswith("member_id")]
    assert len(member_keyed) == 10
    assert by_name("loyalty.internal.clock-ticks.v1").partitions(8) == 8
    assert {s.partitions(8) for s in member_keyed} == {8}


def test_config_topic_is_compacted_and_nothing_expires_by_time():
    assert by_name("loyalty.config.v1").config["cleanup.policy"] == "compact"
    assert by_name("loyalty.config.v1").partitions(8) == 1
    for spec in CONTRACT_TOPICS:
        assert spec.config["retention.ms"] == "-1", spec.name


def test_events_are_listed_per_topic_as_designed():
    names = lambda topic: {e.__name__ for e in events_on(by_name(topic).name)}  # noqa: E731
    assert names("loyalty.ledger.v1") == {"LedgerEventRecorded"}
    assert "PointsTransferRequested" in names("loyalty.redemptions.v1")
    assert "MembersMerged" in names("loyalty.enrolments.v1")


def test_an_unknown_topic_is_named_in_the_error():
    with pytest.raises(KeyError, match=r"loyalty\.nope\.v1"):
        by_name("loyalty.nope.v1")
