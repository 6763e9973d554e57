"""Promo codes through the HTTP API on the real stack (docs/adr/0026-promo-code-api.md): the app
as `loyalty api` builds it, the real worker and projector, a topic prefix and a database of
this test's own. A member links a printed code and their next purchase, carrying no code,
uses it; a till reserves another code for an anonymous basket and the purchase commits it;
member care reads both codes' status. Waits are bounds far beyond what they take here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from loyalty.audit import uncommitted
from loyalty.producing import publish_events
from loyalty.services import Services
from processors.contract.config import OfferPublished, OfferWithdrawn, PromotionCodesIssued
from processors.contract.offer_definition import ActivationKind, OfferActivation, OfferSchedule
from projections.api.auth import Role
from tests.integration.test_rewards_api import api, bearer, engine, projected  # noqa: F401
from tests.integration.test_worker_runtime import until
from tests.rules.given import T0, bought, enrolled, program
from tests.rules.offers.given_offers import flat, offer, spend, usage

pytestmark = pytest.mark.integration

MEMBER = "pc-care-1"


def promotion() -> PromotionCodesIssued:
    return PromotionCodesIssued.model_validate({
        "event_id": "zn-api-1", "occurred_at": T0, "promotion_id": "ZN", "market": "CA",
        "codes": ["ZN34C", "ZN35C"], "redemptions_per_code_max": 1,
        "discount": {"kind": "AMOUNT_OFF_CART", "amount_off_cents": 500},
        "starts_at": T0, "ends_at": datetime.now(UTC) + timedelta(days=30),
    })  # fmt: skip


def used(settings, code: str) -> int:  # type: ignore[no-untyped-def]
    return projected(settings, f"SELECT count(*) FROM promo_code_uses WHERE code = '{code}'")


def offer_points(settings, member: str) -> int:  # type: ignore[no-untyped-def]
    """The points the member's offers awarded, as projected."""
    return projected(
        settings,
        "SELECT coalesce(sum(points_on_event), 0) FROM ledger_events "
        f"WHERE member_id = '{member}' AND event_type = 'OFFER_AWARD'",
    )


def till_basket(transaction_id: str, code: str) -> dict[str, Any]:
    """A $20 basket at the till carrying `code`, to be reserved."""
    return {
        "transaction_id": transaction_id, "market": "CA", "currency": "CAD",
        "store": {"store_id": "0412", "country": "CA", "province": "ON"},
        "lines": [{"line_id": "1", "sku": "TEA", "quantity": "1",
                   "unit_price_cents": 2000, "amount_cents": 2000}],
        "promo_codes": [code], "reserve": True,
    }  # fmt: skip


async def settled(settings, members: int) -> bool:  # type: ignore[no-untyped-def]
    """The configuration and enrolments published are taken and `members` are projected."""
    return (
        await uncommitted(settings) == 0
        and projected(settings, "SELECT count(*) FROM members") == members
    )


