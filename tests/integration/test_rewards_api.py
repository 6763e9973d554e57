"""Redeeming rewards through the HTTP API, end to end on the real stack: the app as `loyalty
api` builds it (`from_settings`: a KafkaCommandSink and the Postgres reward store), the real
worker deciding, the real projector filling the catalogue, stock, wallet and outcome tables of
a database of this test's own. A reward with 3 codes: three members get 201 with three
distinct codes, a fourth 422 out_of_stock; a repeated key is 409 with the original, written
once; the wallet and the catalogue show what happened.

The API waits for decisions up to a bound far beyond what they take here
(`LOYALTY_API_DECISION_WAIT_MS`), so the answers do not depend on the machine's speed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from loyalty import stack
from loyalty.audit import uncommitted
from loyalty.cli_rewards import read_upload
from loyalty.producing import publish_events
from loyalty.services import Services
from processors.base.settings import Settings, get_settings
from processors.contract.config import PromotionCodesIssued
from projections.api.app import from_settings
from projections.api.auth import Role, issue_token
from tests.integration.test_worker_runtime import until
from tests.rules.given import PROGRAM, bought, enrolled, program
from tests.rules.test_rewards import reward

pytestmark = pytest.mark.integration

CODES = ["MUF-AAA", "MUF-BBB", "MUF-CCC"]
WAIT_MS = 60_000


@pytest.fixture
def engine(stack_settings, own_database_url, monkeypatch) -> Iterator[Settings]:
    """The stack under a topic prefix of this test's own, over a database of its own, and the
    environment `from_settings` and the child processes read pointed at both."""
    settings = stack_settings.model_copy(
        update={"topic_prefix": f"rw{uuid.uuid4().hex[:8]}.", "database_url": own_database_url}
    )
    stack.up(settings)
    monkeypatch.setenv("KAFKA_BOOTSTRAP", settings.bootstrap_servers)
    monkeypatch.setenv("DATABASE_URL", settings.dsn)
    monkeypatch.setenv("LOYALTY_TOPIC_PREFIX", settings.topic_prefix)
    monkeypatch.setenv("LOYALTY_PARTITIONS", str(settings.partitions))
    monkeypatch.setenv("LOYALTY_API_DECISION_WAIT_MS", str(WAIT_MS))
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


@asynccontextmanager
async def api() -> AsyncIterator[httpx.AsyncClient]:
    """The app `loyalty api` serves, with its lifespan (pools, config feed, producer)."""
    app = from_settings()
    assert app.state.decision_wait == WAIT_MS / 1000
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            yield http


def bearer(settings: Settings, subject: str, role: Role = Role.MEMBER) -> dict[str, str]:
    secret = settings.api_secret.get_secret_value()
    return {"Authorization": f"Bearer {issue_token(secret, subject, role, now=datetime.now(UTC))}"}


async def redeem(
    http: httpx.AsyncClient, settings: Settings, member: str, key: str
) -> httpx.Response:
    return await http.post(
        f"/v1/members/{member}/redemptions",
        json={"reward_id": "STOCKED", "program_id": PROGRAM, "quantity": 1},
        headers={**bearer(settings, member), "Idempotency-Key": key},
    )


def projected(settings: Settings, query: str) -> int:
    with psycopg.connect(settings.dsn) as conn:
        row = conn.execute(query).fetchone()
    return int(row[0]) if row is not None else 0


async def test_three_codes_three_grants_then_out_of_stock_a_repeat_409_and_the_wallet(
    engine, tmp_path
):
    members = [f"rw-{n}" for n in range(4)]
    services = Services(engine, tmp_path)
    worker = services.start("worker", "worker")
    projector = services.start("projector", "project")
    try:
        codes_file = tmp_path / "codes.csv"
        codes_file.write_text("code\n" + "\n".join(CODES) + "\n")
        # What `loyalty rewards codes add STOCKED codes.csv` publishes.
        batches = read_upload("STOCKED", codes_file, at=datetime.now(UTC)).events
        await publish_events(engine, [program(), reward("STOCKED", uses_code_stock=True), *batches])
        await publish_events(
            engine,
            [e for m in members for e in (enrolled(m), bought(m, f"{m}-T", cents=100_000))],
        )

        async def settled() -> bool:
            members_in = "SELECT count(*) FROM member_balances WHERE balance = 1000"
            stocked = "SELECT coalesce(sum(codes_stocked), 0) FROM reward_stock"
            return (
                await uncommitted(engine) == 0
                and projected(engine, members_in) == len(members)
                and projected(engine, stocked) == len(CODES)
            )

        assert await until(settled, 180), worker.log_tail() + projector.log_tail()

        async with api() as http:
            firsts = await asyncio.gather(
                *(redeem(http, engine, m, f"{m}-k1") for m in members[:3])
            )
            fourth = await redeem(http, engine, members[3], f"{members[3]}-k1")
            repeats = await asyncio.gather(
                *(redeem(http, engine, members[0], f"{members[0]}-k1") for _ in range(5))
            )
            wallet = await http.get(
                f"/v1/members/{members[0]}/rewards", headers=bearer(engine, members[0])
            )
            # The 422 came from Kafka (ADR 34); the status URL reads the projection, 202
            # pending until the projector has committed the rejection.
            status_url = f"/v1/members/{members[3]}/redemptions/{members[3]}-k1"
            refused = await http.get(status_url, headers=bearer(engine, "care", Role.STAFF))

            async def projected_refusal() -> bool:
                nonlocal refused
                if refused.status_code == 202:
                    refused = await http.get(status_url, headers=bearer(engine, "care", Role.STAFF))
                return refused.status_code != 202

            assert await until(projected_refusal, 60), refused.text
            catalogue = await http.get(
                "/v1/rewards", params={"market": "CA"}, headers=bearer(engine, members[3])
            )
            balance = await http.get(
                f"/v1/members/{members[0]}/balance", headers=bearer(engine, members[0])
            )
    finally:
        services.stop()

    assert [r.status_code for r in firsts] == [201] * 3, [r.text for r in firsts]
    granted = [r.json()["granted_rewards"] for r in firsts]
    assert sorted(g[0]["code"] for g in granted) == CODES  # three distinct codes
    assert all(g[0]["redemption_token"] == g[0]["code"] for g in granted)
    assert all(r.json()["points_debited"] == 100 for r in firsts)

    assert fourth.status_code == 422, fourth.text
    assert fourth.json()["error"] == "out_of_stock"

    assert {r.status_code for r in repeats} == {409}
    assert all(r.json() == firsts[0].json() for r in repeats)
    assert projected(
        engine, f"SELECT count(*) FROM ledger_events WHERE member_id = '{members[0]}'"
        " AND event_type = 'POINTS_REDEMPTION'"
    ) == 1  # fmt: skip
    assert balance.json()["programs"][0]["total_points"] == 900

    assert wallet.status_code == 200
    [held] = wallet.json()["rewards"]
    assert held == firsts[0].json()["granted_rewards"][0]
    assert (held["status"], held["reason"], held["is_usable"]) == ("ISSUED", "REDEMPTION", True)
    assert held["expires_at"] is not None

    assert (refused.status_code, refused.json()["status"]) == (200, "rejected")
    assert refused.json()["reason"] == "out_of_stock"

    [stocked] = [r for r in catalogue.json()["rewards"] if r["reward_id"] == "STOCKED"]
    assert stocked["stock"] == {"state": "out", "remaining": 0}
    assert stocked["member"] == {"eligible": True, "affordable": True, "balance": 1000}


async def test_1000_redemptions_at_once_by_one_member_grant_what_the_balance_covers(
    engine, tmp_path
):
    """1,000 distinct keys at once by one member with 2,500 points, a reward of 100 points
    and no stock: exactly 25 grants (201), 975 refusals `insufficient_points` (422), one debit
    per grant, the balance 0 and never below it; then the same key 20 times at once: the
    first answer 201 or 409, one debit, one grant."""
    member = "rw-many"
    services = Services(engine, tmp_path)
    worker = services.start("worker", "worker")
    projector = services.start("projector", "project")
    try:
        await publish_events(engine, [program(), reward("STOCKED", uses_code_stock=False)])
        await publish_events(engine, [enrolled(member), bought(member, "MANY-T", cents=250_000)])

        async def settled() -> bool:
            funded = f"SELECT count(*) FROM member_balances WHERE member_id = '{member}' AND balance = 2500"  # noqa: E501
            return await uncommitted(engine) == 0 and projected(engine, funded) == 1

        assert await until(settled, 180), worker.log_tail() + projector.log_tail()

        async with api() as http:
            answers = await asyncio.gather(
                *(redeem(http, engine, member, f"many-{n}") for n in range(1000))
            )
            balance = await http.get(
                f"/v1/members/{member}/balance", headers=bearer(engine, member)
            )
            # Top the member up, then one key sent 20 times at once.
            await publish_events(engine, [bought(member, "MANY-T2", cents=10_000)])

            async def topped() -> bool:
                funded = f"SELECT count(*) FROM member_balances WHERE member_id = '{member}' AND balance = 100"  # noqa: E501
                return projected(engine, funded) == 1

            assert await until(topped, 120), worker.log_tail() + projector.log_tail()
            same = await asyncio.gather(
                *(redeem(http, engine, member, "same-key") for _ in range(20))
            )
    finally:
        services.stop()

    statuses = [r.status_code for r in answers]
    assert statuses.count(201) == 25, sorted(set(statuses))
    assert statuses.count(422) == 975
    assert {r.json()["error"] for r in answers if r.status_code == 422} == {"insufficient_points"}
    assert balance.json()["programs"][0]["total_points"] == 0
    redemptions = (
        f"SELECT count(*) FROM ledger_events WHERE member_id = '{member}'"
        " AND event_type = 'POINTS_REDEMPTION'"
    )
    never_negative = (  # the running balance, event after event in the member's order
        "SELECT count(*) FROM (SELECT sum(points_on_event) OVER (ORDER BY sequence) AS running"
        f" FROM ledger_events WHERE member_id = '{member}') balances WHERE running < 0"
    )
    wallet = f"SELECT count(*) FROM member_rewards WHERE member_id = '{member}'"
    assert projected(engine, redemptions) == 26  # 25, then the repeated key's one
    assert projected(engine, wallet) == 26
    assert projected(engine, never_negative) == 0

    kinds = sorted(r.status_code for r in same)
    assert kinds.count(201) <= 1, kinds
    assert set(kinds) <= {201, 202, 409}, kinds
    bodies = [r.json() for r in same if r.status_code in (201, 409)]
    assert bodies
    assert all(b["granted_rewards"] == bodies[0]["granted_rewards"] for b in bodies)


async def test_the_till_previews_a_rewards_discount_and_the_purchase_takes_it_once(
    engine, tmp_path
):
    """A reward worth $5 off a basket of $20 or more, redeemed through the API; the till's
    preview (`POST /v1/carts/evaluate`) of its token on the member's baskets, beside a promo
    code that leaves less than $5 of the basket, for another member, then after the purchase
    that used it."""
    member, other = "rw-till", "rw-else"
    five_off = {"kind": "AMOUNT_OFF_CART", "amount_off_cents": 500, "spend_min_cents": 2000}
    services = Services(engine, tmp_path)
    worker = services.start("worker", "worker")
    projector = services.start("projector", "project")
    try:
        await publish_events(engine, [
            program(), reward("STOCKED", uses_code_stock=False, discount=discount_terms(five_off)),
            eighteen_off_code(),
        ])  # fmt: skip
        await publish_events(engine, [enrolled(member), bought(member, "TILL-T", cents=100_000),
                                      enrolled(other)])  # fmt: skip

        async def settled() -> bool:
            funded = f"SELECT count(*) FROM member_balances WHERE member_id = '{member}'"
            return await uncommitted(engine) == 0 and projected(engine, funded) == 1

        assert await until(settled, 180), worker.log_tail() + projector.log_tail()
        staff = bearer(engine, "till-3", Role.STAFF)

        async def preview(who: str, cents: int, token: str, codes: tuple[str, ...] = (),
                          **more: str) -> dict:  # fmt: skip
            cart = {"member_id": who, "market": "CA", "currency": "CAD",
                    "store": {"store_id": "S1", "province": "ON"},
                    "lines": [{"line_id": "1", "sku": "A", "quantity": "1",
                               "unit_price_cents": cents, "amount_cents": cents}],
                    "redemption_tokens": [token], "promo_codes": list(codes), **more}  # fmt: skip
            answer = await http.post("/v1/carts/evaluate", json=cart, headers=staff)
            assert answer.status_code == 200, answer.text
            [check] = answer.json()["rewards"]
            # The points are judged net of the reward that applies, as the purchase will be.
            check["base_points"] = sum(p["base_points"] for p in answer.json()["points"])
            codes_told = answer.json()["promo_codes"]
            check["codes"] = [(c["code"], c["discount_cents"]) for c in codes_told]
            return check

        async with api() as http:
            redeemed = await redeem(http, engine, member, "till-k1")
            assert redeemed.status_code == 201, redeemed.text
            [granted] = redeemed.json()["granted_rewards"]
            token = granted["redemption_token"]

            async def in_wallet() -> bool:
                # The 201 may come from Kafka before the projector's commit, and the till's
                # preview reads the projected wallet (ADR 34: read-your-writes).
                held = f"SELECT count(*) FROM member_rewards WHERE redemption_token = '{token}'"
                return projected(engine, held) == 1

            assert await until(in_wallet, 60), worker.log_tail() + projector.log_tail()
            big = await preview(member, 3000, token)
            beside = await preview(member, 2000, token, codes=("EIGHTEEN",))
            # A basket dated after the reward's expiry: judged at its time, as the worker will.
            late = (datetime.now(UTC) + timedelta(days=3650)).isoformat()
            too_late = await preview(member, 3000, token, occurred_at=late)
            small = await preview(member, 1000, token)
            theirs = await preview(other, 3000, token)
            unknown = await preview(member, 3000, "NO-SUCH-TOKEN")
            paid = bought(member, "TILL-T2", cents=3000).model_copy(
                update={"redemption_tokens": [token], "occurred_at": datetime.now(UTC)}
            )
            await publish_events(engine, [paid])

            async def used() -> bool:
                closed = ("SELECT count(*) FROM member_rewards WHERE status = 'REDEEMED'"
                          " AND redeemed_discount_cents = 500")  # fmt: skip
                return projected(engine, closed) == 1

            assert await until(used, 120), worker.log_tail() + projector.log_tail()
            after = await preview(member, 3000, token)
    finally:
        services.stop()

    assert (big["status"], big["discount_cents"], big["granted_reward_id"]) == (
        "applies", 500, granted["granted_reward_id"])  # fmt: skip
    assert big["base_points"] == 25  # $30 less the reward's $5
    # The code's $18 leaves $2 of the $20 basket: the reward takes that, not its $5.
    assert (beside["status"], beside["discount_cents"], beside["codes"]) == (
        "applies", 200, [("EIGHTEEN", 1800)])  # fmt: skip
    assert beside["base_points"] == 0
    assert (too_late["status"], too_late["reason"]) == ("refused", "reward_expired")
    assert (small["status"], small["reason"]) == ("refused", "min_spend_not_met")
    assert small["base_points"] == 10  # refused: nothing taken
    assert (theirs["status"], theirs["reason"], theirs["granted_reward_id"]) == (
        "refused", "reward_not_yours", None)  # fmt: skip
    assert unknown["reason"] == "reward_unknown"
    assert (after["status"], after["reason"]) == ("refused", "reward_used")


def eighteen_off_code() -> PromotionCodesIssued:
    """A promotion whose code EIGHTEEN takes $18 off the cart, live around now."""
    now = datetime.now(UTC)
    return PromotionCodesIssued.model_validate({
        "event_id": "rw-eighteen", "occurred_at": now - timedelta(days=1),
        "promotion_id": "EIGHTEEN", "market": "CA", "codes": ["EIGHTEEN"],
        "discount": {"kind": "AMOUNT_OFF_CART", "amount_off_cents": 1800},
        "starts_at": now - timedelta(days=1), "ends_at": now + timedelta(days=30),
    })  # fmt: skip


def discount_terms(fields: dict) -> object:
    from processors.contract.offer_definition import DiscountTerms

    return DiscountTerms.model_validate(fields)
