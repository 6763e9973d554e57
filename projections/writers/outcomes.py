"""The request outcomes projection: `RequestAccepted` and `RequestRejected`
(loyalty.outcomes.v1) → request_outcomes.

Owns that table: what the engine answered to each member's command, by (member, command id,
request kind), the first answer of the log holding. The worker re-emits a request's original
outcome (same event id) for a repeated command id, so the first is the only one there is, but
for a return: a refused return is not remembered (its purchase may arrive later), and the same
return id sent again is answered anew under another event id, which replaces the refusal
(ADR 43). It decides nothing, never commits (the caller's transaction holds the checkpoints)
and never reads the clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import psycopg

from processors.contract.outcomes import RequestAccepted, RequestRejected

TABLES = ("request_outcomes",)

OutcomeEvent = RequestAccepted | RequestRejected

EVENTS = (RequestAccepted, RequestRejected)
"""What this projection writes."""

_INSERT = """
INSERT INTO request_outcomes (member_id, command_id, request_type, outcome_event_id,
    request_event_id, accepted, reason, detail, points_debited, discount_cents,
    ledger_event_log_id, granted_reward_ids, issued_offer_id, decided_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (member_id, command_id, request_type) DO UPDATE SET
    outcome_event_id = EXCLUDED.outcome_event_id, request_event_id = EXCLUDED.request_event_id,
    accepted = EXCLUDED.accepted, reason = EXCLUDED.reason, detail = EXCLUDED.detail,
    points_debited = EXCLUDED.points_debited, discount_cents = EXCLUDED.discount_cents,
    ledger_event_log_id = EXCLUDED.ledger_event_log_id,
    granted_reward_ids = EXCLUDED.granted_reward_ids, issued_offer_id = EXCLUDED.issued_offer_id,
    decided_at = EXCLUDED.decided_at
WHERE NOT request_outcomes.accepted
    AND request_outcomes.outcome_event_id <> EXCLUDED.outcome_event_id
"""


_EVENT_ID, _ACCEPTED = 3, 5  # positions in a row


def rows_of(events: Iterable[OutcomeEvent]) -> list[tuple[Any, ...]]:
    """One row per (member, command, kind), the first of the batch holding unless it is a
    refusal and a later answer has another event id (a return sent again). Pure."""
    rows: dict[tuple[str, str, str], tuple[Any, ...]] = {}
    for event in events:
        key = (event.member_id, event.command_id, event.request_type.value)
        held = rows.get(key)
        if held is not None and (held[_ACCEPTED] or held[_EVENT_ID] == event.event_id):
            continue
        if isinstance(event, RequestAccepted):
            rows[key] = (
                *key, event.event_id, event.request_event_id, True, None, event.detail,
                event.points_debited, event.discount_cents, event.ledger_event_log_id,
                list(event.granted_reward_ids), event.issued_offer_id, event.occurred_at,
            )  # fmt: skip
        else:
            rows[key] = (
                *key, event.event_id, event.request_event_id, False, event.reason.value,
                event.detail, 0, None, None, [], None, event.occurred_at,
            )  # fmt: skip
    return list(rows.values())


def write(conn: psycopg.Connection, events: Sequence[OutcomeEvent]) -> None:
    """Project `events` in the caller's transaction (executemany: pipelined by psycopg)."""
    if not events:
        return
    with conn.cursor() as cursor:
        cursor.executemany(_INSERT, rows_of(events))
