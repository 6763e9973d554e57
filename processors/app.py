"""The worker's wiring: which agent reads which topics, with which table and consumer group.
Wiring only; no rules here, no Kafka loop here (`processors.runtime`).

Agents (`processors/agents/`):
- `Members`: member-keyed inputs (enrolments, transactions, activities, redemptions, the
  internal ledger steps, clock ticks and targeting ticks) → member rules (ledger and offers) →
  ledger, offers, outcomes and step events; state in `ledgers_by_member`;
- `OfferUses`: requests for uses of offers with a total-uses limit or a budget, keyed by offer
  → grants, denials, OfferBudgetExhausted, in arrival order (ADR 14), and OfferClosed on the
  config topic when an offer is spent (ADR 29); state in `uses_by_offer`;
- `Days`: each `DayStarted` copied to every partition of the clock-ticks topic;
- `ConfigFanOut`: each publication with a static audience copied to every partition of
  the offer-targeting topic (ADR 13), each batch of reward codes to its reward's agent;
- `RewardStocks`: each reward's codes and the members' requests for its grants, keyed by
  reward → allocations and refusals, in arrival order (ADR 20); state in `stock_by_reward`;
- `PromotionUsesAgent`: purchases' promo code uses, keyed by promotion → each use redeemed or
  refused, in arrival order (ADR 23), and for a code that unlocks an offer the member's use
  granted or denied (ADR 37); state in `uses_by_promotion`.
Each agent is its own consumer group, so a rebalance or a slow batch of one never holds up
another (docs/adr/0017-worker-runtime.md).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaProducer

from processors.agents.fan_out import ConfigFanOut, Days
from processors.agents.members import Members
from processors.agents.offer_uses import OfferUses
from processors.agents.promotion_uses import PromotionUsesAgent
from processors.agents.reward_stock import RewardStocks
from processors.base.logs import get_logger
from processors.base.settings import Settings, get_settings
from processors.base.topics import (
    ACTIVITIES,
    CLOCK,
    CLOCK_TICKS,
    COMPACTED,
    CONFIG,
    CONTRACT_TOPICS,
    DEADLETTER,
    ENROLMENTS,
    LEDGER_STEPS,
    OFFER_TARGETING,
    OFFER_USES,
    PROMOTION_USES,
    REDEMPTIONS,
    REWARD_STOCK,
    TRANSACTIONS,
    TopicSpec,
)
from processors.base.tuning import tune_gc
from processors.codec.avro import AvroCodec
from processors.config_feed import ConfigFeed
from processors.frontdoor import FrontDoor
from processors.runtime.batch import Agent, Batches
from processors.runtime.runner import Runner
from processors.runtime.stores import RocksStore
from processors.runtime.table import Table
from processors.runtime.topics import ensure_topics
from processors.runtime.worker import Worker

log = get_logger(__name__)
BATCH_MAX = 2000
TABLES = ("ledgers_by_member", "uses_by_offer", "stock_by_reward", "uses_by_promotion")
MEMBER_INPUTS = (ENROLMENTS, TRANSACTIONS, ACTIVITIES, REDEMPTIONS, LEDGER_STEPS, CLOCK_TICKS,
                 OFFER_TARGETING)  # fmt: skip


CHANGELOG_RECORD_MAX = 8 << 20
"""The largest record a changelog takes (and the worker's producer sends): 8 MiB."""


def changelog(settings: Settings, table: str) -> str:
    """A table's changelog topic (the name Faust gave it, so a worker upgraded from the Faust
    runtime reads back the states it wrote)."""
    return f"{settings.topic(settings.worker_app_id)}-{table}-changelog"


def consumer_groups(settings: Settings) -> dict[str, tuple[str, tuple[TopicSpec, ...]]]:
    """Each agent, by name: its consumer group and the topics it reads. The member agent keeps
    the worker's own group (and so the offsets a Faust worker committed)."""
    group = settings.topic(settings.worker_app_id)
    return {
        Members.name: (group, MEMBER_INPUTS),
        OfferUses.name: (f"{group}.offer-uses", (OFFER_USES,)),
        Days.name: (f"{group}.days", (CLOCK,)),
        # Its group keeps the name it had when it only fanned out static targeting.
        ConfigFanOut.name: (f"{group}.static-targeting", (CONFIG,)),
        RewardStocks.name: (f"{group}.reward-stock", (REWARD_STOCK,)),
        PromotionUsesAgent.name: (f"{group}.promotion-uses", (PROMOTION_USES,)),
    }


def build(settings: Settings) -> Worker:
    """The worker for `settings`: every agent with its topics, table and group."""
    codec = AvroCodec.with_history()
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        # A batch sends ~2,000 outputs, then ~2,000 states, and waits for their acks: 256 KiB
        # record batches put each partition's share in one or two. No linger: the sends of a
        # batch are queued before the sender task runs, so they share requests anyway
        # (bench-ledger: engine / loop 0.068 at 0 ms vs 0.066 at 5 ms, same run), while each
        # of a redemption's hops (member, reward stock, member) waited the linger out
        # (bench-redeem at 50/s: p50 57 -> 30 ms direct, 100 -> 35 ms with a code stock).
        max_batch_size=256 * 1024,
        linger_ms=0,
        # A promotion's journal (ADR 17, last addendum) is one record: room for the first save
        # of an entry stored with thousands of reservations inline (the changelogs allow it).
        max_request_size=CHANGELOG_RECORD_MAX,
    )
    feed = ConfigFeed(settings.bootstrap_servers, settings.topic(CONFIG.name), codec)
    # Each consumed topic → the contract topic it carries (prefixed names; ticks carry the clock).
    contract_topics = {settings.topic(spec.name): spec.name for spec in CONTRACT_TOPICS}
    contract_topics[settings.topic(CLOCK_TICKS.name)] = CLOCK.name
    door = FrontDoor(codec, producer, dead_letter_topic=settings.topic(DEADLETTER.name),
                     contract_topics=contract_topics)  # fmt: skip
    groups = consumer_groups(settings)
    partitions = settings.partitions

    def runner(agent: Agent[Any], table: Table | None = None) -> Runner:
        group_id, specs = groups[agent.name]
        batches = Batches(agent, codec=codec, door=door, producer=producer,
                          topic_name=settings.topic, table=table)  # fmt: skip
        return Runner(batches, bootstrap=settings.bootstrap_servers, group_id=group_id,
                      topics=[settings.topic(spec.name) for spec in specs],
                      batch_max=BATCH_MAX)  # fmt: skip

    # Member states on local disk: a million of them do not fit the heap (ADR 24). The offer
    # and reward tables hold one entry per offer or reward and stay in memory.
    members_changelog = changelog(settings, "ledgers_by_member")
    on_disk = RocksStore.for_process(settings.stack_dir / "state", members_changelog)
    members = Table("ledgers_by_member", members_changelog, partitions, on_disk)
    uses = Table("uses_by_offer", changelog(settings, "uses_by_offer"), partitions)
    stocks = Table("stock_by_reward", changelog(settings, "stock_by_reward"), partitions)
    codes = Table("uses_by_promotion", changelog(settings, "uses_by_promotion"), partitions)
    # Inputs that may name configuration published a moment before them (ADR 13, ADR 19).
    fresh = (settings.topic(OFFER_TARGETING.name), settings.topic(ENROLMENTS.name))
    runners = [
        runner(Members(feed.config, feed, *fresh), members),
        runner(OfferUses(), uses),
        runner(RewardStocks(), stocks),
        runner(PromotionUsesAgent(), codes),
        runner(Days(partitions)),
        runner(ConfigFanOut(feed, partitions)),
    ]
    return Worker(
        producer, feed, runners, http_host=settings.ops_http_host,
        http_port=settings.worker_http_port, stall_seconds=settings.stall_seconds,
    )  # fmt: skip


async def main(settings: Settings | None = None) -> None:
    """Run the worker until SIGTERM or SIGINT."""
    settings = settings or get_settings()
    await ensure_topics(
        settings.bootstrap_servers,
        {changelog(settings, table): (
            settings.partitions,
            {**COMPACTED, "max.message.bytes": str(CHANGELOG_RECORD_MAX)},
         ) for table in TABLES},
    )  # fmt: skip
    worker = build(settings)
    tune_gc()
    await worker.run()


if __name__ == "__main__":
    asyncio.run(main())