async def test_link_then_auto_apply_a_reservation_then_its_commit_and_the_status(engine, tmp_path):  # noqa: F811
    services = Services(engine, tmp_path)
    worker = services.start("worker", "worker")
    projector = services.start("projector", "project")
    staff = bearer(engine, "care", Role.STAFF)
    try:
        await publish_events(engine, [program(), promotion(), enrolled(MEMBER)])

        async def configured() -> bool:
            return (
                await uncommitted(engine) == 0
                and projected(engine, "SELECT count(*) FROM promotions") == 1
                and projected(engine, "SELECT count(*) FROM members") == 1
            )

        assert await until(configured, 180), worker.log_tail() + projector.log_tail()
        now = datetime.now(UTC)
        async with api() as http:
            linked = await http.post(
                "/v1/promotions/code/link",
                json={"code": "zn34c", "customerId": MEMBER, "mode": "DISCOUNT"},
                headers={**bearer(engine, MEMBER), "Idempotency-Key": "link-1"},
            )

            # The till sees the link as the worker will: a basket dated before the link does
            # not carry it (a user's trial got the code twice: backdated, then the next one).
            def member_cart(at: datetime) -> dict[str, Any]:
                cart = till_basket("PC-API-PREVIEW", "ZN34C")
                return {**cart, "member_id": MEMBER, "promo_codes": [], "reserve": False,
                        "occurred_at": at.isoformat()}  # fmt: skip

            current: list[httpx.Response] = []

            async def link_seen() -> bool:  # the 201 can come before the projector's commit
                current[:] = [await http.post("/v1/carts/evaluate", headers=staff,
                                              json=member_cart(datetime.now(UTC)))]  # fmt: skip
                return bool(current[0].json()["promo_codes"])

            assert await until(link_seen, 60), worker.log_tail() + projector.log_tail()
            backdated = await http.post("/v1/carts/evaluate", headers=staff,
                                        json=member_cart(now - timedelta(hours=1)))  # fmt: skip
            purchase = bought(MEMBER, "PC-API-T1", cents=2000, at=now)
            await publish_events(engine, [purchase])  # no code typed

            async def auto_applied() -> bool:
                return used(engine, "ZN34C") == 1

            assert await until(auto_applied, 180), worker.log_tail() + projector.log_tail()

            basket = till_basket("PC-API-BASKET", "ZN35C")
            reserved = await http.post("/v1/carts/evaluate", json=basket, headers=staff)
            anonymous = bought("nobody", "PC-API-BASKET", cents=2000, at=now)
            anonymous = anonymous.model_copy(update={"member_id": None, "promo_codes": ["ZN35C"]})
            await publish_events(engine, [anonymous])

            async def committed() -> bool:
                return used(engine, "ZN35C") == 1

            assert await until(committed, 180), worker.log_tail() + projector.log_tail()
            after_use = await http.delete("/v1/carts/PC-API-BASKET/reservations", headers=staff)
            member_code = await http.get("/v1/promo-codes/ZN34C?market=CA", headers=staff)
            till_code = await http.get("/v1/promo-codes/zn35c?market=CA", headers=staff)
    finally:
        services.stop()

    assert linked.status_code == 201, linked.text
    assert linked.json()["status"] == "linked"
    assert backdated.status_code == 200, backdated.text
    assert backdated.json()["promo_codes"] == []
    assert [c["code"] for c in current[0].json()["promo_codes"]] == ["ZN34C"]

    assert reserved.status_code == 200, reserved.text
    [code] = reserved.json()["promo_codes"]
    assert (code["status"], code["discount_cents"]) == ("reserved", 500), code
    assert code["reserved_until"] is not None

    assert member_code.status_code == 200, member_code.text
    body = member_code.json()
    assert (body["status"], body["uses"], body["uses_left"]) == ("exhausted", 1, 0)
    [redemption] = body["redemptions"]
    assert (redemption["member_id"], redemption["transaction_id"]) == (MEMBER, "PC-API-T1")
    assert redemption["discount_cents"] == 500

    assert after_use.status_code == 200, after_use.text  # a user's trial saw it "released"
    assert (after_use.json()["released"], after_use.json()["used"]) == (
        [], [{"code": "ZN35C", "promotion_id": "ZN"}]
    )  # fmt: skip

    assert till_code.status_code == 200, till_code.text
    [redemption] = till_code.json()["redemptions"]
    assert redemption["is_anonymous"] is True
    assert redemption["transaction_id"] == "PC-API-BASKET"
    assert redemption["store_id"] == "S1"  # the purchase's store (`bought`)


