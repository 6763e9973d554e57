"""Issue #12 on the real stack: a reward's stock is decided in arrival order by the agent
keyed by the reward (ADR 20), however many members redeem at once from every partition: each
code given once, exactly as many grants as codes, nobody refused is charged; and one member's
concurrent redemptions never take the balance below zero."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from loyalty.audit import read_topic, uncommitted
from loyalty.producing import publish_events
from loyalty.services import Services
from processors.codec.avro import AvroCodec
from processors.contract.ledger import LedgerEventRecorded, LedgerEventType
from processors.contract.outcomes import RequestAccepted, RequestRejected
from processors.contract.redemptions import RequestType
from processors.contract.rewards import RewardGranted
from tests.integration.test_worker_runtime import until
from tests.rules.given import PROGRAM, bought, enrolled, program
from tests.rules.test_rewards import codes, redeem, reward

pytestmark = pytest.mark.integration

CODES = [f"STOCK-{n:03d}" for n in range(100)]


async def test_100_codes_for_300_members_at_once_are_100_grants_and_200_refusals(
    isolated, tmp_path
):  # type: ignore[no-untyped-def]
    members = [f"rs-{n}" for n in range(300)]
    services = Services(isolated, tmp_path)
    worker = services.start("worker", "worker")
    codec = AvroCodec.with_history()

    async def settle(events) -> None:  # type: ignore[no-untyped-def]
        await publish_events(isolated, events)

        async def done() -> bool:
            return await uncommitted(isolated) == 0

        assert await until(done, 180), worker.log_tail()

    try:
        await settle([program(), reward("STOCKED", uses_code_stock=True), codes("STOCKED", *CODES),
                      reward("FREE", points_cost=100)])  # fmt: skip
        await settle([e for m in members for e in (enrolled(m), bought(m, f"{m}-T", cents=50_000))]
                     + [enrolled("rich"), bought("rich", "rich-T", cents=50_000)])  # fmt: skip
        # Everyone at once: 300 members for 100 codes, and 20 redemptions of 100 points by one
        # member who has 500.
        requests = [redeem(m, "c1", "STOCKED") for m in members]
        requests += [redeem("rich", f"r{n}", "FREE") for n in range(20)]
        await settle(requests)
    finally:
        services.stop()

    def read(topic: str) -> list:  # type: ignore[type-arg]
        return [codec.decode(v) for _, v in records[topic]]

    records = {
        topic: await read_topic(isolated.bootstrap_servers, isolated.topic(topic), 8)
        for topic in ("loyalty.outcomes.v1", "loyalty.rewards.v1", "loyalty.ledger.v1")
    }
    outcomes = {(o.member_id, o.command_id): o for o in read("loyalty.outcomes.v1")
                if o.request_type is not RequestType.ENROLMENT}  # fmt: skip
    assert len(outcomes) == 320  # every request answered, once
    stocked = [o for (m, _), o in outcomes.items() if m != "rich"]
    accepted = [o for o in stocked if isinstance(o, RequestAccepted)]
    refused = [o for o in stocked if isinstance(o, RequestRejected)]
    assert (len(accepted), len(refused)) == (100, 200)
    assert {r.reason.value for r in refused} == {"out_of_stock"}

    grants = [g for g in read("loyalty.rewards.v1") if isinstance(g, RewardGranted)]
    given = Counter(g.code for g in grants if g.reward_id == "STOCKED")
    assert sorted(given) == CODES  # every code given, and
    assert set(given.values()) == {1}  # each once
    debits = Counter(
        e.member_id for e in read("loyalty.ledger.v1")
        if isinstance(e, LedgerEventRecorded) and e.event_type is LedgerEventType.POINTS_REDEMPTION
    )  # fmt: skip
    assert {o.member_id for o in accepted} == {m for m in debits if m != "rich"}  # only they paid

    rich = [o for (m, _), o in outcomes.items() if m == "rich"]
    assert Counter(type(o).__name__ for o in rich) == {"RequestAccepted": 5, "RequestRejected": 15}
    assert debits["rich"] == 5
    final = sorted((e for e in read("loyalty.ledger.v1") if isinstance(e, LedgerEventRecorded)
                    and e.member_id == "rich"), key=lambda e: e.sequence)  # fmt: skip
    balances = [b.balance for e in final for b in e.balances_after if b.program_id == PROGRAM]
    assert min(balances) >= 0
    assert balances[-1] == 0


async def _answered(settings, topic: str) -> int:  # type: ignore[no-untyped-def]
    """Records on `topic` now (all partitions)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    await consumer.start()
    try:
        tps = [TopicPartition(settings.topic(topic), p) for p in range(settings.partitions)]
        return sum((await consumer.end_offsets(tps)).values())
    finally:
        await consumer.stop()


