"""The issued offers projection: reward-store offers members bought (seed 002,
docs/adr/0033-reward-store-api.md) → member_issued_offers.

Owns that table, fed by events other writers also project (`request_outcomes`, the offer
tables): a `RequestAccepted` of a purchase issues an instance, of a lock locks it, of an
unlock (its order cancelled) frees it again, of an immediate redeem redeems it; an
`OfferCompleted` naming an instance marks it used; an `IssuedOfferMoved` (a merge) gives the
instance to the survivor, whatever came first. The outcomes and offers topics may be read
in either order, so a row is the same whatever came first: each purchase column keeps its
first value, and the status only moves forward through `STAGES`, where issued and locked are
one stage: of those, the answer applied last holds (a purchase, its locks and their releases
are answers on one partition of loyalty.outcomes.v1, which the projector applies in the
worker's order, live and in a rebuild; no clock is compared). It decides nothing, never
commits (the caller's transaction holds the checkpoints) and never reads the clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import psycopg

from processors.contract.offers import IssuedOfferMoved, OfferCompleted
from processors.contract.outcomes import RequestAccepted
from processors.contract.redemptions import RequestType

TABLES = ("member_issued_offers",)

IssuedOfferEvent = RequestAccepted | OfferCompleted | IssuedOfferMoved

EVENTS = (RequestAccepted, OfferCompleted, IssuedOfferMoved)
"""What this projection reads; only those naming an issued offer change anything here."""

OWN = (IssuedOfferMoved,)
"""Of `EVENTS`, those no other writer projects."""

STAGES = ("ISSUED", "LOCKED", "REDEEMED", "USED")
"""An instance's statuses; it never goes back from REDEEMED or USED (issued and locked may
follow each other: a lock, then its release)."""

_STATUS = {
    RequestType.REWARD_STORE_OFFER_PURCHASE: "ISSUED",
    RequestType.ISSUED_OFFER_LOCK: "LOCKED",
    RequestType.ISSUED_OFFER_UNLOCK: "ISSUED",
    RequestType.ISSUED_OFFER_REDEEM: "REDEEMED",
}

_UPSERT = """
INSERT INTO member_issued_offers AS t (issued_offer_id, member_id, offer_id, reward_store_id,
    points_spent, command_id, ledger_event_log_id, issued_at, status, transaction_id,
    locked_until, status_at, status_event_id, discount_cents, points_awarded)
VALUES (%(issued_offer_id)s, %(member_id)s, %(offer_id)s, %(reward_store_id)s,
    %(points_spent)s, %(command_id)s, %(ledger_event_log_id)s, %(issued_at)s, %(status)s,
    %(transaction_id)s, %(locked_until)s, %(status_at)s, %(status_event_id)s,
    %(discount_cents)s, %(points_awarded)s)
ON CONFLICT (issued_offer_id) DO UPDATE SET
    offer_id = coalesce(t.offer_id, excluded.offer_id),
    reward_store_id = coalesce(t.reward_store_id, excluded.reward_store_id),
    points_spent = coalesce(t.points_spent, excluded.points_spent),
    command_id = coalesce(t.command_id, excluded.command_id),
    ledger_event_log_id = coalesce(t.ledger_event_log_id, excluded.ledger_event_log_id),
    issued_at = coalesce(t.issued_at, excluded.issued_at),
    discount_cents = coalesce(t.discount_cents, excluded.discount_cents),
    points_awarded = coalesce(t.points_awarded, excluded.points_awarded),
    (status, transaction_id, locked_until, status_at, status_event_id) = (
        SELECT s.status, s.transaction_id, s.locked_until, s.status_at, s.status_event_id
        FROM (VALUES
            (t.status, t.transaction_id, t.locked_until, t.status_at, t.status_event_id, 0),
            (excluded.status, excluded.transaction_id, excluded.locked_until,
                excluded.status_at, excluded.status_event_id, 1)
        ) AS s (status, transaction_id, locked_until, status_at, status_event_id, applied)
        ORDER BY greatest(array_position(%(stages)s::text[], s.status), 2) DESC,
            s.applied DESC
        LIMIT 1
    )
"""


# A merge gives the instance to the survivor: the row's member whichever of the purchase and
# the move is projected first (a purchase's answer never changes a row's member, `_UPSERT`).
_MOVE = """
INSERT INTO member_issued_offers AS t (issued_offer_id, member_id, offer_id, reward_store_id,
    points_spent, issued_at, status, status_at, status_event_id)
VALUES (%(issued_offer_id)s, %(member_id)s, %(offer_id)s, %(reward_store_id)s,
    %(points_spent)s, %(issued_at)s, 'ISSUED', %(issued_at)s, %(event_id)s)
ON CONFLICT (issued_offer_id) DO UPDATE SET member_id = excluded.member_id
"""


def rows_of(events: Iterable[IssuedOfferEvent]) -> list[dict[str, Any]]:
    """One row per event that names an issued offer, in log order (moves apart). Pure."""
    rows = []
    for event in events:
        if isinstance(event, IssuedOfferMoved):
            continue
        if isinstance(event, RequestAccepted):
            status = _STATUS.get(event.request_type)
            if status is None or event.issued_offer_id is None:
                continue
            purchase = event.request_type is RequestType.REWARD_STORE_OFFER_PURCHASE
            if event.request_type is RequestType.ISSUED_OFFER_UNLOCK:
                # Freed: no longer held for the cancelled transaction (an instance never
                # locked, answered as it was, shows the same).
                event = event.model_copy(update={"transaction_id": None})
            rows.append({
                "issued_offer_id": event.issued_offer_id, "member_id": event.member_id,
                "offer_id": event.offer_id, "reward_store_id": event.reward_store_id,
                "points_spent": event.points_debited if purchase else None,
                "command_id": event.command_id if purchase else None,
                "ledger_event_log_id": event.ledger_event_log_id if purchase else None,
                "issued_at": event.occurred_at if purchase else None,
                "status": status, "transaction_id": event.transaction_id,
                "locked_until": event.locked_until, "status_at": event.occurred_at,
                "status_event_id": event.event_id, "discount_cents": None,
                "points_awarded": None, "stages": list(STAGES),
            })  # fmt: skip
        elif event.issued_offer_id is not None:
            rows.append({
                "issued_offer_id": event.issued_offer_id, "member_id": event.member_id,
                "offer_id": event.offer_id, "reward_store_id": None, "points_spent": None,
                "command_id": None, "ledger_event_log_id": None, "issued_at": None,
                "status": "USED", "transaction_id": event.transaction_id, "locked_until": None,
                "status_at": event.occurred_at, "status_event_id": event.event_id,
                "discount_cents": event.discount_cents, "points_awarded": event.points_awarded,
                "stages": list(STAGES),
            })  # fmt: skip
    return rows


def write(conn: psycopg.Connection, events: Sequence[IssuedOfferEvent]) -> None:
    """Project `events` in the caller's transaction, in order (executemany: pipelined)."""
    rows = rows_of(events)
    moves = [
        {"issued_offer_id": e.issued_offer_id, "member_id": e.member_id, "offer_id": e.offer_id,
         "reward_store_id": e.reward_store_id, "points_spent": e.points_spent,
         "issued_at": e.issued_at, "event_id": e.event_id}
        for e in events if isinstance(e, IssuedOfferMoved)
    ]  # fmt: skip
    if not rows and not moves:
        return
    with conn.cursor() as cursor:
        if rows:
            cursor.executemany(_UPSERT, rows)
        if moves:
            cursor.executemany(_MOVE, moves)
