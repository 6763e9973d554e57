"""`GET /v1/members/{id}/challenges` (the member's challenges) and
`GET /v1/challenges/participation` (the analysts' figures), docs/adr/0027-challenges.md.

The member's view: the challenges running now in the member's market in their programmes
that they may still complete, each with its progress towards the next completion and its
deadline, then the completions they made (newest first), with points taken back by returns.
A member token reads only its own view (403 for another member, whether or not it exists);
staff read anyone's. Progress is what the worker last said (`ChallengeProgressed`); with a
rolling window, progress whose window passed before the market's day started is already out
of it, and `progress_expires_at` says when the oldest counted purchase or activity leaves it.

Participation is a staff view over the `challenge_participation` view analysts query with
SQL: the rate is computed there, once, and read here as it is.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from psycopg import AsyncConnection
from pydantic import ConfigDict, Field

from projections.api.auth import MemberId, Principal, staff_principal
from projections.api.errors import MemberMergedError, NotFoundError, refusals
from projections.api.locales import MemberLocaleQuery, for_member, pick
from projections.api.schemas import Body, Instant

router = APIRouter(tags=["challenges"])

NO_END = datetime.fromisoformat("3001-01-01T00:00:00+00:00")
"""The contract's "does not end" (DESIGN.md §5.10): shown as a null deadline."""

_MEMBER = "SELECT market, status, merged_into, preferred_locale FROM members WHERE member_id = %s"

# The member's market's challenges running now in their programmes: programmes come from
# their accounts (the ledger projection), standing from member_challenges.
_ACTIVE = """
SELECT c.challenge_id, c.program_id, c.goal_kind, c.goal, c.steps, c.starts_at, c.ends_at,
    c.completions_per_member_max, c.award_points, c.award_reward_id, c.localized_copy,
    coalesce(m.completions, 0), coalesce(m.progress, 0), m.threshold, m.metric,
    m.oldest_counted_at, m.joined_at
FROM challenges c
LEFT JOIN member_challenges m ON m.challenge_id = c.challenge_id AND m.member_id = %(member)s
WHERE c.market = %(market)s AND c.starts_at <= %(now)s AND %(now)s < c.ends_at
    AND coalesce(m.completions, 0) < c.completions_per_member_max
    AND c.program_id IN (
        SELECT DISTINCT program_id FROM member_balances WHERE member_id = %(member)s)
ORDER BY c.ends_at, c.challenge_id
"""

_COMPLETED = """
SELECT cc.challenge_id, cc.completion_number, cc.completed_at, cc.program_id,
    cc.points_awarded, cc.reward_id, cc.granted_reward_id, cc.points_taken_back,
    cc.taken_back_at, c.localized_copy
FROM challenge_completions cc LEFT JOIN challenges c USING (challenge_id)
WHERE cc.member_id = %s
ORDER BY cc.completed_at DESC, cc.challenge_id, cc.completion_number DESC
LIMIT 200
"""

_PARTICIPATION = """
SELECT challenge_id, program_id, market, starts_at, ends_at, members_joined,
    members_completed, completion_rate, completions, points_awarded, points_taken_back,
    rewards_granted
FROM challenge_participation
WHERE %(market)s::text IS NULL OR market = %(market)s
ORDER BY market, challenge_id
"""


class ChallengeCopy(Body):
    """The challenge's copy in the language shown."""

    locale: str
    headline: str
    short_description: str
    long_description: str | None = None
    terms: str | None = None
    image_url: str | None = None


class ActiveChallenge(Body):
    """A challenge the member may still complete, with their progress and deadline."""

    challenge_id: str
    program_id: str
    copy_: ChallengeCopy = Field(alias="copy", serialization_alias="copy")
    goal_kind: str = Field(description="VISITS, SPEND, QUANTITY or ACTIVITY.")
    goal: dict[str, Any] = Field(description="The goal as published (the contract's Behaviour).")
    steps: list[str] = Field(description="A series of steps, in the order they are done.")
    metric: str = Field(description="What progress counts: COUNT, SPEND_CENTS, QUANTITY.")
    progress: Decimal = Field(description="Towards the next completion, in the metric.")
    threshold: Decimal = Field(description="The progress that completes it.")
    steps_done: int | None = Field(description="For a series of steps: how many are done.")
    next_step: str | None = Field(description="For a series of steps: the one to do next.")
    completions: int
    completions_per_member_max: int
    starts_at: Instant
    deadline: Instant | None = Field(description="When it stops counting; null: no end.")
    progress_expires_at: Instant | None = Field(
        description="With a rolling window: when the oldest purchase or activity counted "
        "leaves it (progress then drops); null otherwise."
    )
    joined_at: Instant | None = Field(description="When anything first counted; null: not yet.")
    award_points: int | None
    award_reward_id: str | None

    model_config = ConfigDict(frozen=True, populate_by_name=True)


