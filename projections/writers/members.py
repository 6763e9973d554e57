"""The members projection: `MemberEnrolled`, `MemberProfileUpdated`, `MembersMerged` → members.

Owns the `members` table: the basics shown next to a member's ledger. It never decides anything
(whether a merge is allowed is the processors' business) and never reads the clock:
`updated_at` is the business time of the last event applied, so a rebuild writes what live
projection wrote. It never commits; the caller's transaction also holds the checkpoint.

An enrolment is a request the engine answers (ADR 28), not a fact: `write` keeps it in
`member_enrolments_pending` and `settle` opens it once its answer is in `request_outcomes`
(accepted), or drops it (refused: a refused enrolment never opens a member nor adds a market
or programme). The two topics arrive in either order; `settle` runs after both writers.

Idempotent and order-safe per member:
- the earliest accepted enrolment fixes `market` and `enrolled_at`, whichever is opened first;
  a later one (joining more programmes) refreshes the profile like a profile update;
- every accepted enrolment adds its market and programmes to `markets` and `program_ids`
  (sorted sets: the order enrolments arrive in never shows), whatever the age of its profile;
- `profile` is the whole profile (JSON form) of the newest enrolment or update, for the offer
  rules (tier, targeting attributes) behind the cart preview;
- a profile applies only if it is not older (by `occurred_at`) than what the row shows, so an
  old event applied again never rolls the profile back; an update that arrives while the
  enrolment awaits its answer applies to the waiting enrolment;
- a merge marks the victim MERGED into the survivor for good (a waiting enrolment too); a
  profile update never revives it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from processors.contract.enrolments import (
    MemberEnrolled,
    MemberProfile,
    MemberProfileUpdated,
    MembersMerged,
)
from processors.contract.outcomes import RequestAccepted, RequestRejected
from processors.contract.redemptions import RequestType

TABLES = ("members", "member_enrolments_pending")

MemberEvent = MemberEnrolled | MemberProfileUpdated | MembersMerged
OutcomeEvent = RequestAccepted | RequestRejected

# Opens an accepted enrolment. Markets and programmes are unions, taken whatever the profile's
# age; the profile only when it is not older than the row's; market and enrolment time the
# earliest enrolment's (of two at one instant, the first market by name), in whichever order
# enrolments are opened.
_OPEN = """
INSERT INTO members AS current (member_id, market, enrolled_at, first_name, last_name, email,
    preferred_locale, province, status, merged_into, updated_at, markets, program_ids, profile)
VALUES (%(member_id)s, %(market)s, %(enrolled_at)s, %(first_name)s, %(last_name)s, %(email)s,
    %(preferred_locale)s, %(province)s, %(status)s, %(merged_into)s, %(updated_at)s,
    ARRAY[%(market)s]::text[], %(program_ids)s::text[], %(profile)s)
ON CONFLICT (member_id) DO UPDATE
    SET market = CASE WHEN (excluded.enrolled_at, excluded.market COLLATE "C")
                < (current.enrolled_at, current.market COLLATE "C")
            THEN excluded.market ELSE current.market END,
        enrolled_at = least(current.enrolled_at, excluded.enrolled_at),
        markets = ARRAY(SELECT m FROM unnest(current.markets || excluded.markets) AS m
            GROUP BY m ORDER BY m COLLATE "C"),
        program_ids = ARRAY(SELECT p FROM unnest(current.program_ids || excluded.program_ids) AS p
            GROUP BY p ORDER BY p COLLATE "C"),
        first_name = CASE WHEN current.updated_at <= excluded.updated_at
            THEN excluded.first_name ELSE current.first_name END,
        last_name = CASE WHEN current.updated_at <= excluded.updated_at
            THEN excluded.last_name ELSE current.last_name END,
        email = CASE WHEN current.updated_at <= excluded.updated_at
            THEN excluded.email ELSE current.email END,
        preferred_locale = CASE WHEN current.updated_at <= excluded.updated_at
            THEN excluded.preferred_locale ELSE current.preferred_locale END,
        province = CASE WHEN current.updated_at <= excluded.updated_at
            THEN excluded.province ELSE current.province END,
        profile = CASE WHEN current.updated_at <= excluded.updated_at
            THEN excluded.profile ELSE current.profile END,
        status = CASE WHEN excluded.status = 'MERGED' THEN 'MERGED' ELSE current.status END,
        merged_into = coalesce(current.merged_into, excluded.merged_into),
        updated_at = greatest(current.updated_at, excluded.updated_at)
