"""Issue #13 on the real stack: a discount offer with a total-uses cap of 100 gives exactly 100
discounts among more checkouts (docs/adr/0030-discount-offer-total-uses.md). The app as
`loyalty api` builds it, the real worker and projector, a topic prefix and a database of this
test's own. 250 members' tills evaluate their carts with `reserve`: the offer's agent
reserves 100 uses and refuses the rest, and every till is told what it will get; 5 baskets
told yes are cancelled (their reservations released) and 5 more tills are then told yes;
then the purchases land, the cancelled ones at full price, plus 45 whose till never asked:
exactly 100 discounts are completed, one for every till told yes and not cancelled, none
for the others. Waits are bounds far beyond what they take."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from loyalty.audit import audit, read_topic, uncommitted
from loyalty.producing import publish_events
from loyalty.services import Services
from processors.codec.avro import AvroCodec
from processors.contract.offer_definition import DiscountKind, OfferSchedule
from processors.contract.offers import OfferCompleted
from processors.contract.transactions import TransactionLine
from projections.api.auth import Role
from tests.integration.test_rewards_api import api, bearer, engine, projected  # noqa: F401
from tests.integration.test_worker_runtime import until
from tests.rules.given import bought, enrolled, program
from tests.rules.offers.given_offers import discount, offer, spend, usage

pytestmark = pytest.mark.integration

TILLS, LATE, UNASKED, CAP, OFF, CANCELLED = 250, 5, 45, 100, 300, 5


def first_100(now: datetime):  # type: ignore[no-untyped-def]
    return offer(
        "FIRST100_OFF",
        spend(1000),
        reward=discount(DiscountKind.AMOUNT_OFF_CART, amount_off_cents=OFF),
        usage=usage(uses_total_max=CAP),
        schedule=OfferSchedule(
            starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=30), display_at=None
        ),
    )


def basket(member: str) -> dict[str, Any]:
    return {
        "transaction_id": f"{member}-T", "member_id": member, "market": "CA", "currency": "CAD",
        "store": {"store_id": "S1", "country": "CA", "province": "ON"},
        "lines": [{"line_id": "1", "sku": "SKU", "quantity": "1", "unit_price_cents": 2000,
                   "amount_cents": 2000}],
        "reserve": True,
    }  # fmt: skip


async def uncommitted_is_zero(settings) -> bool:  # type: ignore[no-untyped-def]
    return await uncommitted(settings) == 0


def paid(member: str, at: datetime, discounted: bool):  # type: ignore[no-untyped-def]
    """The purchase as the till sends it: the discount it gave taken off the line."""
    off = OFF if discounted else 0
    line = TransactionLine(
        line_id="1", sku="SKU", quantity=1, unit_price_cents=2000, amount_cents=2000 - off,
        discount_cents=off,
    )  # fmt: skip
    return bought(member, f"{member}-T", line, at=at)


async def test_a_discount_offer_capped_at_100_gives_exactly_100_discounts(engine, tmp_path):  # noqa: F811
    now = datetime.now(UTC)
    members = [f"cap-{n}" for n in range(TILLS + LATE + UNASKED)]
    services = Services(engine, tmp_path)
    worker = services.start("worker", "worker")
    projector = services.start("projector", "project")
    staff = bearer(engine, "till", Role.STAFF)
    try:
        await publish_events(engine, [program(), first_100(now)])
        await publish_events(engine, [enrolled(m) for m in members])

        async def enrolled_all() -> bool:
            return await uncommitted(engine) == 0 and projected(
                engine, "SELECT count(*) FROM members"
            ) == len(members)

        assert await until(enrolled_all, 180), worker.log_tail() + projector.log_tail()
        async with api() as http:

            async def config_loaded() -> bool:  # a preview without `reserve` counts nothing
                preview = {**basket(members[-1]), "reserve": False}
                response = await http.post("/v1/carts/evaluate", json=preview, headers=staff)
                return response.status_code == 200

            assert await until(config_loaded, 60)
            gate = asyncio.Semaphore(25)

            async def evaluate(member: str) -> dict[str, Any]:
                async with gate:
                    response = await http.post(
                        "/v1/carts/evaluate", json=basket(member), headers=staff
                    )
                assert response.status_code == 200, response.text
                return response.json()  # type: ignore[no-any-return]

            answers = await asyncio.gather(*(evaluate(m) for m in members[:TILLS]))
            told_yes = {
                a["member_id"]
                for a in answers
                if a["offer_reservations"][0]["status"] == "reserved"
            }
            cancelled = sorted(told_yes)[:CANCELLED]
            released = [
                await http.delete(f"/v1/carts/{m}-T/reservations", headers=staff) for m in cancelled
            ]
            # The releases are on the offer's partition before the late tills' requests.
            assert await until(lambda: uncommitted_is_zero(engine), 60)
            late = [await evaluate(m) for m in members[TILLS : TILLS + LATE]]
        kept = (told_yes - set(cancelled)) | {
            a["member_id"] for a in late if a["offer_reservations"][0]["status"] == "reserved"
        }
        await publish_events(engine, [paid(m, now, discounted=m in kept) for m in members])

        async def answered() -> bool:
            return await uncommitted(engine) == 0

        assert await until(answered, 240), worker.log_tail() + projector.log_tail()
    finally:
        services.stop()
    report = await audit(engine)  # every reservation and use answered
    assert report.ok, report.unaccounted[:5]
    assert not {"OfferUseReservationRequested", "OfferUseReservationReleased"} & set(
        report.not_reconciled
    )

    statuses = sorted(a["offer_reservations"][0]["status"] for a in answers)
    assert statuses == ["refused"] * (TILLS - CAP) + ["reserved"] * CAP
    assert [r.json()["released_offers"] for r in released] == [["FIRST100_OFF"]] * CANCELLED
    assert [a["offer_reservations"][0]["status"] for a in late] == ["reserved"] * LATE
    for a in answers:  # a till's totals hold the discount only when it is reserved
        reserved = a["offer_reservations"][0]["status"] == "reserved"
        assert a["total_discount_cents"] == (OFF if reserved else 0), a
    codec = AvroCodec.with_history()
    topic = engine.topic("loyalty.offers.v1")
    records = await read_topic(engine.bootstrap_servers, topic, engine.partitions)
    events = {e.event_id: e for e in (codec.decode(v) for _, v in records if v is not None)}
    completed = [
        e for e in events.values()
        if isinstance(e, OfferCompleted) and e.offer_id == "FIRST100_OFF"
    ]  # fmt: skip
    assert len(completed) == CAP
    assert {e.member_id for e in completed} == kept  # every till told yes, and no other
    assert {e.discount_cents for e in completed} == {OFF}