class CompletedChallenge(Body):
    """One completion: what it awarded, and what a return took back."""

    challenge_id: str
    copy_: ChallengeCopy | None = Field(alias="copy", serialization_alias="copy")
    completion_number: int
    completed_at: Instant
    program_id: str | None
    points_awarded: int
    reward_id: str | None
    granted_reward_id: str | None
    points_taken_back: int = Field(
        description="Points a return took back after completion; it stays completed."
    )
    taken_back_at: Instant | None

    model_config = ConfigDict(frozen=True, populate_by_name=True)


class MemberChallenges(Body):
    """The member's challenges: active ones first by deadline, then completions, newest first."""

    member_id: str
    market: str
    locale: str
    active: list[ActiveChallenge]
    completed: list[CompletedChallenge]

    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "examples": [{
                "member_id": "M-4471023", "market": "CA", "locale": "en",
                "active": [{
                    "challenge_id": "FIVE_VISITS_30D", "program_id": "CA_REWARDS",
                    "copy": {"locale": "en", "headline": "5 visits, 500 points",
                             "short_description": "Shop 5 times within 30 days."},
                    "goal_kind": "VISITS",
                    "goal": {"kind": "VISITS", "count_min": 5, "window_days": 30},
                    "steps": [], "metric": "COUNT", "progress": "3", "threshold": "5",
                    "steps_done": None, "next_step": None, "completions": 0,
                    "completions_per_member_max": 2, "starts_at": "2026-11-01T04:00:00Z",
                    "deadline": None, "progress_expires_at": "2026-12-01T15:10:00Z",
                    "joined_at": "2026-11-01T15:10:00Z", "award_points": 500,
                    "award_reward_id": None,
                }],
                "completed": [{
                    "challenge_id": "ONBOARDING", "copy": None, "completion_number": 1,
                    "completed_at": "2026-11-02T08:00:00Z", "program_id": "CA_REWARDS",
                    "points_awarded": 150, "reward_id": None, "granted_reward_id": None,
                    "points_taken_back": 0, "taken_back_at": None,
                }],
            }]
        },
    )  # fmt: skip


class Participation(Body):
    """One challenge's participation figures."""

    challenge_id: str
    program_id: str
    market: str
    starts_at: Instant
    ends_at: Instant = Field(description="3001-01-01: no end.")
    members_joined: int = Field(description="Members for whom anything counted.")
    members_completed: int = Field(description="Members who completed it at least once.")
    completion_rate: Decimal | None = Field(
        description="members_completed / members_joined, 4 places; null when nobody joined."
    )
    completions: int
    points_awarded: int
    points_taken_back: int
    rewards_granted: int


class ParticipationReport(Body):
    """Participation per challenge, by market then challenge."""

    market: str | None
    challenges: list[Participation]

    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "examples": [{
                "market": "CA",
                "challenges": [{
                    "challenge_id": "FIVE_VISITS_30D", "program_id": "CA_REWARDS",
                    "market": "CA", "starts_at": "2026-11-01T04:00:00Z",
                    "ends_at": "3001-01-01T00:00:00Z", "members_joined": 1200,
                    "members_completed": 300, "completion_rate": "0.2500", "completions": 342,
                    "points_awarded": 171000, "points_taken_back": 1000, "rewards_granted": 0,
                }],
            }]
        },
    )  # fmt: skip


def _connection(request: Request) -> AbstractAsyncContextManager[AsyncConnection[Any]]:
    pool = request.app.state.pool
    return pool.connection()  # type: ignore[no-any-return]


def _copy(localized: dict[str, dict[str, Any]] | None, locale: str) -> ChallengeCopy | None:
    if not localized:
        return None
    shown = pick(localized, locale)
    return ChallengeCopy(locale=shown, **localized[shown])