"""

_AWAIT = """
INSERT INTO member_enrolments_pending (member_id, command_id, market, program_ids, enrolled_at,
    profile_at, basics)
VALUES (%(member_id)s, %(command_id)s, %(market)s, %(program_ids)s::text[], %(occurred_at)s,
    %(occurred_at)s, %(basics)s)
ON CONFLICT (member_id, command_id) DO NOTHING
"""

# As on `members`, whose `updated_at` a merge moves too: a profile older than the last event
# applied does not apply.
_UPDATE_WAITING_PROFILE = """
UPDATE member_enrolments_pending SET basics = %(basics)s, profile_at = %(occurred_at)s
WHERE member_id = %(member_id)s
    AND greatest(profile_at, coalesce(merged_at, profile_at)) <= %(occurred_at)s
"""

_MERGE_WAITING = """
UPDATE member_enrolments_pending SET merged_into = %(survivor)s, merged_at = %(occurred_at)s
WHERE member_id = %(victim)s AND merged_into IS NULL
"""

# The enrolments whose answer is in: taken out of waiting, to be opened if accepted.
_SETTLE = """
DELETE FROM member_enrolments_pending AS p
USING request_outcomes AS o
WHERE o.member_id = p.member_id AND o.command_id = p.command_id
    AND o.request_type = 'ENROLMENT'
RETURNING o.accepted, p.member_id, p.market, p.program_ids, p.enrolled_at, p.profile_at,
    p.basics, p.merged_into, p.merged_at
"""

_UPDATE_PROFILE = """
UPDATE members
SET first_name = %(first_name)s, last_name = %(last_name)s, email = %(email)s,
    preferred_locale = %(preferred_locale)s, province = %(province)s, profile = %(profile)s,
    updated_at = %(occurred_at)s
WHERE member_id = %(member_id)s AND updated_at <= %(occurred_at)s
"""

_MERGE = """
UPDATE members
SET status = 'MERGED', merged_into = %(survivor)s,
    updated_at = greatest(updated_at, %(occurred_at)s)
