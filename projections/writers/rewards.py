"""The rewards projection: `RewardPublished` and `RewardCodesAdded` (loyalty.config.v1) and
`RewardGranted`, `RewardRedeemed`, `RewardExpired` (loyalty.rewards.v1) → rewards,
reward_codes, reward_stock and member_rewards.

Owns those four tables. It copies what the events say and decides nothing (the worker's
`processors.rules.rewards` decides grants and codes); it never commits (the caller's
transaction also holds the checkpoints) and never reads the clock, so a rebuild writes exactly
what live projection wrote.

Idempotent, and independent of the order the two topics arrive in:
- a publication replaces the reward's row whole, in the config topic's log order (one
  partition), as the worker's catalogue does;
- a code's row is created by whichever of its batch or its grant comes first, and each side
  keeps its first value (`coalesce`), so a redelivered batch or grant changes nothing;
- `reward_stock` counts only what a statement changed (`RETURNING`): a code counts as stocked
  when its first batch lands, as given when it is both stocked and granted, a grant when its
  wallet row is inserted; the counts are then the same in every replay;
- a wallet row is inserted once (the first of the log holds); a use or an expiry closes an
  ISSUED row once, so a later or repeated one changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from processors.codec.json_form import to_json_object
from processors.contract.config import RewardCodesAdded, RewardPublished
from processors.contract.rewards import RewardExpired, RewardGranted, RewardMoved, RewardRedeemed

TABLES = ("rewards", "reward_codes", "reward_stock", "member_rewards")

RewardEvent = (
    RewardPublished | RewardCodesAdded | RewardGranted | RewardRedeemed | RewardExpired
    | RewardMoved
)  # fmt: skip

EVENTS = (
    RewardPublished, RewardCodesAdded, RewardGranted, RewardRedeemed, RewardExpired, RewardMoved,
)  # fmt: skip
"""What this projection writes."""

_PUBLISH = """
INSERT INTO rewards AS current (reward_id, program_id, market, points_cost, uses_code_stock,
    available_from, available_until, granted_valid_days, grants_per_member_max,
    grants_total_max, localized_copy, published_event_id, published_at, definition)
VALUES (%(reward_id)s, %(program_id)s, %(market)s, %(points_cost)s, %(uses_code_stock)s,
    %(available_from)s, %(available_until)s, %(granted_valid_days)s, %(grants_per_member_max)s,
    %(grants_total_max)s, %(localized_copy)s, %(event_id)s, %(occurred_at)s, %(definition)s)
ON CONFLICT (reward_id) DO UPDATE
    SET program_id = excluded.program_id, market = excluded.market,
        points_cost = excluded.points_cost, uses_code_stock = excluded.uses_code_stock,
        available_from = excluded.available_from, available_until = excluded.available_until,
        granted_valid_days = excluded.granted_valid_days,
        grants_per_member_max = excluded.grants_per_member_max,
        grants_total_max = excluded.grants_total_max, localized_copy = excluded.localized_copy,
        published_event_id = excluded.published_event_id,
        published_at = excluded.published_at, definition = excluded.definition
"""

# A code already granted (its grant came first) counts as given the moment it is stocked.
_STOCK = """
WITH stocked AS (
    INSERT INTO reward_codes AS c (reward_id, code, batch_event_id, added_at)
    SELECT %(reward_id)s, code, %(event_id)s, %(occurred_at)s
    FROM unnest(%(codes)s::text[]) AS code
    ON CONFLICT (reward_id, code) DO UPDATE
        SET batch_event_id = excluded.batch_event_id, added_at = excluded.added_at
        WHERE c.batch_event_id IS NULL
    RETURNING granted_reward_id IS NOT NULL AS given)
INSERT INTO reward_stock AS s (reward_id, codes_stocked, codes_given, grants)
SELECT %(reward_id)s, count(*), count(*) FILTER (WHERE given), 0 FROM stocked
ON CONFLICT (reward_id) DO UPDATE
    SET codes_stocked = s.codes_stocked + excluded.codes_stocked,
        codes_given = s.codes_given + excluded.codes_given
"""

# 1. the wallet row, once; 2. its code marked given, once (counted if it was stocked);
# 3. the counts, by what 1 and 2 changed.
_GRANT = """
WITH granted AS (
    INSERT INTO member_rewards (granted_reward_id, member_id, reward_id, reason, program_id,
        points_spent, code, redemption_token, expires_at, granted_at, grant_event_id,
        cause_event_id, command_id, offer_id, challenge_id, status, discount)
    VALUES (%(granted_reward_id)s, %(member_id)s, %(reward_id)s, %(reason)s, %(program_id)s,
        %(points_spent)s, %(code)s, %(redemption_token)s, %(expires_at)s, %(occurred_at)s,
        %(event_id)s, %(cause_event_id)s, %(command_id)s, %(offer_id)s, %(challenge_id)s,
        'ISSUED', %(discount)s)
    ON CONFLICT (granted_reward_id) DO NOTHING
    RETURNING reward_id, code),
