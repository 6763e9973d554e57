"""Reward stores through the HTTP API, end to end on the real stack (seed 002,
docs/adr/0033-reward-store-api.md): the app as `loyalty api` builds it, the real worker
deciding, the real projector filling the tables, in a database and under topics of this test's
own (`engine`, as the reward redemption tests set it up).

A store CAFE (configured, open to all) sells a MASS offer (300 points, $2 off a basket of $5 or
more) and an offer for an audience nobody was uploaded to. A member with 1,000 points sees the
store and both offers, buys the first (201 with the issued offer), a repeat of the key is 409
with the original, the second is refused `not_eligible`; a member with 100 points is refused
`insufficient_points`; a member token reads and buys only for its own member. Then the till
locks the instance to a basket (another basket is refused `reward_locked`; the till's cart
preview shows the discount to that basket only), that transaction gets the discount once, a
second one carrying the instance nothing, and redeeming it again is 409 `duplicate_request`.

The API waits for decisions far beyond what they take here (`LOYALTY_API_DECISION_WAIT_MS`),
and every wait below is for a state, so the answers do not depend on the machine's speed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from loyalty.audit import uncommitted
from loyalty.producing import publish_events
from loyalty.services import Services
from processors.contract.offer_definition import (
    EVERGREEN_ENDS_AT,
    DiscountKind,
    OfferSchedule,
    OfferTargeting,
    OfferUsageControls,
    RewardStoreListing,
    TargetingKind,
    TargetingTiming,
)
from projections.api.auth import Role
from tests.cart_given import cart
from tests.integration.test_rewards_api import api, bearer, engine, projected
from tests.integration.test_worker_runtime import until
from tests.rules.given import bought, enrolled, program
from tests.rules.offers.given_offers import discount, offer, spend
from tests.rules.test_reward_stores import reward_store

pytestmark = pytest.mark.integration

__all__ = ["engine"]  # the fixture, shared with the reward redemption tests

NOW = datetime.now(UTC).replace(microsecond=0)
RICH, POOR = "rs-rich", "rs-poor"
MUFFIN, VIP = "MUFFIN_HALF_OFF", "VIP_ONLY"


def store_offer(offer_id: str, **changes: Any):  # type: ignore[no-untyped-def]
    """An offer CAFE sells for 300 points, live from yesterday with no end."""
    return offer(
        offer_id, spend(500),
        reward=discount(DiscountKind.AMOUNT_OFF_CART, amount_off_cents=200),
        reward_store=RewardStoreListing(reward_store_id="CAFE", points_cost=300),
        schedule=OfferSchedule(
            starts_at=NOW - timedelta(days=1), ends_at=EVERGREEN_ENDS_AT, display_at=None
        ),
        occurred_at=NOW - timedelta(days=2), event_id=f"pub-{offer_id}",
        usage=OfferUsageControls(uses_per_member_max=2), **changes,
    )  # fmt: skip


def cafe():  # type: ignore[no-untyped-def]
    """The store CAFE, configured and open to every member of the programme."""
    return reward_store("CAFE", occurred_at=NOW - timedelta(days=2),
                        available_from=NOW - timedelta(days=2))  # fmt: skip


def paid(member: str, tx: str, tokens: list[str]):  # type: ignore[no-untyped-def]
    return bought(member, tx, cents=1000, at=NOW).model_copy(
        update={"redemption_tokens": tokens, "event_id": f"tx-{tx}"}
    )


async def buy(
    http: httpx.AsyncClient, caller: dict[str, str], key: str, offer_id: str = MUFFIN, **query: str
) -> httpx.Response:
    return await http.post(
        f"/v1/reward-stores/CAFE/offers/{offer_id}/purchase",
        params=query,
        headers={**caller, "Idempotency-Key": key},
    )


async def test_buy_a_store_offer_then_lock_it_for_one_transaction_that_uses_it_once(
    engine, tmp_path
):
    rich, poor = bearer(engine, RICH), bearer(engine, POOR)
    services = Services(engine, tmp_path)
    worker = services.start("worker", "worker")
    projector = services.start("projector", "project")
    try:
        vip = OfferTargeting(
            kind=TargetingKind.AUDIENCE_LIST, timing=TargetingTiming.STATIC, audience_id="NOBODY"
        )
        await publish_events(
            engine,
            [
                program(), cafe(), store_offer(MUFFIN),
                store_offer(VIP, targeting=vip, rank=6),
            ],
        )  # fmt: skip
        earned = NOW - timedelta(hours=1)
        await publish_events(engine, [
            enrolled(RICH), bought(RICH, "RS-EARN-1", cents=100_000, at=earned),
            enrolled(POOR), bought(POOR, "RS-EARN-2", cents=10_000, at=earned),
        ])  # fmt: skip

        async def funded() -> bool:
            both = "SELECT count(*) FROM member_balances WHERE balance IN (1000, 100)"
            return await uncommitted(engine) == 0 and projected(engine, both) == 2

        assert await until(funded, 180), worker.log_tail() + projector.log_tail()

        async with api() as http:

            async def configured() -> bool:  # the API's config feed has caught up
                answer = await http.get("/v1/reward-stores", headers=rich)
                return answer.status_code != 503

            assert await until(configured, 60)
            stores = await http.get("/v1/reward-stores", headers=rich)
            offers = await http.get("/v1/reward-stores/CAFE/offers", headers=rich)
            first = await buy(http, rich, "rs-k1")
            again = await buy(http, rich, "rs-k1")
            not_targeted = await buy(http, rich, "rs-k2", offer_id=VIP)
            too_poor = await buy(http, poor, "rs-k1")
            later = await http.get(
                "/v1/members/rs-rich/reward-store-purchases/rs-k1",
                headers=bearer(engine, "care", Role.STAFF),
            )
            bola = [
                await buy(http, rich, "rs-k3", member_id=POOR),
                await http.get("/v1/reward-stores", params={"member_id": POOR}, headers=rich),
                await http.get(f"/v1/members/{POOR}/issued-offers", headers=rich),
                await http.get(f"/v1/members/{POOR}/reward-store-purchases/rs-k1", headers=rich),
            ]
            after = await http.get("/v1/reward-stores/CAFE/offers", headers=rich)
            issued = first.json()["issued_offer"]["issued_offer_id"]

            # The till (a till token) locks the instance to its basket; another basket is
            # refused while the lock holds; then the basket and another one carrying the
            # same instance are completed. The till reads none of the member's data.
            till = bearer(engine, "till-0042", Role.TILL)
            peek = await http.get(f"/v1/members/{RICH}/issued-offers", headers=till)
            lock_path = f"/v1/members/{RICH}/issued-offers/{issued}/lock"
            basket = {"transaction_id": "RS-T-LOCKED", "store_id": "S1", "till_id": "T1"}
            locked_now = await http.post(
                lock_path, json=basket, headers={**till, "Idempotency-Key": "rs-lock-1"}
            )
            other_basket = await http.post(
                lock_path, json=basket | {"transaction_id": "RS-T-OTHER"},
                headers={**till, "Idempotency-Key": "rs-lock-2"},
            )  # fmt: skip
            foreign = await http.post(
                lock_path, json=basket, headers={**poor, "Idempotency-Key": "rs-lock-3"}
            )

            async def status_of_instance() -> str:
                page = await http.get(f"/v1/members/{RICH}/issued-offers", headers=rich)
                return str(page.json()["issued_offers"][0]["status"])

            locked = await http.get(f"/v1/members/{RICH}/issued-offers", headers=rich)
            previews = [
                await http.post(
                    "/v1/carts/evaluate",
                    headers=till,
                    json=cart(
                        RICH,
                        transaction_id=tx,
                        redemption_tokens=[issued],
                        occurred_at=datetime.now(UTC).isoformat(),
                    ),
                )
                for tx in ("RS-T-LOCKED", "RS-T-OTHER")
            ]
            await publish_events(engine, [paid(RICH, "RS-T-LOCKED", [issued])])
            await publish_events(engine, [paid(RICH, "RS-T-AGAIN", [issued])])

            async def both_seen() -> bool:
                again_seen = (
                    "SELECT count(*) FROM ledger_events WHERE transaction_id = 'RS-T-AGAIN'"
                )
                return (
                    await uncommitted(engine) == 0
                    and projected(engine, again_seen) == 1
                    and await status_of_instance() == "USED"
                )

            assert await until(both_seen, 180), worker.log_tail() + projector.log_tail()
            used = await http.get(f"/v1/members/{RICH}/issued-offers", headers=rich)
            reused = await http.post(
                f"/v1/members/{RICH}/issued-offers/{issued}/redeem",
                json={"transaction_id": "RS-T-THIRD"},
                headers={**till, "Idempotency-Key": "rs-redeem-1"},
            )
            # No body at all is `{}` (every field optional): not a 400 (found by a user trial).
            bodiless = await http.post(
                f"/v1/members/{RICH}/issued-offers/{issued}/redeem",
                headers={**till, "Idempotency-Key": "rs-redeem-2"},
            )
    finally:
        services.stop()

    assert peek.status_code == 403, peek.text
    assert stores.status_code == 200, stores.text
    (listed,) = stores.json()["reward_stores"]
    assert {k: v for k, v in listed.items() if k != "copy"} == {
        "reward_store_id": "CAFE", "market": "CA", "program_id": "CA_MAIN",
        "category": "REGULAR", "available_until": None, "offers_for_member": 1,
        "offers_member_may_buy": 1, "cheapest_points_cost": 300,
    }  # fmt: skip
    assert listed["copy"]["headline"] == "The café"
    assert offers.status_code == 200, offers.text
    muffin, vip_offer = offers.json()["offers"]
    assert (muffin["offer_id"], muffin["points_cost"], muffin["copy"]["locale"]) == (
        MUFFIN, 300, "en",
    )  # fmt: skip
    assert muffin["member"] == {
        "targeted": True, "uses_left": 2, "balance": 1000, "affordable": True, "may_buy": True,
        "refusal": None, "detail": None,
    }  # fmt: skip
    assert (vip_offer["member"]["targeted"], vip_offer["member"]["refusal"]) == (
        False, "not_eligible",
    )  # fmt: skip

    assert first.status_code == 201, first.text
    body = first.json()
    assert first.headers["Location"] == body["status_url"]
    assert (body["status"], body["offer_id"], body["reward_store_id"]) == (
        "accepted",
        MUFFIN,
        "CAFE",
    )
    assert body["issued_offer"]["status"] == "ISSUED"
    assert body["issued_offer"]["points_spent"] == 300
    assert body["issued_offer"]["is_usable"] is True
    assert (again.status_code, again.json()) == (409, body)
    assert (later.status_code, later.json()) == (200, body)
    assert not_targeted.status_code == 422, not_targeted.text
    assert not_targeted.json()["error"] == "not_eligible"
    assert too_poor.status_code == 422, too_poor.text
    assert too_poor.json()["error"] == "insufficient_points"
    assert [r.status_code for r in bola] == [403, 403, 403, 403]
    assert projected(
        engine, f"SELECT count(*) FROM ledger_events WHERE member_id = '{RICH}'"
        " AND event_type = 'POINTS_REDEMPTION'"
    ) == 1  # fmt: skip
    assert after.json()["offers"][0]["member"]["uses_left"] == 1
    assert after.json()["offers"][0]["member"]["balance"] == 700

    assert locked_now.status_code == 201, locked_now.text
    assert locked_now.json()["issued_offer"]["status"] == "LOCKED"
    assert other_basket.status_code == 422, other_basket.text
    assert other_basket.json()["error"] == "reward_locked"
    assert foreign.status_code == 403
    # The till's preview shows the discount to the locked basket only.
    assert [p.json()["total_discount_cents"] for p in previews] == [200, 0], previews[0].text
    assert previews[0].json()["rewards"] == []  # it applies: an offer's, in offers_applied
    # Found by trying it as a user: a bought offer that gave nothing was left out in silence.
    [other] = previews[1].json()["rewards"]
    assert (other["token"], other["status"], other["reason"]) == (
        issued, "refused", "reward_locked")  # fmt: skip
    [held] = locked.json()["issued_offers"]
    assert (held["status"], held["transaction_id"], held["is_usable"]) == (
        "LOCKED", "RS-T-LOCKED", False,
    )  # fmt: skip
    assert held["locked_until"] is not None
    [spent] = used.json()["issued_offers"]
    assert (spent["status"], spent["transaction_id"], spent["discount_cents"]) == (
        "USED", "RS-T-LOCKED", 200,
    )  # fmt: skip
    assert spent["is_usable"] is False
    assert (reused.status_code, reused.json()["reason"]) == (409, "duplicate_request")
    assert (bodiless.status_code, bodiless.json()["reason"]) == (409, "duplicate_request")
    assert projected(
        engine, f"SELECT count(*) FROM offer_completions WHERE member_id = '{RICH}'"
        f" AND offer_id = '{MUFFIN}'"
    ) == 1  # fmt: skip
