"""Issue #12 on the real stack: a reward's stock is decided in arrival order by the agent
keyed by the reward (ADR 20), however many members redeem at once from every partition: each
code given once, exactly as many grants as codes, nobody refused is charged; and one member's
concurrent redemptions never take the balance below zero."""

from __future__ import annotations

from collections import Counter

import pytest

from loyalty.audit import read_topic, uncommitted
from loyalty.producing import publish_events
from loyalty.services import Services
from processors.codec.avro import AvroCodec
from processors.contract.ledger import LedgerEventRecorded, LedgerEventType
from processors.contract.outcomes import RequestAccepted, RequestRejected
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
    outcomes = {(o.member_id, o.command_id): o for o in read("loyalty.outcomes.v1")}
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