async def test_a_cancelled_basket_gives_its_code_back_at_once(engine, tmp_path):  # noqa: F811
    # After the till cancelled the basket, member care saw the single-use code still held
    # (no use left: "exhausted") until the reservation would have lapsed (15 minutes).
    services = Services(engine, tmp_path)
    worker = services.start("worker", "worker")
    projector = services.start("projector", "project")
    staff = bearer(engine, "till", Role.STAFF)
    try:
        await publish_events(engine, [program(), promotion()])

        async def configured() -> bool:
            return (
                await uncommitted(engine) == 0
                and projected(engine, "SELECT count(*) FROM promotions") == 1
            )

        assert await until(configured, 180), worker.log_tail() + projector.log_tail()
        basket = till_basket("PC-CANCEL-A", "ZN35C")
        async with api() as http:
            first = await evaluated(http, basket, staff)
            held = await http.get("/v1/promo-codes/ZN35C?market=CA", headers=staff)
            cancelled = await http.delete("/v1/carts/PC-CANCEL-A/reservations", headers=staff)
            statuses = []

            async def given_back() -> bool:
                statuses.append(await http.get("/v1/promo-codes/ZN35C?market=CA", headers=staff))
                return statuses[-1].json()["status"] == "active"

            assert await until(given_back, 60), statuses[-1].text
            repeated = await http.delete("/v1/carts/PC-CANCEL-A/reservations", headers=staff)
            other = await http.post(
                "/v1/carts/evaluate", json={**basket, "transaction_id": "PC-CANCEL-B"},
                headers=staff,
            )  # fmt: skip
    finally:
        services.stop()

    assert first.status_code == 200, first.text
    assert [c["status"] for c in first.json()["promo_codes"]] == ["reserved"]
    assert (held.json()["reservations"], held.json()["uses_left"]) == (1, 0), held.text
    assert cancelled.status_code == 200, cancelled.text
    assert [c["code"] for c in cancelled.json()["released"]] == ["ZN35C"]
    assert (statuses[-1].json()["reservations"], statuses[-1].json()["uses_left"]) == (0, 1)
    assert repeated.status_code == 200, repeated.text  # safe to repeat
    assert other.status_code == 200, other.text
    assert [c["status"] for c in other.json()["promo_codes"]] == ["reserved"]


async def test_a_preview_tells_a_member_their_uses_of_the_promotion_are_spent(engine, tmp_path):  # noqa: F811
    # Without `reserve` a member who had used their one use of a promotion was told the code
    # `applies`; the purchase would then have been refused the discount the till gave.
    once = promotion().model_copy(update={
        "event_id": "zn-member-1", "promotion_id": "ONCE", "codes": ["ONCE10"],
        "redemptions_per_code_max": None, "redemptions_per_member_max": 1,
    })  # fmt: skip
    member = "pc-once-1"
    services = Services(engine, tmp_path)
    worker = services.start("worker", "worker")
    projector = services.start("projector", "project")
    staff = bearer(engine, "till", Role.STAFF)
    try:
        await publish_events(engine, [program(), once, enrolled(member)])
        assert await until(lambda: settled(engine, 1), 180), worker.log_tail()
        purchase = bought(member, "PC-ONCE-T1", cents=2000, at=datetime.now(UTC))
        await publish_events(engine, [purchase.model_copy(update={"promo_codes": ["ONCE10"]})])

        async def used_once() -> bool:
            return used(engine, "ONCE10") == 1

        assert await until(used_once, 180), worker.log_tail() + projector.log_tail()
        async with api() as http:
            basket = {**till_basket("PC-ONCE-T2", "once10"), "member_id": member, "reserve": False}
            member_cart = await evaluated(http, basket, staff)
            anonymous = await evaluated(
                http, {**till_basket("PC-ONCE-T3", "ONCE10"), "reserve": False}, staff
            )
    finally:
        services.stop()

    assert member_cart.status_code == 200, member_cart.text
    [code] = member_cart.json()["promo_codes"]
    assert (code["status"], code["reason"]) == ("refused", "code_limit_per_customer"), code
    assert code["detail"] == f"member {member}: 1 of 1 uses of promotion ONCE used or reserved"
    [other] = anonymous.json()["promo_codes"]  # an anonymous basket is its own customer
    assert other["status"] == "applies", other


BONUS_MEMBER = "pc-bonus-1"


def bonus_offer() -> OfferPublished:
    """300 points on $20 or more, activated only by a code of a promotion naming it (ADR 37)."""
    evergreen = OfferSchedule(starts_at=T0, ends_at=None, display_at=None)
    by_code = OfferActivation(kind=ActivationKind.PROMOTION_CODE)
    return offer("PC_BONUS_300", spend(2000), reward=flat(300), schedule=evergreen,
                 activation=by_code)  # fmt: skip


