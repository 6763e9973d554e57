"""The members projection: `MemberEnrolled`, `MemberProfileUpdated`, `MembersMerged` → members.

Owns the `members` table: the basics shown next to a member's ledger. It never decides anything
(whether a merge is allowed is the processors' business) and never reads the clock:
`updated_at` is the business time of the last event applied, so a rebuild writes what live
projection wrote. It never commits; the caller's transaction also holds the checkpoint.

Idempotent and order-safe per member:
- the first enrolment fixes `market` and `enrolled_at`; a later one (joining more programmes)
  refreshes the profile like a profile update;
- every enrolment adds its market and programmes to `markets` and `program_ids` (sorted sets:
  the order enrolments arrive in never shows), whatever the age of its profile;
- `profile` is the whole profile (JSON form) of the newest enrolment or update, for the offer
  rules (tier, targeting attributes) behind the cart preview;
- a profile applies only if it is not older (by `occurred_at`) than what the row shows, so an
  old event applied again never rolls the profile back;
- a merge marks the victim MERGED into the survivor for good; a profile update never revives it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from processors.contract.enrolments import (
    MemberEnrolled,
    MemberProfile,
    MemberProfileUpdated,
    MembersMerged,
)

TABLES = ("members",)

MemberEvent = MemberEnrolled | MemberProfileUpdated | MembersMerged

# Markets and programmes are unions, taken whatever the profile's age; the profile only when
# it is not older than the row's.
_ENROL = """
INSERT INTO members AS current (member_id, market, enrolled_at, first_name, last_name, email,
    preferred_locale, province, status, merged_into, updated_at, markets, program_ids, profile)
VALUES (%(member_id)s, %(market)s, %(occurred_at)s, %(first_name)s, %(last_name)s, %(email)s,
    %(preferred_locale)s, %(province)s, 'ACTIVE', NULL, %(occurred_at)s,
    ARRAY[%(market)s]::text[], %(program_ids)s::text[], %(profile)s)
ON CONFLICT (member_id) DO UPDATE
    SET markets = ARRAY(SELECT m FROM unnest(current.markets || excluded.markets) AS m
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
        updated_at = greatest(current.updated_at, excluded.updated_at)
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
    return {
        "first_name": profile.first_name,
        "last_name": profile.last_name,
        "email": profile.email,
        "preferred_locale": profile.preferred_locale,
        "province": profile.province,
        "profile": Jsonb(profile.model_dump(mode="json")),
    }


def statements_of(events: Iterable[MemberEvent]) -> list[tuple[str, dict[str, Any]]]:
    """The statements that apply `events`, in their order. Pure."""
    statements: list[tuple[str, dict[str, Any]]] = []
    for event in events:
        if isinstance(event, MemberEnrolled):
            params = {
                "member_id": event.member_id,
                "market": event.market,
                "program_ids": sorted(set(event.program_ids)),
                "occurred_at": event.occurred_at,
                **_basics(event.profile),
            }
            statements.append((_ENROL, params))
        elif isinstance(event, MemberProfileUpdated):
            params = {
                "member_id": event.member_id,
                "occurred_at": event.occurred_at,
                **_basics(event.profile),
            }
            statements.append((_UPDATE_PROFILE, params))
        else:
            params = {
                "victim": event.victim_member_id,
                "survivor": event.survivor_member_id,
                "occurred_at": event.occurred_at,
            }
            statements.append((_MERGE, params))
    return statements


def write(conn: psycopg.Connection, events: Sequence[MemberEvent]) -> None:
    """Project `events` (in log order per member) in the caller's transaction, pipelined: one
    round trip for the batch, statements applied in order."""
    if not events:
        return
    with conn.pipeline(), conn.cursor() as cursor:
        for statement, params in statements_of(events):
            cursor.execute(statement, params)