async def kill_when_written(worker, settings, topic: str) -> None:  # type: ignore[no-untyped-def]
    """SIGKILL `worker` as soon as `topic` holds a record: one consumer asks, every 20 ms."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    await consumer.start()
    try:
        tps = [TopicPartition(settings.topic(topic), p) for p in range(settings.partitions)]
        for _ in range(3000):
            if sum((await consumer.end_offsets(tps)).values()) > 1:
                break
            await asyncio.sleep(0.02)
    finally:
        await consumer.stop()
    worker.kill()


async def test_a_worker_killed_during_2000_redemptions_grants_no_code_twice_and_pays_each_once(
    isolated, tmp_path
):  # type: ignore[no-untyped-def]
    members = [f"rk-{n}" for n in range(2000)]
    stock = [f"KILL-{n:03d}" for n in range(300)]
    codec = AvroCodec.with_history()
    services = Services(isolated, tmp_path)
    worker = services.start("worker", "worker")

    async def settled() -> bool:
        return await uncommitted(isolated) == 0

    try:
        await publish_events(isolated, [program(), reward("KILL", uses_code_stock=True),
                                        codes("KILL", *stock)])  # fmt: skip
        joined = [e for m in members for e in (enrolled(m), bought(m, f"{m}-T", cents=50_000))]
        await publish_events(isolated, joined)
        assert await until(settled, 180), worker.log_tail()
        enrolments_answered = await _answered(isolated, "loyalty.outcomes.v1")  # ADR 28
        await publish_events(isolated, [redeem(m, "c1", "KILL") for m in members])

        # Killed as soon as the first allocation requests are out: between the three steps.
        await kill_when_written(worker, isolated, "loyalty.internal.reward-stock.v1")
        at_kill = await _answered(isolated, "loyalty.outcomes.v1") - enrolments_answered
        worker = services.start("worker", "worker")
        assert await until(settled, 240), worker.log_tail()
    finally:
        services.stop()

    def read(topic: str) -> list:  # type: ignore[type-arg]
        return [codec.decode(v) for _, v in records[topic]]

    records = {
        topic: await read_topic(isolated.bootstrap_servers, isolated.topic(topic), 8)
        for topic in ("loyalty.outcomes.v1", "loyalty.rewards.v1", "loyalty.ledger.v1")
    }
    assert at_kill < len(members), "the kill came after the work was done"
    outcomes = {o.event_id: o for o in read("loyalty.outcomes.v1")  # a replay repeats ids
                if o.request_type is not RequestType.ENROLMENT}  # fmt: skip
    by_command = {(o.member_id, o.command_id) for o in outcomes.values()}
    assert len(by_command) == len(outcomes) == 2000  # every request answered, one answer each
    accepted = {o.member_id for o in outcomes.values() if isinstance(o, RequestAccepted)}
    grants = {g.event_id: g for g in read("loyalty.rewards.v1") if isinstance(g, RewardGranted)}
    codes_given = Counter(g.code for g in grants.values())
    assert set(codes_given.values()) == {1}  # no code granted twice
    assert len(grants) == len(accepted) == 300
    debits = {
        e.event_log_id: e for e in read("loyalty.ledger.v1")
        if isinstance(e, LedgerEventRecorded) and e.event_type is LedgerEventType.POINTS_REDEMPTION
    }  # fmt: skip
    paid = Counter(e.member_id for e in debits.values())
    assert set(paid.values()) == {1}  # each paid once
    # No debit without a grant, no grant without a debit.
    assert set(paid) == {g.member_id for g in grants.values()} == accepted
