"""A member's progress on challenges: what a purchase, an activity, a return or the day's start
does to it, and the completions, awards and take-backs that follow
(docs/adr/0027-challenges.md).

Decisions:
- A challenge counts for members of its market enrolled in its programme, while it is live
  (business time). Nothing to join: the first purchase or activity that counts joins it.
- Values come from the offers' measures (`offers.progress`): a purchase's eligible lines
  (the goal's products, without the programme's global exclusions, net of the till's own
  discounts) are worth their spend, quantity or one visit; an activity is worth 1 when it
  matches. A series of steps counts a step only when it is the next one in order.
- One cause completes at most one completion; progress then starts again from zero (the
  excess is not carried over), up to `completions_per_member_max`.
- A return takes progress back. After a completion the challenge is never re-opened, but when
  the return takes that completion below its goal the points it awarded are taken back in the
  return's ledger event (ChallengeAwardTakenBack); a granted reward is not (it may be used).

Never reads a clock; ids derive from the cause, so a replay emits the same events.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from processors.contract.activities import ActivityKind, ActivityRecorded
from processors.contract.base import Event
from processors.contract.clock import DayStarted
from processors.contract.config import ChallengePublished, ProgramConfigured
from processors.contract.offer_definition import Behaviour, BehaviourKind
from processors.contract.offers import (
    ChallengeAwardTakenBack,
    ChallengeCompleted,
    ChallengeProgressed,
)
from processors.contract.transactions import TransactionCompleted, TransactionReturned
from processors.rules.arithmetic import derived_id
from processors.rules.challenges.catalogue import PURCHASE_GOALS, Challenges
from processors.rules.challenges.state import (
    ChallengeStanding,
    Completion,
    Counted,
    CountedPurchase,
    MemberChallenges,
)
from processors.rules.ledger import policy
from processors.rules.offers import progress
from processors.rules.offers.discounts import PricedLine
from processors.rules.offers.products import Selector, eligible
from processors.rules.offers.state import Contribution, LineFacts
from processors.rules.selection import hierarchy_of


@dataclass(frozen=True)
class Cause:
    """The input being counted: its event id, business time and transaction (if one)."""

    event_id: str
    at: datetime
    transaction_id: str | None = None

    @property
    def key(self) -> str:
        """What a contribution is filed under: the transaction (returns find it), or the event."""
        return self.transaction_id or self.event_id


@dataclass(frozen=True)
class PointsDue:
    """Points a completion credits (CHALLENGE_AWARD), or a return takes back (RETURN debit)."""

    challenge_id: str
    program_id: str
    points: int
    completed_event_id: str
    occurred_at: datetime
    transaction_id: str | None
    awarded_at: datetime | None = None  # taken back: when it was paid (names its lot)


@dataclass(frozen=True)
class RewardDue:
    """A master reward a completion grants; the member rules give it through `grants`."""

    challenge_id: str
    reward_id: str
    program_id: str
    completed: ChallengeCompleted


@dataclass
class Outcome:
    """What one input did to the member's challenges, in order."""

    events: list[Event] = field(default_factory=list)
    awards: list[PointsDue] = field(default_factory=list)
    rewards: list[RewardDue] = field(default_factory=list)
    taken_back: list[PointsDue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Member:
    """Who is counting: the member, their markets and the programmes they are enrolled in."""

    member_id: str
    markets: Collection[str]
    programs: Collection[str]


def threshold(challenge: ChallengePublished) -> Decimal:
    """The progress that completes the challenge: every step of a series, else the goal's."""
    if challenge.steps:
        return Decimal(len(challenge.steps))
    needed = progress.threshold(challenge.goal)
    assert needed is not None, "a supported goal has a threshold"
    return needed


def on_purchase(
    state: MemberChallenges,
    tx: TransactionCompleted,
    challenges: Challenges,
    programs: Mapping[str, ProgramConfigured],
    member: Member,
) -> Outcome:
    """Count a purchase towards the live challenges its eligible lines meet; once per
    transaction (the ledger's record of it is the caller's gate, this one is a second)."""
    outcome = Outcome()
    if tx.transaction_id in state.purchases:
        return outcome
    state.see(tx.occurred_at)
    cause = Cause(tx.event_id, tx.occurred_at, tx.transaction_id)
    record = CountedPurchase(at=tx.occurred_at)
    priced = [PricedLine.of(line) for line in tx.lines]
    for challenge in _live(challenges, member, [tx.market], tx.occurred_at):
        goal = challenge.goal
        if goal.kind not in PURCHASE_GOALS:
            continue
        program = programs.get(challenge.program_id)
        excluded = (
            policy.excluded_skus(program, tx.store.province, tx.lines) if program else frozenset()
        )
        selector = Selector.of(goal.products) if goal.products is not None else None
        lines = eligible(priced, selector, excluded)
        value = progress.purchase_value(goal, lines)
        if value <= 0:
            continue
        number = _count(state, challenge, value, cause, member, outcome)
        if number is not None:
            ids = [line.line_id for line in lines]
            record.counted[challenge.challenge_id] = Counted(
                completion=number, value=value, lines=ids
            )
    if record.counted:
        record.lines = {
            line.line_id: LineFacts(
                sku=line.sku,
                amount_cents=line.amount_cents,
                quantity=line.quantity,
                **hierarchy_of(line),
            )
            for line in tx.lines
        }
        state.purchases[tx.transaction_id] = record
    return outcome


def on_activity(
    state: MemberChallenges, activity: ActivityRecorded, challenges: Challenges, member: Member
) -> Outcome:
    """Count an activity towards the live ACTIVITY challenges it matches; a step of a series
    only when it is the next one. The caller counts each activity once (its event id)."""
    outcome = Outcome()
    state.see(activity.occurred_at)
    cause = Cause(activity.event_id, activity.occurred_at)
    for challenge in _live(challenges, member, member.markets, activity.occurred_at):
        if challenge.goal.kind is not BehaviourKind.ACTIVITY:
            continue
        if challenge.steps:
            if not _is_next_step(state, challenge, activity, outcome):
                continue
            value = Decimal(1)
        else:
            value = progress.activity_value(challenge.goal, activity)
        if value > 0:
            _count(state, challenge, value, cause, member, outcome)
    return outcome


def on_return(
    state: MemberChallenges,
    returned: TransactionReturned,
    challenges: Challenges,
    member_id: str,
) -> Outcome:
    """Take back what the returned lines no longer count: progress towards the completion in
    progress, or, when the purchase counted towards a completion that the return takes below
    its goal, that completion's points. Idempotent per return id."""
    outcome = Outcome()
    record = state.purchases.get(returned.transaction_id)
    if record is None or returned.return_id in record.return_ids:
        return outcome
    record.return_ids.append(returned.return_id)
    for item in returned.lines:
        facts = record.lines.get(item.line_id)
        if facts is not None:
            facts.returned_cents += min(item.amount_cents, facts.kept_cents)
            facts.returned_quantity += min(item.quantity, facts.kept_quantity)
    cause = Cause(returned.event_id, returned.occurred_at, returned.transaction_id)
    for challenge_id in sorted(record.counted):
        challenge = challenges.get(challenge_id)
        standing = state.standings.get(challenge_id)
        if challenge is None or standing is None:
            continue
        counted = record.counted[challenge_id]
        kept = _kept_value(challenge.goal, record, counted)
        drop = counted.value - kept
        if drop <= 0:
            continue
        counted.value = kept
        if counted.completion > standing.completions:
            _take_progress(standing, returned.transaction_id, drop)
            outcome.events.append(_progressed(member_id, challenge, standing, cause))
            continue
        completion = standing.completion(counted.completion)
        if completion is None or completion.taken_back:
            continue
        completion.progress -= drop
        if completion.progress < threshold(challenge) and completion.points_awarded > 0:
            completion.taken_back = True
            outcome.events.append(_taken_back(member_id, challenge, completion, cause))
            outcome.taken_back.append(
                PointsDue(
                    challenge_id,
                    completion.program_id,
                    completion.points_awarded,
                    completion.completed_event_id,
                    returned.occurred_at,
                    returned.transaction_id,
                    completion.at,
                )
            )
    return outcome


def on_day(
    state: MemberChallenges, day: DayStarted, challenges: Challenges, member_id: str
) -> Outcome:
    """The market's day started: progress counted more than a rolling window ago stops
    counting (ChallengeProgressed says so), and challenges that ended before the returns
    window are forgotten, so the state stays bounded."""
    outcome = Outcome()
    horizon = policy.returns_horizon(day.business_date)
    cause = Cause(day.event_id, day.started_at)
    for challenge_id in sorted(state.standings):
        challenge = challenges.get(challenge_id)
        standing = state.standings[challenge_id]
        if challenge is None or challenge.ends_at < horizon:
            del state.standings[challenge_id]
            continue
        if challenge.market != day.market or challenge.goal.window_days is None:
            continue
        inside = progress.in_window(challenge.goal, standing.contributions, day.started_at)
        if len(inside) < len(standing.contributions):
            standing.contributions = inside
            outcome.events.append(_progressed(member_id, challenge, standing, cause))
    return outcome


def _live(
    challenges: Challenges, member: Member, markets: Collection[str], at: datetime
) -> list[ChallengePublished]:
    """Live challenges in `markets` (those of the member's) of the member's programmes."""
    mine = [m for m in markets if m in member.markets]
    return [c for c in challenges.live(mine, at) if c.program_id in member.programs]


def _is_next_step(
    state: MemberChallenges,
    challenge: ChallengePublished,
    activity: ActivityRecorded,
    outcome: Outcome,
) -> bool:
    if activity.kind is not ActivityKind.CHALLENGE_STEP:
        return False
    if activity.challenge_id != challenge.challenge_id:
        return False
    standing = state.standings.get(challenge.challenge_id)
    done = len(standing.contributions) if standing is not None else 0
    expected = challenge.steps[done]
    if activity.step != expected:
        outcome.notes.append(
            f"challenge {challenge.challenge_id}: step {activity.step} is not the next one "
            f"({expected}); not counted"
        )
        return False
    return True


def _count(
    state: MemberChallenges,
    challenge: ChallengePublished,
    value: Decimal,
    cause: Cause,
    member: Member,
    outcome: Outcome,
) -> int | None:
    """Add `value` to the completion in progress; complete it when the goal is met. Returns
    the completion the cause counted towards (None: it counted nothing)."""
    standing = state.standings.get(challenge.challenge_id)
    if standing is not None and standing.completions >= challenge.completions_per_member_max:
        return None
    goal = challenge.goal
    accumulated = progress.is_accumulated(goal)
    if not accumulated and value < threshold(challenge):
        return None  # one transaction must meet it alone: nothing to keep
    if standing is None:
        standing = state.standings[challenge.challenge_id] = ChallengeStanding(joined_at=cause.at)
    number = standing.completions + 1
    inside = progress.in_window(goal, standing.contributions, cause.at) if accumulated else []
    total = value + sum((c.value for c in inside), Decimal(0))
    if total < threshold(challenge):
        standing.contributions = [*inside, Contribution(at=cause.at, value=value, cause=cause.key)]
        outcome.events.append(_progressed(member.member_id, challenge, standing, cause))
        return number
    standing.completions = number
    standing.contributions = []
    completed = ChallengeCompleted(
        event_id=derived_id("challenge-completed", cause.event_id, challenge.challenge_id,
                            str(number)),
        occurred_at=cause.at,
        member_id=member.member_id,
        challenge_id=challenge.challenge_id,
        cause_event_id=cause.event_id,
        completion_number=number,
        program_id=challenge.program_id if challenge.award_points else None,
        points_awarded=challenge.award_points or 0,
    )  # fmt: skip
    standing.history.append(
        Completion(
            number=number,
            at=cause.at,
            completed_event_id=completed.event_id,
            program_id=challenge.program_id,
            progress=total,
            points_awarded=challenge.award_points or 0,
        )
    )
    if challenge.award_points:
        outcome.events.append(completed)
        outcome.awards.append(
            PointsDue(
                challenge.challenge_id,
                challenge.program_id,
                challenge.award_points,
                completed.event_id,
                cause.at,
                cause.transaction_id,
            )
        )
    else:
        assert challenge.award_reward_id is not None, "a challenge awards points or a reward"
        # Emitted by the member rules with the grant's id once `grants` gave it.
        outcome.rewards.append(
            RewardDue(
                challenge.challenge_id, challenge.award_reward_id, challenge.program_id, completed
            )
        )
    return number


def _kept_value(goal: Behaviour, record: CountedPurchase, counted: Counted) -> Decimal:
    """What the purchase's counted lines are still worth towards the goal after returns."""
    kept = [record.lines[x] for x in counted.lines if x in record.lines]
    if goal.kind is BehaviourKind.SPEND:
        return Decimal(max(sum(f.kept_cents for f in kept), 0))
    if goal.kind is BehaviourKind.QUANTITY:
        return max(sum((f.kept_quantity for f in kept), Decimal(0)), Decimal(0))
    has_lines = any(f.kept_quantity > 0 for f in kept)
    return Decimal(progress.is_visit(goal, has_lines, sum(f.kept_cents for f in kept)))


def _take_progress(standing: ChallengeStanding, transaction_id: str, drop: Decimal) -> None:
    for contribution in standing.contributions:
        if drop > 0 and contribution.cause == transaction_id:
            taken = min(drop, contribution.value)
            contribution.value -= taken
            drop -= taken
    standing.contributions = [c for c in standing.contributions if c.value > 0]


def _progressed(
    member_id: str, challenge: ChallengePublished, standing: ChallengeStanding, cause: Cause
) -> ChallengeProgressed:
    goal = challenge.goal
    inside = progress.in_window(goal, standing.contributions, cause.at)
    number = standing.completions + 1
    return ChallengeProgressed(
        event_id=derived_id("challenge-progressed", cause.event_id, challenge.challenge_id,
                            str(number)),
        occurred_at=cause.at,
        member_id=member_id,
        challenge_id=challenge.challenge_id,
        cause_event_id=cause.event_id,
        transaction_id=cause.transaction_id,
        completion_number=number,
        metric=progress.metric(goal),
        progress=sum((c.value for c in inside), Decimal(0)),
        threshold=threshold(challenge),
        oldest_counted_at=min((c.at for c in inside), default=None)
        if goal.window_days is not None
        else None,
    )  # fmt: skip


def _taken_back(
    member_id: str, challenge: ChallengePublished, completion: Completion, cause: Cause
) -> ChallengeAwardTakenBack:
    assert cause.transaction_id is not None, "only a return takes an award back"
    return ChallengeAwardTakenBack(
        event_id=derived_id("challenge-taken-back", cause.event_id, challenge.challenge_id,
                            str(completion.number)),
        occurred_at=cause.at,
        member_id=member_id,
        challenge_id=challenge.challenge_id,
        cause_event_id=cause.event_id,
        transaction_id=cause.transaction_id,
        completion_number=completion.number,
        completed_event_id=completion.completed_event_id,
        program_id=completion.program_id,
        points_taken_back=completion.points_awarded,
    )  # fmt: skip
