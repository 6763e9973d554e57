"""End to end on the real broker: inputs in, the worker's ledger events out, equal to what the
pure rules decide for the same inputs; and a SIGKILL mid-stream loses and doubles no point."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from loyalty import stack
from loyalty.producing import publish_events
from loyalty.services import Services
from processors.base.settings import Settings
from processors.codec.avro import AvroCodec
from processors.contract.base import Event
from processors.contract.ledger import LedgerEventRecorded
from processors.contract.outcomes import RequestAccepted, RequestRejected
from processors.contract.redemptions import RequestType
from tests.rules.given import T0, Ledgers, bought, enrolled, program, redeem, returned, transfer

pytestmark = pytest.mark.integration
CODEC = AvroCodec()


class Collector:
    """Reads a topic from the offsets it had when created, keeping events that match."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, keep):  # type: ignore[no-untyped-def]
        self.bootstrap, self.topic, self.partitions, self.keep = bootstrap, topic, partitions, keep
        self.events: list[Event] = []
        self.consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        self.consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await self.consumer.start()
        parts = [TopicPartition(self.topic, p) for p in range(self.partitions)]
        self.consumer.assign(parts)
        for tp, offset in (await self.consumer.end_offsets(parts)).items():
            self.consumer.seek(tp, offset)

    async def poll(self, seconds: float = 0.5) -> None:
        assert self.consumer is not None
        for records in (await self.consumer.getmany(timeout_ms=int(seconds * 1000))).values():
            for record in records:
                event = CODEC.decode(record.value)
                if self.keep(event):
                    self.events.append(event)

    async def until(self, predicate, seconds: float) -> bool:  # type: ignore[no-untyped-def]
        deadline = asyncio.get_running_loop().time() + seconds
        while not predicate(self.events) and asyncio.get_running_loop().time() < deadline:
            await self.poll()
        return predicate(self.events)

    async def stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()


def requests_answered(events: list[Event]) -> list[Event]:
    """The outcomes answering requests and returns, without the enrolments' (ADR 28)."""
    return [e for e in events if getattr(e, "request_type", None) is not RequestType.ENROLMENT]


def final_balances(events: list[LedgerEventRecorded]) -> dict[str, int]:
    latest: dict[str, LedgerEventRecorded] = {}
    for event in events:
        if event.member_id not in latest or event.sequence > latest[event.member_id].sequence:
            latest[event.member_id] = event
    return {m: sum(b.balance for b in e.balances_after) for m, e in latest.items()}


@pytest.fixture
def run_id() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def isolated(stack_settings, run_id) -> Settings:
    """The stack with every topic under a prefix of this test's own: no history, no
    interference with other tests or with the demo."""
    settings = stack_settings.model_copy(update={"topic_prefix": f"t{run_id}."})
    stack.up(settings)
    return settings


