"""The Faust app: topics, tables and agents wired together. Wiring only; no rules here.

Agents:
- `apply_to_ledgers`: member-keyed inputs (enrolments, transactions, activities, redemptions,
  the internal ledger steps and clock ticks) → member rules (ledger and offers) → ledger,
  offers, outcomes and step events;
- `decide_offer_uses`: requests for uses of offers with a total-uses limit or a budget, keyed
  by offer → grants, denials, OfferBudgetExhausted, in arrival order (ADR 14);
- `fan_out_days`: each `DayStarted` copied to every partition of the clock-ticks topic, so the
  daily run reaches every member partition;
- `fan_out_static_targeting`: each publication with a static audience copied to every
  partition of the offer-targeting topic, so members who never act are decided too (ADR 13).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

import faust
from aiokafka.partitioner import murmur2

from loyalty.logs import get_logger
from loyalty.runtime import tune_gc
from loyalty.settings import get_settings
from loyalty.topics import (
    ACTIVITIES,
    CLOCK,
    CLOCK_TICKS,
    CONFIG,
    CONTRACT_TOPICS,
    DEADLETTER,
    ENROLMENTS,
    LEDGER_STEPS,
    OFFER_TARGETING,
    OFFER_USES,
    REDEMPTIONS,
    TRANSACTIONS,
)
from processors.agents.ledger_batch import LedgerBatch
from processors.agents.offer_uses import OfferUsesBatch
from processors.codec.avro import AvroCodec
from processors.config_feed import ConfigFeed
from processors.contract.config import OfferPublished
from processors.frontdoor import Delivered, FrontDoor
from processors.rules.offers.targeting import targeting_tick

settings = get_settings()
log = get_logger(__name__)
PARTITIONS = settings.partitions
BATCH_MAX = 2000
BATCH_WITHIN_SECONDS = 0.05

app = faust.App(
    # Prefixed like the topics: its consumer group and table changelogs belong to them.
    settings.topic(settings.worker_app_id),
    broker=f"kafka://{settings.bootstrap_servers}",
    store="memory://",
    topic_partitions=PARTITIONS,
    # Faust declares only its own internal topics (table changelogs, the assignor's); the
    # contract's topics are created by `loyalty stack up` from loyalty.topics.
    topic_allow_declare=True,
    consumer_auto_offset_reset="earliest",
    producer_acks=-1,
    # A batch sends ~2,000 outputs, then ~2,000 states, and waits for their acks: 256 KiB
    # record batches (Faust's default is 16 KiB) put each partition's share in one or two
    # batches; 5 ms linger costs at most 5 ms per acknowledgement wait.
    producer_max_batch_size=256 * 1024,
    producer_linger=0.005,
    processing_guarantee="at_least_once",
    web_enabled=False,
    stream_buffer_maxsize=BATCH_MAX * 2,
    # Bytes everywhere: the codec (Avro, JSON state) is ours. Set app-wide because Faust's
    # changelog recovery reads with the app's serializers, not the table schema's.
    key_serializer="raw",
    value_serializer="raw",
    # A crashed worker's partitions are reassigned after this, not after the 60 s default.
    broker_session_timeout=10.0,
    broker_heartbeat_interval=2.0,
)

_raw: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw",
                        "value_serializer": "raw"}  # fmt: skip
member_inputs = app.topic(
    *(settings.topic(spec.name)
      for spec in (ENROLMENTS, TRANSACTIONS, ACTIVITIES, REDEMPTIONS, LEDGER_STEPS, CLOCK_TICKS,
                   OFFER_TARGETING)),
    partitions=PARTITIONS, **_raw,
)  # fmt: skip
days = app.topic(settings.topic(CLOCK.name), partitions=1, **_raw)
offer_uses = app.topic(settings.topic(OFFER_USES.name), partitions=PARTITIONS, **_raw)
publications = app.topic(settings.topic(CONFIG.name), partitions=1, **_raw)

ledgers_by_member = app.Table(
    "ledgers_by_member",
    default=None,
    partitions=PARTITIONS,
    # Written from batches (no current event): the key's own partition, as producers use.
    use_partitioner=True,
    # bytes → Faust's "raw" serializer, also when it recovers the table from its changelog.
    key_type=bytes,
    value_type=bytes,
)  # fmt: skip

# An offer's total uses and budget (ADR 14), keyed by offer_id; written like the member table.
uses_by_offer = app.Table(
    "uses_by_offer", default=None, partitions=PARTITIONS, use_partitioner=True,
    key_type=bytes, value_type=bytes,
)  # fmt: skip

codec = AvroCodec()
feed = ConfigFeed(settings.bootstrap_servers, settings.topic(CONFIG.name), codec)


class _FaustSend:
    """aiokafka-style `send(topic, value, key=)` over Faust's producer, for the front door."""

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> Any:
        return await app.producer.send(topic, key, value, None, None, None)


async def _send(contract_topic: str, value: bytes, key: bytes) -> Any:
    return await app.producer.send(settings.topic(contract_topic), key, value, None, None, None)