def bonus_promotion() -> PromotionCodesIssued:
    return promotion().model_copy(
        update={
            "event_id": "bonus-api-1",
            "promotion_id": "BONUS",
            "codes": ["BONUS300"],
            "discount": None,
            "offer_id": "PC_BONUS_300",
        }
    )


async def evaluated(http: Any, basket: dict[str, Any], staff: dict[str, str]) -> Any:
    """The cart's evaluation once the API's config feed caught up (503 until then)."""
    answers = []

    async def answered() -> bool:
        answers.append(await http.post("/v1/carts/evaluate", json=basket, headers=staff))
        return answers[-1].status_code != 503

    assert await until(answered, 60), answers[-1].text
    return answers[-1]


async def test_a_linked_code_that_unlocks_an_offer_applies_at_the_till_and_the_purchase(
    engine,  # noqa: F811
    tmp_path,
):
    services = Services(engine, tmp_path)
    worker = services.start("worker", "worker")
    projector = services.start("projector", "project")
    staff = bearer(engine, "till-9", Role.STAFF)
    try:
        config = [program(), bonus_offer(), bonus_promotion(), enrolled(BONUS_MEMBER)]
        await publish_events(engine, config)

        async def configured() -> bool:
            return await settled(engine, members=1)

        assert await until(configured, 180), worker.log_tail() + projector.log_tail()
        basket = {
            "transaction_id": "PC-BONUS-BASKET", "member_id": BONUS_MEMBER, "market": "CA",
            "currency": "CAD", "store": {"store_id": "0412", "country": "CA", "province": "ON"},
            "lines": [{"line_id": "1", "sku": "TEA", "quantity": "1",
                       "unit_price_cents": 3000, "amount_cents": 3000}],
        }  # fmt: skip
        async with api() as http:
            before = await evaluated(http, basket, staff)
            linked = await http.post(
                "/v1/promotions/code/link",
                json={"code": "bonus300", "customerId": BONUS_MEMBER, "mode": "DISCOUNT"},
                headers={**bearer(engine, BONUS_MEMBER), "Idempotency-Key": "link-bonus"},
            )

            async def link_projected() -> bool:
                # The 201 may come from Kafka before the projector's commit, and the till's
                # preview reads the projected link (ADR 34: read-your-writes).
                status = await http.get(
                    linked.headers["Location"], headers=bearer(engine, BONUS_MEMBER)
                )
                return status.status_code == 200

            assert await until(link_projected, 60), projector.log_tail()
            preview = await http.post("/v1/carts/evaluate", json=basket, headers=staff)
            reserved = await http.post(
                "/v1/carts/evaluate", json=basket | {"reserve": True}, headers=staff
            )
        # The purchase carries no code: the worker adds the linked one.
        purchase = bought(BONUS_MEMBER, "PC-BONUS-BASKET", cents=3000, at=datetime.now(UTC))
        await publish_events(engine, [purchase])

        async def granted() -> bool:
            return offer_points(engine, BONUS_MEMBER) == 300 and used(engine, "BONUS300") == 1

        assert await until(granted, 180), worker.log_tail() + projector.log_tail()
        async with api() as http:
            after = await evaluated(http, basket, staff)
    finally:
        services.stop()

    assert before.status_code == 200, before.text
    assert before.json()["promo_codes"] == []
    assert before.json()["offers_applied"] == []
    assert linked.status_code == 201, linked.text
    assert preview.status_code == 200, preview.text
    [code] = preview.json()["promo_codes"]
    assert (code["code"], code["status"]) == ("BONUS300", "applies"), code
    assert [(o["offer_id"], o["points"]) for o in preview.json()["offers_applied"]] == [
        ("PC_BONUS_300", 300)
    ]
    [code] = reserved.json()["promo_codes"]
    assert code["status"] == "reserved", code
    assert reserved.json()["total_points"] == 330  # 30 base + the unlocked offer's 300
    assert after.json()["promo_codes"] == []  # the link was used up by the purchase


ONCE_MEMBER = "pc-once-1"