coded AS (
    INSERT INTO reward_codes AS c (reward_id, code, granted_reward_id, granted_at)
    SELECT reward_id, code, %(granted_reward_id)s, %(occurred_at)s
    FROM granted WHERE code IS NOT NULL
    ON CONFLICT (reward_id, code) DO UPDATE
        SET granted_reward_id = excluded.granted_reward_id, granted_at = excluded.granted_at
        WHERE c.granted_reward_id IS NULL
    RETURNING batch_event_id IS NOT NULL AS stocked)
INSERT INTO reward_stock AS s (reward_id, codes_stocked, codes_given, grants)
SELECT reward_id, 0, (SELECT count(*) FROM coded WHERE stocked),
    (%(reason)s <> 'MERGE')::int  -- a merge's copy is no new grant of the stock
FROM granted
ON CONFLICT (reward_id) DO UPDATE
    SET codes_given = s.codes_given + excluded.codes_given, grants = s.grants + excluded.grants
"""

_CLOSE = """
UPDATE member_rewards
SET status = %(status)s, closed_at = %(occurred_at)s, closed_event_id = %(event_id)s,
    redeemed_source = %(source)s, redeemed_transaction_id = %(transaction_id)s,
    redeemed_store_id = %(store_id)s, redeemed_till_id = %(till_id)s,
    redeemed_discount_cents = %(discount_cents)s
WHERE granted_reward_id = %(granted_reward_id)s AND member_id = %(member_id)s
    AND status = 'ISSUED'
"""

# A merge closes the victim's row as MOVED; the survivor's MERGE grant carries it on.
_MOVE = """
UPDATE member_rewards
SET status = 'MOVED', closed_at = %(occurred_at)s, closed_event_id = %(event_id)s,
    moved_to_member_id = %(to_member_id)s
WHERE granted_reward_id = %(granted_reward_id)s AND member_id = %(member_id)s
    AND status = 'ISSUED'
"""


_PUBLISHED_FIELDS = {
    "reward_id", "program_id", "market", "points_cost", "uses_code_stock", "available_from",
    "available_until", "granted_valid_days", "grants_per_member_max", "grants_total_max",
    "event_id", "occurred_at",
}  # fmt: skip
_GRANTED_FIELDS = {
    "granted_reward_id", "member_id", "reward_id", "program_id", "points_spent", "code",
    "redemption_token", "expires_at", "occurred_at", "event_id", "cause_event_id", "command_id",
    "offer_id", "challenge_id",
}  # fmt: skip


def _copy_by_locale(event: RewardPublished) -> dict[str, Any]:
    return {
        copy.locale.value: copy.model_dump(mode="json", exclude={"locale"})
        for copy in event.localized_copy
    }


def _closing(event: RewardRedeemed | RewardExpired, status: str) -> dict[str, Any]:
    return {
        "status": status,
        "granted_reward_id": event.granted_reward_id,
        "member_id": event.member_id,
        "occurred_at": event.occurred_at,
        "event_id": event.event_id,
    }


def statements_of(events: Iterable[RewardEvent]) -> list[tuple[str, dict[str, Any]]]:
    """The statements that apply `events`, in their order. Pure."""
    statements: list[tuple[str, dict[str, Any]]] = []
    for event in events:
        if isinstance(event, RewardPublished):
            params: dict[str, Any] = {
                **event.model_dump(include=_PUBLISHED_FIELDS),
                "localized_copy": Jsonb(_copy_by_locale(event)),
                "definition": Jsonb(to_json_object(event)),
            }
            statements.append((_PUBLISH, params))
        elif isinstance(event, RewardCodesAdded):
            params = {
                "reward_id": event.reward_id,
                "event_id": event.event_id,
                "occurred_at": event.occurred_at,
                "codes": list(event.codes),
            }
            statements.append((_STOCK, params))
        elif isinstance(event, RewardGranted):
            params = event.model_dump(include=_GRANTED_FIELDS)
            params["reason"] = event.reason.value
            params["discount"] = (
                None if event.discount is None else Jsonb(event.discount.model_dump(mode="json"))
            )
            statements.append((_GRANT, params))
        elif isinstance(event, RewardMoved):
            params = event.model_dump(
                include={"member_id", "to_member_id", "granted_reward_id", "occurred_at",
                         "event_id"}
            )  # fmt: skip
            statements.append((_MOVE, params))
        elif isinstance(event, RewardRedeemed):
            params = {
                **_closing(event, "REDEEMED"),
                "source": event.source.value,
                "transaction_id": event.transaction_id,
                "store_id": event.store_id,
                "till_id": event.till_id,
                "discount_cents": event.discount_cents,
            }
            statements.append((_CLOSE, params))
        else:
            params = {
                **_closing(event, "EXPIRED"),
                **dict.fromkeys(
                    ("source", "transaction_id", "store_id", "till_id", "discount_cents")
                ),
            }
            statements.append((_CLOSE, params))
    return statements


def write(conn: psycopg.Connection, events: Sequence[RewardEvent]) -> None:
    """Project `events` (in log order per partition) in the caller's transaction, pipelined:
    one round trip for the batch, statements applied in order."""
    if not events:
        return
    with conn.pipeline(), conn.cursor() as cursor:
        for statement, params in statements_of(events):
            cursor.execute(statement, params)
