"""The till's preview reads a member's reservations as the worker holds them
(`PostgresCodeStore.member_reservations`; docs/adr/0037-codes-that-unlock-an-offer.md): a
basket's hold ends with its purchase, whatever the purchase used, so a reservation whose
basket was bought is not read; neither is one lapsed before `since`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from processors.contract.offers import PromoCodeReserved, PromoCodeUnreserved
from projections.api.code_store import PostgresCodeStore
from projections.writers import codes

pytestmark = pytest.mark.integration

AT = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


async def test_a_reservation_whose_basket_was_bought_or_lapsed_is_not_read(own_database_url):
    with psycopg.connect(own_database_url) as conn:
        for tx, until in (("B1", 30), ("B2", 30), ("B3", -120)):
            conn.execute(
                "INSERT INTO promo_code_reservations (code, transaction_id, promotion_id,"
                " member_id, discount_cents, reserved_at, reserved_until)"
                " VALUES ('HELLO1', %s, 'WELCOME', 'M1', 0, %s, %s)",
                (tx, AT, AT + timedelta(minutes=until)),
            )
        # B1 was bought without the code: its hold ended all the same.
        conn.execute(
            "INSERT INTO member_transactions (member_id, transaction_id, market, occurred_at,"
            " spend_cents) VALUES ('M1', 'B1', 'CA', %s, 2000)",
            (AT,),
        )
    pool = AsyncConnectionPool(own_database_url, min_size=1, max_size=1, open=False)
    await pool.open()
    try:
        store = PostgresCodeStore(pool, pool)
        read = await store.member_reservations("M1", since=AT - timedelta(minutes=60))
    finally:
        await pool.close()
    assert [r.transaction_id for r in read] == ["B2"]


def _reserved(tx: str, minutes: int) -> PromoCodeReserved:
    return PromoCodeReserved(
        event_id=f"res-{tx}-{minutes}", occurred_at=AT + timedelta(minutes=minutes),
        code="HELLO1", promotion_id="WELCOME", member_id="M1", transaction_id=tx,
        reserved_until=AT + timedelta(minutes=minutes + 15), discount_cents=500,
    )  # fmt: skip


def _unreserved(tx: str, minutes: int) -> PromoCodeUnreserved:
    return PromoCodeUnreserved(
        event_id=f"unres-{tx}-{minutes}", occurred_at=AT + timedelta(minutes=minutes),
        code="HELLO1", promotion_id="WELCOME", member_id="M1", transaction_id=tx,
    )  # fmt: skip


async def test_a_released_reservation_counts_no_more_and_asking_again_makes_it_count(
    own_database_url,
):
    # Found by a user's trial: a cancelled basket's reservation kept the code "reserved", its
    # uses left one short and the member's other baskets refused until it would have lapsed.
    batches = [
        [_reserved("B1", 0), _reserved("B2", 0), _reserved("B3", 0)],
        [_unreserved("B2", 2), _unreserved("B3", 2)],  # released: two baskets cancelled
        [_reserved("B3", 3)],  # B3 asked again: it holds again
    ]
    with psycopg.connect(own_database_url) as conn:
        for batch in batches:
            with conn.transaction():
                codes.write(conn, batch)
    pool = AsyncConnectionPool(own_database_url, min_size=1, max_size=1, open=False)
    await pool.open()
    try:
        store = PostgresCodeStore(pool, pool)
        at = AT + timedelta(minutes=4)
        held = await store.member_reservations("M1", since=at)
        activity = await store.activity("HELLO1", "WELCOME", at)
        b2, b3 = await store.reservation("HELLO1", "B2"), await store.reservation("HELLO1", "B3")
        repeated = await store.reservations("B2")
    finally:
        await pool.close()
    assert [r.transaction_id for r in held] == ["B1", "B3"]
    assert (activity.code_reservations, activity.promotion_reservations) == (2, 2)
    assert b2 is None
    assert b3 is not None
    assert [r.code for r in repeated] == ["HELLO1"]  # a release repeated answers as the first