def _active(row: tuple[Any, ...], locale: str) -> ActiveChallenge:
    (challenge_id, program_id, goal_kind, goal, steps, starts_at, ends_at, most, points,
     reward_id, localized, completions, progress, threshold, metric, oldest,
     joined_at) = row  # fmt: skip
    window = goal.get("window_days")
    done = int(progress) if steps else None
    copy = _copy(localized, locale)
    assert copy is not None, "a published challenge has copy"
    return ActiveChallenge(
        challenge_id=challenge_id, program_id=program_id, copy=copy, goal_kind=goal_kind,
        goal=goal, steps=steps, metric=metric or _metric(goal_kind), progress=_plain(progress),
        threshold=_plain(threshold if threshold is not None else _threshold(goal, steps)),
        steps_done=done, next_step=steps[done] if done is not None and done < len(steps) else None,
        completions=completions, completions_per_member_max=most, starts_at=starts_at,
        deadline=None if ends_at >= NO_END else ends_at,
        progress_expires_at=oldest + timedelta(days=window) if oldest and window else None,
        joined_at=joined_at, award_points=points, award_reward_id=reward_id,
    )  # fmt: skip


def _plain(value: Decimal) -> Decimal:
    """A count or an amount without trailing zeros (3, not 3.000; 1500, not 1.5E+3)."""
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


def _metric(goal_kind: str) -> str:
    return {"SPEND": "SPEND_CENTS", "QUANTITY": "QUANTITY"}.get(goal_kind, "COUNT")


def _threshold(goal: dict[str, Any], steps: list[str]) -> Decimal:
    """The goal's threshold before anything counted (then the worker's own figure is shown)."""
    if steps:
        return Decimal(len(steps))
    field = {"SPEND": "spend_min_cents", "QUANTITY": "quantity_min", "VISITS": "count_min"}
    value = goal.get(field.get(goal["kind"], "count_min"))
    return Decimal(str(value if value is not None else 1))


@router.get(
    "/v1/members/{member_id}/challenges",
    summary="The member's active challenges with progress and deadline, and their completions",
    responses=refusals(
        400,
        401,
        403,
        404,
        409,
        414,
        503,
        described={
            403: "forbidden: a member token on another member's path",
            404: "not_found: no such member",
            409: "member_merged: the member was merged into another; read the survivor's",
            503: "database_unavailable: retry after `Retry-After`",
        },
    ),
)
async def read_member_challenges(
    request: Request, member_id: MemberId, locale: MemberLocaleQuery = None
) -> MemberChallenges:
    """Active challenges (running now in the member's market and programmes, not completed
    as often as allowed) with progress, threshold and deadline; then completions."""
    now: datetime = request.app.state.clock()
    async with _connection(request) as conn:
        member = await (await conn.execute(_MEMBER, (member_id,))).fetchone()
        if member is None:
            raise NotFoundError(f"no member '{member_id}'")
        if member[1] == "MERGED":
            raise MemberMergedError(member_id, member[2], "read the survivor's challenges")
        market, shown = member[0], for_member(locale, member[3])
        params = {"member": member_id, "market": market, "now": now}
        active = await (await conn.execute(_ACTIVE, params)).fetchall()
        completed = await (await conn.execute(_COMPLETED, (member_id,))).fetchall()
    return MemberChallenges(
        member_id=member_id,
        market=market,
        locale=shown,
        active=[_active(row, shown) for row in active],
        completed=[
            CompletedChallenge(
                challenge_id=row[0],
                completion_number=row[1],
                completed_at=row[2],
                program_id=row[3],
                points_awarded=row[4],
                reward_id=row[5],
                granted_reward_id=row[6],
                points_taken_back=row[7],
                taken_back_at=row[8],
                copy=_copy(row[9], shown),
            )
            for row in completed
        ],
    )


MarketFilter = Annotated[
    str | None,
    Query(
        min_length=2, max_length=16, pattern=r"^[A-Z0-9_]+$",
        description="Only this market's challenges.", examples=["CA"],
    ),
]  # fmt: skip


@router.get(
    "/v1/challenges/participation",
    summary="Participation per challenge: joined, completed, completion rate (staff)",
    responses=refusals(
        400,
        401,
        403,
        414,
        503,
        described={
            403: "forbidden: challenge participation needs a staff token",
            503: "database_unavailable: retry after `Retry-After`",
        },
    ),
)
async def read_participation(
    request: Request,
    _: Annotated[Principal, Depends(staff_principal)],
    market: MarketFilter = None,
) -> ParticipationReport:
    """Per challenge: members joined and completed, completion rate, completions, points
    awarded and taken back, rewards granted (the `challenge_participation` view)."""
    async with _connection(request) as conn:
        rows = await (await conn.execute(_PARTICIPATION, {"market": market})).fetchall()
    fields = tuple(Participation.model_fields)
    return ParticipationReport(
        market=market,
        challenges=[Participation(**dict(zip(fields, row, strict=True))) for row in rows],
    )
