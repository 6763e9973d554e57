"""A till's reservation of a shared code answered from this API process's lease
(docs/adr/0040-reservations-from-a-lease.md), in process: the command sink plays the
promotion's agent with its real rule (`codes.uses`) and hands its answers to the process's
answer reader, as Kafka would."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from processors.contract.base import Event
from processors.contract.internal import PromoCodeLeaseRequested
from processors.contract.internal import PromoCodeReservationRequested as Reserve
from processors.rules.codes import uses
from projections.api.answers import Answers
from projections.api.app import create_app
from projections.api.routes_carts import FixedConfig
from tests.cart_given import AT, cart, config
from tests.unit.test_promo_code_api import NO_DATABASE, SECRET, Store, promotion, staff

SHARED = {"codes": ["HOLI50"], "redemptions_per_code_max": 1000, "promotion_id": "HOLI",
          "event_id": "holi-1"}  # fmt: skip


class Heard(Answers):
    """The answer reader, fed by the agent below instead of a broker."""

    def __init__(self) -> None:
        super().__init__("127.0.0.1:1", {})

    async def run(self) -> None:
        self.reading.set()
        await asyncio.Event().wait()


class Agent:
    """The command sink: the promotion's agent deciding each request as it is written
    (`answering` False: reservations get no answer, as if the worker were slow)."""

    def __init__(self, answers: Heard, clock: Callable[[], datetime]) -> None:
        self.answers, self.clock = answers, clock
        self.state: uses.PromotionUses | None = None
        self.sent: list[Event] = []
        self.answering = True
        self.on_send: Callable[[], None] = lambda: None

    async def send(self, event: Event) -> None:
        self.on_send()
        self.sent.append(event)
        assert isinstance(event, Reserve | PromoCodeLeaseRequested)
        decided = uses.decide(self.state, event)
        self.state = decided.state
        if self.answering or isinstance(event, PromoCodeLeaseRequested):
            for answer in decided.emitted:
                self.answers.deliver(answer)


def app_for(agent: Agent, answers: Heard, clock: Callable[[], datetime], **promotion_: Any):  # type: ignore[no-untyped-def]
    configured = config()
    configured.apply(promotion(**(SHARED | promotion_)))
    return create_app(
        dsn=NO_DATABASE, api_secret=SECRET, clock=clock, command_sink=agent,
        config_source=FixedConfig(configured), code_store=Store(), decision_wait_s=0.5,
        decision_poll_s=0.001, answers=answers, code_lease_uses=10,
    )  # fmt: skip


def checkouts(client: TestClient, count: int, first: int = 0) -> list[dict[str, Any]]:
    found = []
    for n in range(first, first + count):
        body = cart(promo_codes=["HOLI50"], reserve=True, transaction_id=f"CART-{n}")
        response = client.post("/v1/carts/evaluate", json=body, headers=staff())
        assert response.status_code == 200, response.text
        [code] = response.json()["promo_codes"]
        found.append(code)
    return found


def wait_for(condition: Callable[[], bool]) -> None:
    for _ in range(200):
        if condition():
            return
        time.sleep(0.005)
    raise AssertionError("never happened")


def test_a_shared_code_is_reserved_from_the_lease_without_waiting_for_the_agent():
    answers = Heard()
    agent = Agent(answers, lambda: AT)
    with TestClient(app_for(agent, answers, lambda: AT)) as client:
        [first] = checkouts(client, 1)  # no lease yet: the agent answers; a lease is asked
        assert first["status"] == "reserved"
        wait_for(lambda: any(isinstance(e, PromoCodeLeaseRequested) for e in agent.sent))
        wait_for(lambda: bool(client.app.state.code_leases._held))  # type: ignore[attr-defined]
        agent.answering = False  # from here the agent answers no reservation
        found = checkouts(client, 5, first=1)
    assert [c["status"] for c in found] == ["reserved"] * 5
    assert {c["reserved_until"] for c in found} == {"2026-03-02T10:15:00Z"}
    from_lease = [e for e in agent.sent if isinstance(e, Reserve) and e.lease_id is not None]
    assert len(from_lease) == 5
    lease, _next = [e for e in agent.sent if isinstance(e, PromoCodeLeaseRequested)]  # 5 left
    assert lease.uses_wanted == 10
    assert lease.redemptions_per_code_max == 1000
    assert agent.state is not None  # the agent reserved every one of them from the lease
    assert agent.state.leases[lease.event_id].used == 5
    assert len(agent.state.reservations) == 6


def test_a_lease_half_used_asks_for_the_next_and_the_agent_never_counts_more_than_granted():
    answers = Heard()
    agent = Agent(answers, lambda: AT)
    with TestClient(app_for(agent, answers, lambda: AT)) as client:
        checkouts(client, 1)
        wait_for(lambda: bool(client.app.state.code_leases._held))  # type: ignore[attr-defined]
        checkouts(client, 6, first=1)  # 6 of 10 used: the next lease is asked
        wait_for(
            lambda: len([e for e in agent.sent if isinstance(e, PromoCodeLeaseRequested)]) == 2
        )
        found = checkouts(client, 12, first=7)
    assert {c["status"] for c in found} == {"reserved"}
    assert agent.state is not None
    assert all(lease.used <= lease.granted for lease in agent.state.leases.values())
    assert sum(lease.used for lease in agent.state.leases.values()) >= 15


def test_codes_the_agent_must_judge_alone_are_never_leased():
    for limits in ({"redemptions_per_code_max": 1}, {"redemptions_per_member_max": 1}):
        answers = Heard()
        agent = Agent(answers, lambda: AT)
        with TestClient(app_for(agent, answers, lambda: AT, **limits)) as client:
            found = checkouts(client, 3)
        assert found[0]["status"] == "reserved"
        assert not [e for e in agent.sent if isinstance(e, PromoCodeLeaseRequested)]
        assert all(e.lease_id is None for e in agent.sent if isinstance(e, Reserve))


def test_a_use_acknowledged_after_the_lease_s_margin_waits_for_the_agent():
    answers = Heard()
    now = [AT]
    agent = Agent(answers, lambda: now[0])
    with TestClient(app_for(agent, answers, lambda: now[0])) as client:
        checkouts(client, 1)
        wait_for(lambda: bool(client.app.state.code_leases._held))  # type: ignore[attr-defined]
        agent.answering = False

        def slow_write() -> None:  # the broker acknowledges 16 s later: past the margin
            if now[0] == AT:
                now[0] = AT + timedelta(seconds=16)

        agent.on_send = slow_write
        [late] = checkouts(client, 1, first=1)
    assert late["status"] == "pending"  # not told yes from the lease: the agent's answer is due
    sent = [e for e in agent.sent if isinstance(e, Reserve)]
    assert sent[-1].lease_id is not None
    assert len([e for e in sent if e.transaction_id == "CART-1"]) == 1  # written once


def test_an_answer_of_no_uses_leaves_the_code_to_the_agent_for_a_while():
    answers = Heard()
    agent = Agent(answers, lambda: AT)
    with TestClient(app_for(agent, answers, lambda: AT, redemptions_per_code_max=5)) as client:
        checkouts(client, 3)  # 5 left < the floor: the lease is granted no uses
        wait_for(lambda: not client.app.state.code_leases._asking)  # type: ignore[attr-defined]
        checkouts(client, 2, first=3)
    leases = [e for e in agent.sent if isinstance(e, PromoCodeLeaseRequested)]
    assert len(leases) == 1  # asked once, then quiet
    assert all(e.lease_id is None for e in agent.sent if isinstance(e, Reserve))
