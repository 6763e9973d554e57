"""Issue #13 on the real stack: 3,000 purchases (members and anonymous customers, over every
partition) carry a code limited to 1,000 uses, 500 of their baskets reserved at the till
first; the promotion's agent counts them in arrival order (ADR 23): exactly 1,000 uses,
numbered 1 to 1,000, every basket a till was told "yes" for among them, the rest refused
`code_exhausted`, each purchase answered once; the same with the worker SIGKILLed mid-run
(while it stores the reservations as parts of the promotion: ADR 17, addendum)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from loyalty.audit import read_topic, uncommitted
from loyalty.producing import publish_events
from loyalty.services import Services
from processors.codec.avro import AvroCodec
from processors.contract.config import PromotionCodesIssued
from processors.contract.internal import PromoCodeReservationRequested
from processors.contract.offers import PromoCodeRedeemed, PromoCodeRefused, PromoCodeReserved
from tests.integration.test_reward_stock import kill_when_written
from tests.integration.test_worker_runtime import until
from tests.rules.given import T0, bought, enrolled, program

pytestmark = pytest.mark.integration


def promotion() -> PromotionCodesIssued:
    return PromotionCodesIssued.model_validate({
        "event_id": "holi-1", "occurred_at": T0 - timedelta(days=1), "promotion_id": "HOLI",
        "market": "CA", "codes": ["HOLIMAN100"], "redemptions_per_code_max": 1000,
        "discount": {"kind": "AMOUNT_OFF_CART", "amount_off_cents": 500},
        "starts_at": T0 - timedelta(days=1), "ends_at": T0 + timedelta(days=30),
    })  # fmt: skip


def reservations(purchases: list) -> list[PromoCodeReservationRequested]:  # type: ignore[type-arg]
    """A till's reservation of the code for every sixth basket, asked before its purchase."""
    return [
        PromoCodeReservationRequested(
            event_id=f"res-{p.transaction_id}", occurred_at=T0 - timedelta(minutes=1),
            promotion_id="HOLI", code="HOLIMAN100", member_id=p.member_id,
            transaction_id=p.transaction_id, reserved_until=T0 + timedelta(minutes=15),
            discount_cents=500, redemptions_per_code_max=1000,
        )
        for p in purchases[::6]
    ]  # fmt: skip


def checkouts(n: int) -> list:  # type: ignore[type-arg]
    """`n` purchases with the code: half by members, half anonymous."""
    out = []
    for i in range(n):
        tx = bought(f"pc-{i // 2}", f"PC-T{i}", cents=2000)
        member = tx.member_id if i % 2 == 0 else None
        out.append(tx.model_copy(update={"member_id": member, "promo_codes": ["holiman100"]}))
    return out


@pytest.mark.parametrize("killed", [False, True], ids=["plain", "worker-killed"])
async def test_3000_checkouts_of_a_code_for_1000_are_1000_uses(isolated, tmp_path, killed):  # type: ignore[no-untyped-def]
    purchases = checkouts(3000)
    members = sorted({p.member_id for p in purchases if p.member_id})
    codec = AvroCodec.with_history()
    services = Services(isolated, tmp_path)
    worker = services.start("worker", "worker")

    async def settled() -> bool:
        return await uncommitted(isolated) == 0

    try:
        await publish_events(isolated, [program(), promotion()])
        await publish_events(isolated, [enrolled(m) for m in members])
        assert await until(settled, 180), worker.log_tail()
        await publish_events(isolated, reservations(purchases))
        await publish_events(isolated, purchases)
        if killed:  # as soon as the first reservations are asked for
            await kill_when_written(worker, isolated, "loyalty.internal.promotion-uses.v1")
            worker = services.start("worker", "worker")
        assert await until(settled, 240), worker.log_tail()
    finally:
        services.stop()

    records = await read_topic(isolated.bootstrap_servers, isolated.topic("loyalty.offers.v1"), 8)
    events = {e.event_id: e for e in (codec.decode(v) for _, v in records)}  # replays repeat
    used = [e for e in events.values() if isinstance(e, PromoCodeRedeemed)]
    refused = [e for e in events.values() if isinstance(e, PromoCodeRefused)]
    assert len({e.transaction_id for e in used + refused}) == len(used) + len(refused) == 3000
    assert sorted(e.use_number for e in used) == list(range(1, 1001))
    assert Counter(e.reason.value for e in refused) == {"code_exhausted": 2000}
    assert {e.member_id is None for e in used} == {True, False}  # both kinds of customer
    told_yes = {e.transaction_id for e in events.values() if isinstance(e, PromoCodeReserved)}
    assert len(told_yes) == 500
    assert told_yes <= {e.transaction_id for e in used}  # never overruled