def once_offer() -> OfferPublished:
    """200 points on $20 or more, once per member, activated only by a code (ADR 37)."""
    return bonus_offer().model_copy(
        update={"event_id": "pub-PC_ONCE_200", "offer_id": "PC_ONCE_200", "reward": flat(200),
                "usage": usage(uses_per_member_max=1)}
    )  # fmt: skip


def once_promotion() -> PromotionCodesIssued:
    return bonus_promotion().model_copy(
        update={"event_id": "once-api-1", "promotion_id": "ONCE", "codes": ["ONCE1", "ONCE2"],
                "offer_id": "PC_ONCE_200"}
    )  # fmt: skip


async def test_a_reserved_basket_holds_its_offer_against_another_basket_and_past_a_withdrawal(
    engine,  # noqa: F811
    tmp_path,
):
    """ADR 37's hold: the till that reserved ONCE1 for basket A is told yes; the member's other
    basket B, with ONCE2, is refused at the till while A holds the one use; the offer is then
    withdrawn, and A's purchase still gets the 200 points the till showed."""
    services = Services(engine, tmp_path)
    worker = services.start("worker", "worker")
    projector = services.start("projector", "project")
    staff = bearer(engine, "till-7", Role.STAFF)
    try:
        await publish_events(engine, [program(), once_offer(), once_promotion(),
                                      enrolled(ONCE_MEMBER)])  # fmt: skip

        async def configured() -> bool:
            return await settled(engine, members=1)

        assert await until(configured, 180), worker.log_tail() + projector.log_tail()
        basket = {
            "member_id": ONCE_MEMBER, "market": "CA", "currency": "CAD",
            "store": {"store_id": "0412", "country": "CA", "province": "ON"},
            "lines": [{"line_id": "1", "sku": "TEA", "quantity": "1",
                       "unit_price_cents": 3000, "amount_cents": 3000}],
        }  # fmt: skip
        basket_a = basket | {"transaction_id": "PC-ONCE-A", "promo_codes": ["ONCE1"]}
        basket_b = basket | {"transaction_id": "PC-ONCE-B", "promo_codes": ["ONCE2"]}
        async with api() as http:
            await evaluated(http, basket_a, staff)
            reserved = await http.post(
                "/v1/carts/evaluate", json=basket_a | {"reserve": True}, headers=staff
            )
            held = "SELECT count(*) FROM promo_code_reservations WHERE code = 'ONCE1'"

            async def reservation_projected() -> bool:
                return projected(engine, held) == 1

            assert await until(reservation_projected, 60), projector.log_tail()
            other = await http.post("/v1/carts/evaluate", json=basket_b, headers=staff)
        withdrawn = OfferWithdrawn(
            event_id="withdraw-PC_ONCE_200", occurred_at=datetime.now(UTC),
            offer_id="PC_ONCE_200", requested_by="brand-admin",
        )  # fmt: skip
        await publish_events(engine, [withdrawn])
        # An enrolment makes the worker catch its configuration up before deciding it: once
        # it is projected, the withdrawal is known to the purchase after it.
        await publish_events(engine, [enrolled("pc-once-2")])

        async def caught_up() -> bool:
            return await settled(engine, members=2)

        assert await until(caught_up, 60), worker.log_tail()
        purchase = bought(ONCE_MEMBER, "PC-ONCE-A", cents=3000, at=datetime.now(UTC))
        await publish_events(engine, [purchase.model_copy(update={"promo_codes": ["ONCE1"]})])

        async def granted() -> bool:
            return offer_points(engine, ONCE_MEMBER) == 200 and used(engine, "ONCE1") == 1

        assert await until(granted, 180), worker.log_tail() + projector.log_tail()
    finally:
        services.stop()

    assert reserved.status_code == 200, reserved.text
    [code] = reserved.json()["promo_codes"]
    assert code["status"] == "reserved", code
    assert reserved.json()["total_points"] == 230  # 30 base + the unlocked offer's 200
    assert other.status_code == 200, other.text
    [code] = other.json()["promo_codes"]
    assert (code["status"], code["reason"]) == ("refused", "code_limit_per_customer"), code
    assert other.json()["offers_applied"] == []