WHERE member_id = %(victim)s
"""


def _basics(profile: MemberProfile) -> dict[str, Any]:
    """The columns a profile fills (the whole profile in JSON form among them)."""
    return {
        "first_name": profile.first_name,
        "last_name": profile.last_name,
        "email": profile.email,
        "preferred_locale": profile.preferred_locale,
        "province": profile.province,
        "profile": profile.model_dump(mode="json"),
    }


def _as_columns(basics: dict[str, Any]) -> dict[str, Any]:
    return {**basics, "profile": Jsonb(basics["profile"])}


def statements_of(events: Iterable[MemberEvent]) -> list[tuple[str, dict[str, Any]]]:
    """The statements that apply `events`, in their order. Pure. An enrolment waits for its
    answer (`settle` opens it); an update or a merge applies to the member and to what waits."""
    statements: list[tuple[str, dict[str, Any]]] = []
    for event in events:
        if isinstance(event, MemberEnrolled):
            params = {
                "member_id": event.member_id,
                "command_id": event.event_id,
                "market": event.market,
                "program_ids": sorted(set(event.program_ids)),
                "occurred_at": event.occurred_at,
                "basics": Jsonb(_basics(event.profile)),
            }
            statements.append((_AWAIT, params))
        elif isinstance(event, MemberProfileUpdated):
            basics = _basics(event.profile)
            params = {
                "member_id": event.member_id,
                "occurred_at": event.occurred_at,
                "basics": Jsonb(basics),
                **_as_columns(basics),
            }
            statements.append((_UPDATE_PROFILE, params))
            statements.append((_UPDATE_WAITING_PROFILE, params))
        else:
            params = {
                "victim": event.victim_member_id,
                "survivor": event.survivor_member_id,
                "occurred_at": event.occurred_at,
            }
            statements.append((_MERGE, params))
            statements.append((_MERGE_WAITING, params))
    return statements


def _opening(
    member_id: str,
    market: str,
    program_ids: Sequence[str],
    enrolled_at: datetime,
    profile_at: datetime,
    basics: dict[str, Any],
    merged_into: str | None = None,
    merged_at: datetime | None = None,
) -> dict[str, Any]:
    return {
        "member_id": member_id,
        "market": market,
        "program_ids": sorted(set(program_ids)),
        "enrolled_at": enrolled_at,
        "updated_at": profile_at if merged_at is None else max(profile_at, merged_at),
        "status": "ACTIVE" if merged_into is None else "MERGED",
        "merged_into": merged_into,
        **_as_columns(basics),
    }


def write(conn: psycopg.Connection, events: Sequence[MemberEvent]) -> None:
    """Project `events` (in log order per member) in the caller's transaction, pipelined: one
    round trip for the batch, statements applied in order. Enrolments wait for `settle`."""
    if not events:
        return
    with conn.pipeline(), conn.cursor() as cursor:
        for statement, params in statements_of(events):
            cursor.execute(statement, params)


_SERIALIZE = "SELECT pg_advisory_xact_lock(%s)"
SETTLE_LOCK = 0x6C6F79616C747901
"""The advisory lock projector transactions that write enrolments or their answers take first
(`serialize`): with several projectors, an enrolment and its answer may be written by two
transactions at once, and each one's `settle` would miss the other's uncommitted row."""


def touches_enrolments(
    member_events: Iterable[MemberEvent], outcome_events: Iterable[OutcomeEvent]
) -> bool:
    """Whether a batch writes an enrolment or an enrolment's answer (then it takes the lock
    before writing either, and settles)."""
    return any(isinstance(e, MemberEnrolled) for e in member_events) or any(
        e.request_type is RequestType.ENROLMENT for e in outcome_events
    )


def serialize(conn: psycopg.Connection) -> None:
    """Wait for any other transaction writing enrolments or their answers to end: taken before
    writing either, so the `settle` that follows sees what the other committed (Read
    Committed: each statement sees the rows committed before it starts)."""
    conn.execute(_SERIALIZE, (SETTLE_LOCK,))


def settle(conn: psycopg.Connection) -> None:
    """Open every waiting enrolment the engine accepted and drop every one it refused, in the
    caller's transaction. Run after this writer and the outcomes writer, in either order."""
    with conn.cursor() as cursor:
        decided = cursor.execute(_SETTLE).fetchall()
        opened = [
            _opening(*opening)
            for accepted, *opening in decided
            if accepted
        ]  # fmt: skip
        # Oldest first: which profile wins a tie does not depend on the rows' order here.
        opened.sort(key=lambda o: (o["member_id"], o["enrolled_at"], o["updated_at"], o["market"]))
        if opened:
            cursor.executemany(_OPEN, opened)


def open_enrolled(conn: psycopg.Connection, enrolments: Sequence[MemberEnrolled]) -> None:
    """Open `enrolments` as accepted, without waiting for answers: for worlds a benchmark
    seeds directly into the tables (no worker answers them there)."""
    opened = [
        _opening(e.member_id, e.market, e.program_ids, e.occurred_at, e.occurred_at,
                 _basics(e.profile))
        for e in enrolments
    ]  # fmt: skip
    if opened:
        with conn.cursor() as cursor:
            cursor.executemany(_OPEN, opened)
