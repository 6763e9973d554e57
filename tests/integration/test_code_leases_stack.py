"""Reservations from leases on the real stack (docs/adr/0040-reservations-from-a-lease.md):
two `loyalty api` processes lease uses of one shared code limited to 300 from the promotion's
agent and tell tills "reserved" from them, beside reservations the agent answers itself. Every
till told yes is committed by its purchase, never more than 300 uses are given, and once the
leases have ended every use comes back: exactly 300 tills are told yes in all, the rest
refused `code_exhausted`. The same with one API process SIGKILLed mid-run holding a lease (its
unassigned uses return when the lease ends), and with the worker SIGKILLed while it stores
the leases' parts."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from loyalty.audit import read_topic, uncommitted
from loyalty.bench.openloop import wait_until_ready
from loyalty.producing import publish_events
from loyalty.services import Services, free_port
from processors.codec.avro import AvroCodec
from processors.contract.config import PromotionCodesIssued
from processors.contract.internal import PromoCodeLeaseRequested, PromoCodeReservationRequested
from processors.contract.offers import PromoCodeRedeemed, PromoCodeRefused
from projections.api.auth import Role
from projections.api.code_leases import LEASE_SECONDS
from tests.integration.test_reward_stock import kill_when_written
from tests.integration.test_rewards_api import bearer, engine  # noqa: F401
from tests.integration.test_worker_runtime import until
from tests.rules.given import bought, program

pytestmark = pytest.mark.integration

LIMIT = 300
CODE = "HOLIMAN100"


def promotion(now: datetime) -> PromotionCodesIssued:
    return PromotionCodesIssued.model_validate({
        "event_id": "holi-lease-1", "occurred_at": now - timedelta(days=1),
        "promotion_id": "HOLI", "market": "CA", "codes": [CODE],
        "redemptions_per_code_max": LIMIT,
        "discount": {"kind": "AMOUNT_OFF_CART", "amount_off_cents": 500},
        "starts_at": now - timedelta(days=1), "ends_at": now + timedelta(days=30),
    })  # fmt: skip


def basket(tx: str) -> dict[str, Any]:
    return {
        "transaction_id": tx, "market": "CA", "currency": "CAD",
        "store": {"store_id": "S1", "country": "CA", "province": "ON"},
        "lines": [{"line_id": "1", "sku": "SKU-1", "quantity": "1", "unit_price_cents": 2500,
                   "amount_cents": 2500}],
        "promo_codes": [CODE.lower()], "reserve": True,
    }  # fmt: skip


async def reserve(http: httpx.AsyncClient, tx: str, headers: dict[str, str]) -> str:
    response = await http.post("/v1/carts/evaluate", json=basket(tx), headers=headers)
    assert response.status_code == 200, response.text
    [code] = response.json()["promo_codes"]
    return str(code["status"] if code["status"] != "refused" else code["reason"])


@pytest.mark.parametrize("killed", [None, "api", "worker"])
async def test_tills_told_yes_from_leases_are_committed_and_exactly_the_limit_is_given(
    engine,  # noqa: F811
    tmp_path,
    killed,
):
    now = datetime.now(UTC)
    services = Services(engine, tmp_path)
    worker = services.start("worker", "worker")
    services.start("projector", "project")
    ports = [free_port(), free_port()]
    apis = [services.start(f"api-{n}", "api", "--port", str(p)) for n, p in enumerate(ports)]
    staff = bearer(engine, "till-9", Role.STAFF)
    told: dict[str, str] = {}
    try:
        await publish_events(engine, [program(), promotion(now)])
        for api, port in zip(apis, ports, strict=True):
            await wait_until_ready(f"http://127.0.0.1:{port}", api)
        clients = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{p}", timeout=90) for p in ports]

        async def known() -> bool:
            preview = {**basket("preview"), "reserve": False}
            for http in clients:
                response = await http.post("/v1/carts/evaluate", json=preview, headers=staff)
                if response.status_code != 200 or response.json()["promo_codes"][0]["status"] \
                        != "applies":  # fmt: skip
                    return False
            return True

        assert await until(known, 120)
        # Phase 1: 200 tills, ten at a time, half on each process.
        for first in range(0, 200, 10):
            txs = [f"LT-{n}" for n in range(first, first + 10)]
            answers = await asyncio.gather(
                *(reserve(clients[n % 2], tx, staff) for n, tx in enumerate(txs))
            )
            told.update(zip(txs, answers, strict=True))
            if first == 100 and killed == "api":
                apis[1].kill()  # holding a lease it had not used up
                clients = [clients[0], clients[0]]
            if first == 20 and killed == "worker":
                await kill_when_written(worker, engine, "loyalty.internal.promotion-uses.v1")
                worker = services.start("worker", "worker")
        assert set(told.values()) == {"reserved"}, Counter(told.values())
        # Phase 2, once every lease of phase 1 has ended: tills until the code is spent.
        await asyncio.sleep(LEASE_SECONDS + 2)
        refused_in_a_row, n = 0, 200
        while refused_in_a_row < 20:
            tx = f"LT-{n}"
            told[tx] = await reserve(clients[0], tx, staff)
            refused_in_a_row = refused_in_a_row + 1 if told[tx] == "code_exhausted" else 0
            n += 1
        for http in clients:
            await http.aclose()
        # Every basket buys: those told yes commit their use, the others are refused.
        at = datetime.now(UTC)
        purchases = [
            bought("x", tx, cents=2500, at=at).model_copy(
                update={"member_id": None, "promo_codes": [CODE]}
            )
            for tx in told
        ]
        await publish_events(engine, purchases)

        async def settled() -> bool:
            return await uncommitted(engine) == 0

        assert await until(settled, 240), worker.log_tail()
    finally:
        services.stop()

    counted = Counter(told.values())
    assert counted["reserved"] == LIMIT, counted  # no use lost to a lease, none given twice
    assert set(counted) == {"reserved", "code_exhausted"}, counted
    codec = AvroCodec.with_history()
    offers = await read_topic(engine.bootstrap_servers, engine.topic("loyalty.offers.v1"), 8)
    events = {e.event_id: e for e in (codec.decode(v) for _, v in offers)}  # replays repeat
    used = [e for e in events.values() if isinstance(e, PromoCodeRedeemed)]
    refused = [e for e in events.values() if isinstance(e, PromoCodeRefused)]
    assert sorted(e.use_number for e in used) == list(range(1, LIMIT + 1))
    yes = {tx for tx, answer in told.items() if answer == "reserved"}
    assert {e.transaction_id for e in used} == yes  # every till told yes, and no other
    assert {e.reason.value for e in refused} == {"code_exhausted"}
    requests = await read_topic(
        engine.bootstrap_servers, engine.topic("loyalty.internal.promotion-uses.v1"), 8
    )
    asked = [codec.decode(v) for _, v in requests]
    holders = {e.holder for e in asked if isinstance(e, PromoCodeLeaseRequested)}
    from_leases = [e for e in asked if isinstance(e, PromoCodeReservationRequested) and e.lease_id]
    assert len(holders) >= 2  # both processes leased
    assert len({e.transaction_id for e in from_leases}) > LIMIT // 2  # most tills from leases