async def test_the_worker_records_what_the_rules_decide(isolated, tmp_path, run_id):
    config = program(f"P_{run_id}", event_id=f"cfg-{run_id}")
    members = [f"{run_id}-m{n}" for n in range(6)]
    mine = lambda e: getattr(e, "member_id", "").startswith(run_id)  # noqa: E731
    await publish_events(isolated, [config])
    services = Services(isolated, tmp_path)
    ledger = Collector(
        isolated.bootstrap_servers, isolated.topic("loyalty.ledger.v1"), isolated.partitions, mine
    )
    outcomes = Collector(
        isolated.bootstrap_servers, isolated.topic("loyalty.outcomes.v1"), isolated.partitions, mine
    )
    await ledger.start()
    await outcomes.start()
    worker = services.start("worker", "worker")
    try:
        day_1 = T0 + timedelta(days=1)
        # Phases: topics are not ordered with each other, so each phase waits for the last.
        phases: list[list[Event]] = [
            [enrolled(m, programs=[config.program_id]) for m in members],
            [bought(m, f"{run_id}-T{n}", cents=10_000 + 1234 * n, at=T0 + timedelta(hours=n + 1))
             for n, m in enumerate(members)],
            [
                redeem(members[0], 0, f"{run_id}-c1", at=day_1, **{config.program_id: 100}),
                redeem(members[1], 0, f"{run_id}-c2", at=day_1, **{config.program_id: 900}),
                returned(members[2], f"{run_id}-T2", f"{run_id}-R2", ("1", 5000), at=day_1),
            ],
            [transfer(members[3], members[4], 50, f"{run_id}-x1", at=T0 + timedelta(days=3))
             .model_copy(update={"program_id": config.program_id})],
        ]  # fmt: skip
        expected = Ledgers({config.program_id: config})
        for phase in phases:
            expected.apply(*phase)
            want = {e.event_log_id for e in expected.emitted if isinstance(e, LedgerEventRecorded)}
            await publish_events(isolated, phase)
            arrived = await ledger.until(
                lambda es, want=want: {e.event_log_id for e in es} >= want, 120
            )
            missing = want - {e.event_log_id for e in ledger.events}
            assert arrived, f"missing {len(missing)} ledger events\n{worker.log_tail()}"
        want = {
            e.event_log_id: e.points_on_event
            for e in expected.emitted
            if isinstance(e, LedgerEventRecorded)
        }
        await outcomes.until(lambda es: len(requests_answered(es)) >= 4, 30)
    finally:
        services.stop()
        await ledger.stop()
        await outcomes.stop()

    got = {e.event_log_id: e.points_on_event for e in ledger.events}
    assert got == want
    assert final_balances(ledger.events) == {
        m: expected.balance(m, program_id=config.program_id) for m in members
    }
    answers = {(type(e).__name__, e.command_id) for e in requests_answered(outcomes.events)}
    assert answers == {
        ("RequestAccepted", f"{run_id}-c1"),
        ("RequestRejected", f"{run_id}-c2"),
        ("RequestAccepted", f"{run_id}-x1"),
        ("RequestAccepted", f"{run_id}-R2"),  # the return, answered (ADR 43)
    }
    assert all(isinstance(e, RequestAccepted | RequestRejected) for e in outcomes.events)


async def test_a_worker_killed_mid_stream_loses_and_doubles_no_point(isolated, tmp_path, run_id):
    config = program(f"K_{run_id}", event_id=f"cfg-k-{run_id}")
    members = [f"{run_id}-k{n}" for n in range(200)]
    enrolments = [enrolled(m, programs=[config.program_id]) for m in members]
    purchases = [
        bought(m, f"{run_id}-{m}-{i}", cents=100 * (i + 1) + 49, at=T0 + timedelta(minutes=i))
        for i in range(49) for m in members
    ]  # fmt: skip
    assert len(enrolments) + len(purchases) == 10_000
    expected = Ledgers({config.program_id: config})
    expected.apply(*enrolments, *purchases)
    want_ids = {e.event_log_id for e in expected.emitted if isinstance(e, LedgerEventRecorded)}

    mine = lambda e: getattr(e, "member_id", "").startswith(f"{run_id}-k")  # noqa: E731
    ledger = Collector(
        isolated.bootstrap_servers, isolated.topic("loyalty.ledger.v1"), isolated.partitions, mine
    )
    await ledger.start()
    await publish_events(isolated, [config])
    services = Services(isolated, tmp_path)
    worker = services.start("worker", "worker")
    try:
        await publish_events(isolated, enrolments)

        async def feed() -> None:  # under load: purchases keep coming through the kill
            for start in range(0, len(purchases), 500):
                await publish_events(isolated, purchases[start : start + 500])
                await asyncio.sleep(0.1)

        feeding = asyncio.create_task(feed())
        assert await ledger.until(lambda es: len({e.event_log_id for e in es}) >= 3000, 180), (
            worker.log_tail()
        )
        worker.kill()
        seen_at_kill = len({e.event_log_id for e in ledger.events})
        restarted = services.start("worker-restarted", "worker")
        await feeding
        done = await ledger.until(lambda es: {e.event_log_id for e in es} >= want_ids, 300)
        assert done, restarted.log_tail()
    finally:
        services.stop()
        await ledger.stop()

    got_ids = {e.event_log_id for e in ledger.events}
    assert got_ids == want_ids  # nothing lost, nothing extra
    assert seen_at_kill < len(want_ids)  # the kill really happened mid-stream
    balances = final_balances(ledger.events)
    assert balances == {m: expected.balance(m, program_id=config.program_id) for m in members}
    # Redelivered outputs keep their ids and content: a duplicate is the same event again.
    by_id: dict[str, LedgerEventRecorded] = {}
    for event in ledger.events:
        assert by_id.setdefault(event.event_log_id, event) == event
