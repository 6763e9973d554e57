"""The challenges projection: `ChallengePublished` (loyalty.config.v1) and
`ChallengeProgressed`, `ChallengeCompleted`, `ChallengeAwardTakenBack` (loyalty.offers.v1) →
challenges, member_challenges and challenge_completions (docs/adr/0027-challenges.md).

Owns those three tables. It copies what the events say and decides nothing (the worker's
`processors.rules.challenges` decides); it never commits (the caller's transaction also holds
the checkpoints) and never reads the clock, so a rebuild writes exactly what live projection
wrote.

Idempotent: a publication replaces the challenge's row whole, in the config topic's log order;
a member's events come in their partition's order, and each statement says where the
member stands after it (the latest progress, completions = the highest completion seen, the
earliest joining instant), so a redelivered event writes what it wrote; a completion is
inserted once and its points are taken back once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from processors.contract.config import ChallengePublished
from processors.contract.offers import (
    ChallengeAwardTakenBack,
    ChallengeCompleted,
    ChallengeProgressed,
)

TABLES = ("challenges", "member_challenges", "challenge_completions")

ChallengeEvent = (
    ChallengePublished | ChallengeProgressed | ChallengeCompleted | ChallengeAwardTakenBack
)

EVENTS = (ChallengePublished, ChallengeProgressed, ChallengeCompleted, ChallengeAwardTakenBack)
"""What this projection writes."""

_PUBLISH = """
INSERT INTO challenges AS current (challenge_id, program_id, market, goal_kind, goal, steps,
    starts_at, ends_at, completions_per_member_max, award_points, award_reward_id,
    localized_copy, published_event_id, published_at)
VALUES (%(challenge_id)s, %(program_id)s, %(market)s, %(goal_kind)s, %(goal)s, %(steps)s,
    %(starts_at)s, %(ends_at)s, %(completions_per_member_max)s, %(award_points)s,
    %(award_reward_id)s, %(localized_copy)s, %(event_id)s, %(occurred_at)s)
ON CONFLICT (challenge_id) DO UPDATE
    SET program_id = excluded.program_id, market = excluded.market,
        goal_kind = excluded.goal_kind, goal = excluded.goal, steps = excluded.steps,
        starts_at = excluded.starts_at, ends_at = excluded.ends_at,
        completions_per_member_max = excluded.completions_per_member_max,
        award_points = excluded.award_points, award_reward_id = excluded.award_reward_id,
        localized_copy = excluded.localized_copy,
        published_event_id = excluded.published_event_id, published_at = excluded.published_at
"""

# The progress of the completion in progress; one of an earlier completion (a redelivery
# after the completion) changes nothing.
_PROGRESS = """
INSERT INTO member_challenges AS m (member_id, challenge_id, joined_at, completions,
    completion_number, metric, progress, threshold, oldest_counted_at, updated_at,
    updated_event_id)
VALUES (%(member_id)s, %(challenge_id)s, %(occurred_at)s, %(completion_number)s - 1,
    %(completion_number)s, %(metric)s, %(progress)s, %(threshold)s, %(oldest_counted_at)s,
    %(occurred_at)s, %(event_id)s)
ON CONFLICT (member_id, challenge_id) DO UPDATE
    SET joined_at = least(m.joined_at, excluded.joined_at),
        completion_number = excluded.completion_number, metric = excluded.metric,
        progress = excluded.progress, threshold = excluded.threshold,
        oldest_counted_at = excluded.oldest_counted_at, updated_at = excluded.updated_at,
        updated_event_id = excluded.updated_event_id
    WHERE excluded.completion_number > m.completions
"""

# 1. the completion, once; 2. the member's standing: that many completions, progress from 0.
_COMPLETE = """
WITH completed AS (
    INSERT INTO challenge_completions (event_id, member_id, challenge_id, completion_number,
        cause_event_id, completed_at, program_id, points_awarded, reward_id, granted_reward_id)
    VALUES (%(event_id)s, %(member_id)s, %(challenge_id)s, %(completion_number)s,
        %(cause_event_id)s, %(occurred_at)s, %(program_id)s, %(points_awarded)s,
        %(reward_id)s, %(granted_reward_id)s)
    ON CONFLICT DO NOTHING
    RETURNING member_id)