# Each consumed topic → the contract topic it carries (prefixed names; ticks carry the clock).
_contract_topics = {settings.topic(spec.name): spec.name for spec in CONTRACT_TOPICS}
_contract_topics[settings.topic(CLOCK_TICKS.name)] = CLOCK.name
door = FrontDoor(
    codec,
    _FaustSend(),
    dead_letter_topic=settings.topic(DEADLETTER.name),
    contract_topics=_contract_topics,
)
batches = LedgerBatch(codec, door, _send, feed.config)
offer_batches = OfferUsesBatch(codec, door, _send)


@app.task  # type: ignore[untyped-decorator]
async def follow_config() -> None:
    """Keep every worker's programmes and offer catalogue current."""
    await feed.run()


def _load(member: str) -> bytes | None:
    raw: bytes | None = ledgers_by_member.get(member.encode())
    return raw


def _members_of(partition: int) -> Iterable[str]:
    for key in list(ledgers_by_member.keys()):
        if (murmur2(key) & 0x7FFFFFFF) % PARTITIONS == partition:
            yield key.decode()


async def _save(states: Mapping[str, bytes], table: Any = ledgers_by_member) -> None:
    """Write changed states: to the table's changelog, all acknowledged, then locally.

    The table's own `__setitem__` would queue one changelog message per member in Faust's
    producer buffer, which Faust drains (beyond 100 messages) one message and one event-loop
    round at a time, each flushed as its own produce request; writing the changelog here sends
    them in one go and waits once. Same topic, key and partitioner as the table's, so recovery
    reads them back unchanged; Faust still flushes the producer before it commits offsets.
    """
    changelog = table.changelog_topic.get_topic_name()
    acks = [
        await app.producer.send(changelog, member.encode(), raw, None, None, None)
        for member, raw in states.items()
    ]
    await asyncio.gather(*acks)
    store = table.data  # the local copy, without a second changelog message
    for member, raw in states.items():
        store[member.encode()] = raw


_targeting_topic = settings.topic(OFFER_TARGETING.name)


@app.agent(member_inputs, concurrency=1)
async def apply_to_ledgers(stream: faust.StreamT[bytes]) -> None:
    """Member inputs → member rules → outputs acknowledged → states saved."""
    await feed.ready.wait()
    tune_gc()
    async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_SECONDS):  # type: ignore[attr-defined]
        records = [
            Delivered(event.message.topic, event.message.partition, event.message.offset,
                      event.message.key, event.message.value, int(event.message.timestamp * 1000))
            for event in events
        ]  # fmt: skip
        # A targeting tick names an offer published a moment ago: the feed must know it first.
        ticks = any(record.topic == _targeting_topic for record in records)
        if ticks and not await feed.catch_up():
            log.warning("worker.config_behind", reason="targeting tick before its offer")
        result = await batches.run(records, _load, _members_of)
        await _save(result.states)


def _load_offer(offer_id: str) -> bytes | None:
    raw: bytes | None = uses_by_offer.get(offer_id.encode())
    return raw


@app.agent(offer_uses, concurrency=1)
async def decide_offer_uses(stream: faust.StreamT[bytes]) -> None:
    """Offer-use requests → each offer's decision, in arrival order → answers acknowledged →
    offer states saved (ADR 14)."""
    async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_SECONDS):  # type: ignore[attr-defined]
        records = [
            Delivered(event.message.topic, event.message.partition, event.message.offset,
                      event.message.key, event.message.value, int(event.message.timestamp * 1000))
            for event in events
        ]  # fmt: skip
        result = await offer_batches.run(records, _load_offer)
        await _save(result.states, uses_by_offer)


@app.agent(days, concurrency=1)
async def fan_out_days(stream: faust.StreamT[bytes]) -> None:
    """Copy each day to every member partition (its key stays the market)."""
    async for event in stream.events():
        ticks = settings.topic(CLOCK_TICKS.name)
        message = event.message
        pending = [
            await app.producer.send(ticks, message.key, message.value, partition, None, None)
            for partition in range(PARTITIONS)
        ]
        for future in pending:
            await future


@app.agent(publications, concurrency=1)
async def fan_out_static_targeting(stream: faust.StreamT[bytes]) -> None:
    """Copy each publication with a static audience to every member partition, as an
    `OfferTargetingTick` keyed by the offer (ADR 13); the rules decide, this only routes."""
    async for event in stream.events():
        try:  # a refused config record is the config feed's to report; nothing to route here
            published = codec.decode(event.message.value)
        except Exception:  # noqa: BLE001, S112
            continue
        if not isinstance(published, OfferPublished):
            continue
        tick = targeting_tick(published)
        if tick is None:
            continue
        # The members' partitions judge the offer from this process's catalogue: wait (briefly)
        # until it holds the offer; a member that misses it is decided at its first behaviour.
        for _ in range(100):
            if feed.config.catalogue.get(published.offer_id) is not None:
                break
            await asyncio.sleep(0.05)
        raw, key = codec.encode(tick), tick.partition_key().encode()
        topic = settings.topic(OFFER_TARGETING.name)
        pending = [
            await app.producer.send(topic, key, raw, partition, None, None)
            for partition in range(PARTITIONS)
        ]
        for future in pending:
            await future
