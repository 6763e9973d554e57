"""The members projection: `MemberEnrolled`, `MemberProfileUpdated`, `MembersMerged` → members.

Owns the `members` table: the basics shown next to a member's ledger. It never decides anything
(whether a merge is allowed is the processors' business) and never reads the clock:
`updated_at` is the business time of the last event applied, so a rebuild writes what live
projection wrote. It never commits; the caller's transaction also holds the checkpoint.

Idempotent and order-safe per member:
- the first enrolment fixes `market` and `enrolled_at`; a later one (joining more programmes)
  refreshes the profile like a profile update;
- a profile applies only if it is not older (by `occurred_at`) than what the row shows, so an
  old event applied again never rolls the profile back;
- a merge marks the victim MERGED into the survivor for good; a profile update never revives it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import psycopg

from processors.contract.enrolments import (
    MemberEnrolled,
    MemberProfile,
    MemberProfileUpdated,
    MembersMerged,
)

TABLES = ("members",)

MemberEvent = MemberEnrolled | MemberProfileUpdated | MembersMerged

_ENROL = """
INSERT INTO members AS current (member_id, market, enrolled_at, first_name, last_name, email,
    preferred_locale, province, status, merged_into, updated_at)
VALUES (%(member_id)s, %(market)s, %(occurred_at)s, %(first_name)s, %(last_name)s, %(email)s,
    %(preferred_locale)s, %(province)s, 'ACTIVE', NULL, %(occurred_at)s)
ON CONFLICT (member_id) DO UPDATE
    SET first_name = excluded.first_name, last_name = excluded.last_name,
        email = excluded.email, preferred_locale = excluded.preferred_locale,
        province = excluded.province, updated_at = excluded.updated_at
    WHERE current.updated_at <= excluded.updated_at
"""

_UPDATE_PROFILE = """
UPDATE members
SET first_name = %(first_name)s, last_name = %(last_name)s, email = %(email)s,
    preferred_locale = %(preferred_locale)s, province = %(province)s, updated_at = %(occurred_at)s
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
    }


def statements_of(events: Iterable[MemberEvent]) -> list[tuple[str, dict[str, Any]]]:
    """The statements that apply `events`, in their order. Pure."""
    statements: list[tuple[str, dict[str, Any]]] = []
    for event in events:
        if isinstance(event, MemberEnrolled):
            params = {
                "member_id": event.member_id,
                "market": event.market,
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