INSERT INTO member_challenges AS m (member_id, challenge_id, joined_at, completions,
    completion_number, progress, updated_at, updated_event_id)
VALUES (%(member_id)s, %(challenge_id)s, %(occurred_at)s, %(completion_number)s,
    %(completion_number)s + 1, 0, %(occurred_at)s, %(event_id)s)
ON CONFLICT (member_id, challenge_id) DO UPDATE
    SET joined_at = least(m.joined_at, excluded.joined_at),
        completions = excluded.completions, completion_number = excluded.completion_number,
        progress = 0, oldest_counted_at = NULL, updated_at = excluded.updated_at,
        updated_event_id = excluded.updated_event_id
    WHERE excluded.completions > m.completions
"""

_TAKE_BACK = """
UPDATE challenge_completions
SET points_taken_back = %(points_taken_back)s, taken_back_at = %(occurred_at)s,
    taken_back_event_id = %(event_id)s
WHERE event_id = %(completed_event_id)s AND member_id = %(member_id)s
    AND taken_back_event_id IS NULL
"""


_PUBLISHED_FIELDS = {
    "challenge_id", "program_id", "market", "starts_at", "ends_at", "completions_per_member_max",
    "award_points", "award_reward_id", "event_id", "occurred_at",
}  # fmt: skip
_PROGRESS_FIELDS = {
    "member_id", "challenge_id", "occurred_at", "completion_number", "progress", "threshold",
    "oldest_counted_at", "event_id",
}  # fmt: skip
_COMPLETED_FIELDS = {
    "event_id", "member_id", "challenge_id", "completion_number", "cause_event_id",
    "occurred_at", "program_id", "points_awarded", "reward_id", "granted_reward_id",
}  # fmt: skip
_TAKEN_BACK_FIELDS = {
    "points_taken_back", "occurred_at", "event_id", "completed_event_id", "member_id",
}  # fmt: skip


def _copy_by_locale(event: ChallengePublished) -> dict[str, Any]:
    return {
        copy.locale.value: copy.model_dump(mode="json", exclude={"locale"})
        for copy in event.localized_copy
    }


def statements_of(events: Iterable[ChallengeEvent]) -> list[tuple[str, dict[str, Any]]]:
    """The statements that apply `events`, in their order. Pure."""
    statements: list[tuple[str, dict[str, Any]]] = []
    for event in events:
        if isinstance(event, ChallengePublished):
            params: dict[str, Any] = {
                **event.model_dump(include=_PUBLISHED_FIELDS),
                "goal_kind": event.goal.kind.value,
                "goal": Jsonb(event.goal.model_dump(mode="json")),
                "steps": Jsonb(list(event.steps)),
                "localized_copy": Jsonb(_copy_by_locale(event)),
            }
            statements.append((_PUBLISH, params))
        elif isinstance(event, ChallengeProgressed):
            params = event.model_dump(include=_PROGRESS_FIELDS)
            params["metric"] = event.metric.value
            statements.append((_PROGRESS, params))
        elif isinstance(event, ChallengeCompleted):
            statements.append((_COMPLETE, event.model_dump(include=_COMPLETED_FIELDS)))
        else:
            statements.append((_TAKE_BACK, event.model_dump(include=_TAKEN_BACK_FIELDS)))
    return statements


def write(conn: psycopg.Connection, events: Sequence[ChallengeEvent]) -> None:
    """Project `events` (in log order per partition) in the caller's transaction, pipelined:
    one round trip for the batch, statements applied in order."""
    if not events:
        return
    with conn.pipeline(), conn.cursor() as cursor:
        for statement, params in statements_of(events):
            cursor.execute(statement, params)
