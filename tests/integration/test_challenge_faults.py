"""A challenge's completions and awards exactly once on the real stack through a crash
(docs/adr/0027-challenges.md): members make visits towards a challenge they may complete many
times while the worker is SIGKILLed mid-stream and restarted; every completion the pure rules
give is on the offers topic once, with the same content, and each is paid by exactly one
CHALLENGE_AWARD in the ledger, as the rules say."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from loyalty.producing import publish_events
from loyalty.services import Services
from processors.contract.ledger import LedgerEventRecorded, LedgerEventType
from processors.contract.offer_definition import Behaviour, BehaviourKind
from processors.contract.offers import ChallengeCompleted
from processors.simulation import Simulation
from tests.integration.test_worker_ledger import Collector
from tests.rules.given import T0, bought, enrolled, program
from tests.rules.test_challenges import challenge

pytestmark = pytest.mark.integration

MEMBERS, VISITS_EACH = 150, 30


async def test_a_worker_killed_mid_stream_completes_and_pays_each_challenge_once(
    isolated, tmp_path
):
    run = isolated.topic_prefix.strip(".")
    every_third = Behaviour(kind=BehaviourKind.VISITS, count_min=3)
    config = [program(), challenge("VISITS3_MANY", every_third, completions_per_member_max=1000)]
    members = [f"{run}-c{n}" for n in range(MEMBERS)]
    enrolments = [enrolled(m) for m in members]
    visits = [
        bought(m, f"{m}-{i}", cents=500, at=T0 + timedelta(minutes=i))
        for i in range(VISITS_EACH) for m in members
    ]  # fmt: skip
    expected = Simulation()
    expected.run(config)
    said = expected.run([*enrolments, *visits])
    want = {e.event_id: e for e in said if isinstance(e, ChallengeCompleted)}
    paid = {
        e.event_log_id: e
        for e in said
        if isinstance(e, LedgerEventRecorded) and e.event_type is LedgerEventType.CHALLENGE_AWARD
    }
    assert len(want) == MEMBERS * VISITS_EACH // 3 == len(paid)

    def ours(event) -> bool:  # type: ignore[no-untyped-def]
        return getattr(event, "member_id", "").startswith(f"{run}-c")

    offers = Collector(isolated.bootstrap_servers, isolated.topic("loyalty.offers.v1"),
                       isolated.partitions, ours)  # fmt: skip
    ledger = Collector(isolated.bootstrap_servers, isolated.topic("loyalty.ledger.v1"),
                       isolated.partitions, ours)  # fmt: skip
    await offers.start()
    await ledger.start()
    services = Services(isolated, tmp_path)
    await publish_events(isolated, [*config, *enrolments])
    worker = services.start("worker", "worker")
    try:
        for start in range(0, len(visits), 500):
            await publish_events(isolated, visits[start : start + 500])
            await asyncio.sleep(0.1)

        def completions(events) -> int:  # type: ignore[no-untyped-def]
            return len({e.event_id for e in events if isinstance(e, ChallengeCompleted)})

        assert await offers.until(lambda es: completions(es) >= len(want) // 3, 180), (
            worker.log_tail()
        )
        worker.kill()  # SIGKILL mid-stream: nothing committed after the last batch survives
        worker = services.start("worker-again", "worker")
        assert await offers.until(lambda es: completions(es) >= len(want), 300), worker.log_tail()
        assert await ledger.until(lambda es: {e.event_log_id for e in es} >= set(paid), 300), (
            worker.log_tail()
        )
    finally:
        services.stop()
        await offers.stop()
        await ledger.stop()

    got: dict[str, ChallengeCompleted] = {}
    for event in offers.events:
        if isinstance(event, ChallengeCompleted):
            assert got.setdefault(event.event_id, event) == event  # a redelivery is the same
    assert got == want
    awards = [
        e
        for e in ledger.events
        if isinstance(e, LedgerEventRecorded) and e.event_type is LedgerEventType.CHALLENGE_AWARD
    ]
    assert {e.event_log_id for e in awards} == set(paid)
    assert {e.cause_event_id for e in awards} == set(want)  # each completion paid, by one event
