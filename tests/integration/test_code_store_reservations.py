"""The till's preview reads a member's reservations as the worker holds them
(`PostgresCodeStore.member_reservations`; docs/adr/0037-codes-that-unlock-an-offer.md): a
basket's hold ends with its purchase, whatever the purchase used, so a reservation whose
basket was bought is not read; neither is one lapsed before `since`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from projections.api.code_store import PostgresCodeStore

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
