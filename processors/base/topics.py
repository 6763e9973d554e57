"""The topic catalogue: every Kafka topic of the public contract (DESIGN.md §6), in one place.

`loyalty stack up`, the worker, the projector, the benchmarks and the tests all create or name
topics from here, and the contract's events take their topic's name from here, so a topic's
name, partition count and cleanup policy are declared once. Which events travel on a topic is
said by the events themselves (`processors.contract.catalogue.events_on`).

Partitioning: every member-keyed topic has the same partition count (`LOYALTY_PARTITIONS`,
default 8), because a member's inputs and the table that holds its state must be
co-partitioned: partition p of each lands on the same worker, with partition p of the table.
The configuration and clock topics are tiny and need one global order, so they have one
partition. Nothing expires by time: the log is the system of record and projections are
rebuilt from offset 0 (DESIGN.md §7), so retention is unlimited and the config topic is
compacted (the latest definition of each entity is what matters).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Direction(Enum):
    """Who produces a topic."""

    INPUT = "input"  # produced upstream (POS, e-commerce, app, back office)
    OUTPUT = "output"  # produced by the engine
    INTERNAL = "internal"  # produced and consumed by the engine only


RETAIN_FOREVER = {"retention.ms": "-1", "retention.bytes": "-1"}
COMPACTED = {"cleanup.policy": "compact", "min.compaction.lag.ms": "0"}


@dataclass(frozen=True)
class TopicSpec:
    """One topic of the contract."""

    name: str
    key: str
    direction: Direction
    single_partition: bool = False
    config: dict[str, str] = field(default_factory=lambda: dict(RETAIN_FOREVER))

    def partitions(self, member_partitions: int) -> int:
        """How many partitions this topic gets when member-keyed topics get `member_partitions`."""
        return 1 if self.single_partition else member_partitions


ENROLMENTS = TopicSpec("loyalty.enrolments.v1", "member_id", Direction.INPUT)
TRANSACTIONS = TopicSpec(
    "loyalty.transactions.v1", "member_id (transaction_id when anonymous)", Direction.INPUT
)
ACTIVITIES = TopicSpec("loyalty.activities.v1", "member_id", Direction.INPUT)
REDEMPTIONS = TopicSpec("loyalty.redemptions.v1", "member_id", Direction.INPUT)
CONFIG = TopicSpec(
    "loyalty.config.v1",
    "entity id",
    Direction.INPUT,
    single_partition=True,
    config={**RETAIN_FOREVER, **COMPACTED},
)
CLOCK = TopicSpec("loyalty.clock.v1", "market", Direction.INPUT, single_partition=True)
LEDGER = TopicSpec("loyalty.ledger.v1", "member_id", Direction.OUTPUT)
REWARDS = TopicSpec("loyalty.rewards.v1", "member_id", Direction.OUTPUT)
OFFERS = TopicSpec(
    "loyalty.offers.v1",
    "member_id (offer_id for OfferBudgetExhausted; transaction_id for an anonymous code use; "
    "promotion_id for a code lease's answer)",
    Direction.OUTPUT,
)
OUTCOMES = TopicSpec("loyalty.outcomes.v1", "member_id", Direction.OUTPUT)
NOTIFICATIONS = TopicSpec(
    "loyalty.notifications.v1", "member_id (market for a global inbox message)", Direction.OUTPUT
)
DEADLETTER = TopicSpec("loyalty.deadletter.v1", "original key", Direction.OUTPUT)

LEDGER_STEPS = TopicSpec(
    "loyalty.internal.ledger-steps.v1", "member_id (the receiving member)", Direction.INTERNAL
)

OFFER_USES = TopicSpec(
    "loyalty.internal.offer-uses.v1",
    "offer_id (one agent decides each offer's total uses and budget, in order)",
    Direction.INTERNAL,
)

PROMOTION_USES = TopicSpec(
    "loyalty.internal.promotion-uses.v1",
    "promotion_id (one agent counts each promotion's code uses, in arrival order)",
    Direction.INTERNAL,
)

REWARD_STOCK = TopicSpec(
    "loyalty.internal.reward-stock.v1",
    "reward_id (one agent keeps each reward's codes and grants, in arrival order)",
    Direction.INTERNAL,
)

CLOCK_TICKS = TopicSpec(
    "loyalty.internal.clock-ticks.v1",
    "market (one copy per partition, so every member partition sees each day)",
    Direction.INTERNAL,
)

OFFER_TARGETING = TopicSpec(
    "loyalty.internal.offer-targeting.v1",
    "offer_id (one copy per partition, so every member partition decides a static audience)",
    Direction.INTERNAL,
)

CONTRACT_TOPICS: tuple[TopicSpec, ...] = (
    ENROLMENTS,
    TRANSACTIONS,
    ACTIVITIES,
    REDEMPTIONS,
    CONFIG,
    CLOCK,
    LEDGER,
    REWARDS,
    OFFERS,
    OUTCOMES,
    NOTIFICATIONS,
    DEADLETTER,
    LEDGER_STEPS,
    CLOCK_TICKS,
    OFFER_USES,
    OFFER_TARGETING,
    REWARD_STOCK,
    PROMOTION_USES,
)


def by_name(name: str) -> TopicSpec:
    """The contract topic called `name`; KeyError names the unknown topic."""
    for spec in CONTRACT_TOPICS:
        if spec.name == name:
            return spec
    raise KeyError(f"not a contract topic: {name!r}")
