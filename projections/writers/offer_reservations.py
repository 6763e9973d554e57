"""The offer reservations projection: `OfferUseReservationAnswered` (loyalty.offers.v1) →
offer_use_reservations (docs/adr/0030-discount-offer-total-uses.md).

Owns that table: the offer's agent's answer to each reservation a till asked for, by the
request's event id, which cart evaluation with `reserve` waits for. It copies what the events
say and decides nothing (the agent does: `processors.rules.offers.budget`), never commits (the
caller's transaction holds the checkpoints) and never reads the clock. Insert-only by request:
the agent answers each request once, with an id derived from it, so a redelivery is one row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import psycopg

from processors.contract.offers import OfferUseReservationAnswered

TABLES = ("offer_use_reservations",)

EVENTS = (OfferUseReservationAnswered,)
"""What this projection writes."""

_INSERT = """
INSERT INTO offer_use_reservations (request_event_id, offer_id, member_id, transaction_id,
    reserved, reserved_until, discount_cents, reason, answered_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (request_event_id) DO NOTHING
"""


def rows_of(events: Iterable[OfferUseReservationAnswered]) -> list[tuple[Any, ...]]:
    """One row per answer. Pure."""
    return [
        (
            e.request_event_id, e.offer_id, e.member_id, e.transaction_id, e.reserved,
            e.reserved_until, e.discount_cents, e.reason.value if e.reason else None,
            e.occurred_at,
        )
        for e in events
    ]  # fmt: skip


def write(conn: psycopg.Connection, events: Sequence[OfferUseReservationAnswered]) -> None:
    """Project `events` in the caller's transaction (executemany: pipelined by psycopg)."""
    if not events:
        return
    with conn.cursor() as cursor:
        cursor.executemany(_INSERT, rows_of(events))
