"""Rewards given without points (ADR 20): an offer's reward today; birthday, sign-up,
challenge and back-office grants build on the same `give`. A reward with a code stock or a
total-grants limit is allocated by the reward's agent like a redemption; otherwise it is
granted at once. Pure: times and ids come from the cause.

A free grant that cannot be given (unknown or ended reward, the member's limit, an empty
stock) gives nothing and says why in a note: nobody asked for it, so there is no request to
reject; the cause (e.g. the offer's completion) stands.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from datetime import date, datetime, timedelta

from processors.contract.base import Event
from processors.contract.config import RewardPublished
from processors.contract.internal import RewardAllocationRequested
from processors.contract.notifications import MessagePosted
from processors.contract.offer_definition import LocalizedCopy
from processors.contract.rewards import RewardGranted, RewardGrantReason
from processors.rules.arithmetic import derived_id
from processors.rules.rewards.state import (
    FreeGrant,
    GrantedReward,
    MemberRewards,
    PendingRedemption,
)


def give(
    rewards: MemberRewards,
    member_id: str,
    key: str,
    reward: RewardPublished | None,
    grant: FreeGrant,
) -> tuple[list[Event], str]:
    """Grant `reward` for `grant`'s cause, once per `key` (derived from the cause): the events
    and, when nothing was granted, why."""
    if key in rewards.pending or any(g.command_id == key for g in rewards.granted.values()):
        return [], "reward already granted for this cause"
    if reward is None:
        return [], "no such reward in the catalogue: nothing granted"
    if reward.available_until is not None and grant.at >= reward.available_until:
        return [], f"reward {reward.reward_id} has ended: nothing granted"
    limit = reward.grants_per_member_max
    if limit is not None and rewards.held(reward.reward_id) >= limit:
        return [], f"reward {reward.reward_id}: {limit} per member already held"
    pending = PendingRedemption(
        reward_id=reward.reward_id,
        program_id=reward.program_id,
        points=0,
        quantity=1,
        grant=grant,
        valid_days=reward.granted_valid_days,
        valid_until=reward.available_until if reward.granted_valid_days is None else None,
        discount=reward.discount,
    )
    if not reward.uses_code_stock and reward.grants_total_max is None:
        return book(rewards, member_id, key, pending, [grant.code]), ""
    rewards.pending[key] = pending
    asked = RewardAllocationRequested(
        event_id=derived_id("RWD-ALLOC", member_id, key),
        occurred_at=grant.at,
        reward_id=reward.reward_id,
        member_id=member_id,
        command_id=key,
        request_event_id=grant.cause_event_id,
        quantity=1,
        uses_code_stock=reward.uses_code_stock,
        grants_total_max=reward.grants_total_max,
        code=grant.code,
    )
    return [asked], ""


def book(
    rewards: MemberRewards,
    member_id: str,
    key: str,
    pending: PendingRedemption,
    codes: list[str | None],
) -> list[Event]:
    """One `RewardGranted` per code (None: the reward has no code stock), in the wallet."""
    grant = pending.grant
    assert grant is not None
    expires_at = expiry(pending, grant.at)
    emitted: list[Event] = []
    for unit, code in enumerate(codes):
        granted_id = granted_reward_id(member_id, key, unit)
        rewards.granted[granted_id] = GrantedReward(
            granted_reward_id=granted_id, reward_id=pending.reward_id, granted_at=grant.at,
            expires_at=expires_at, code=code, command_id=key, discount=pending.discount,
        )  # fmt: skip
        emitted.append(
            RewardGranted(
                event_id=derived_id("RWD-GRANT", granted_id),
                occurred_at=grant.at,
                member_id=member_id,
                granted_reward_id=granted_id,
                reward_id=pending.reward_id,
                reason=RewardGrantReason(grant.reason),
                program_id=grant.program_id,
                code=code,
                redemption_token=code or granted_id,
                expires_at=expires_at,
                cause_event_id=grant.cause_event_id,
                offer_id=grant.offer_id,
                discount=pending.discount,
                challenge_id=grant.challenge_id,
            )
        )
        if grant.title is not None and grant.locale is not None:
            emitted.append(
                MessagePosted(
                    event_id=derived_id("MSG", granted_id),
                    occurred_at=grant.at,
                    member_id=member_id,
                    message_id=derived_id("MSG", granted_id),
                    cause_event_id=grant.cause_event_id,
                    locale=grant.locale,
                    title=grant.title,
                    body=grant.body or grant.title,
                    expires_at=expires_at,
                )
            )
    return emitted


def granted_reward_id(member_id: str, key: str, unit: int = 0) -> str:
    """The id of the `unit`-th reward granted for `key`, known before the grant is booked
    (a challenge's completion names it; a grant waiting for a code keeps it)."""
    return derived_id("GR", member_id, key, str(unit))


def announced(grant: FreeGrant, reward: RewardPublished | None, preferred: str | None) -> FreeGrant:
    """`grant` with the inbox message that announces it: the reward's own copy, in the
    member's preferred language when the reward has it (`fr-CA` → `fr`), else English."""
    if reward is None:
        return grant
    copy = copy_for(reward.localized_copy, preferred)
    return grant.model_copy(
        update={"locale": copy.locale.value, "title": copy.headline,
                "body": copy.short_description}
    )  # fmt: skip


def copy_for(copies: Sequence[LocalizedCopy], preferred: str | None) -> LocalizedCopy:
    """The copy a message to the member uses: their preferred language when given (`fr-CA`
    → `fr`), else English."""
    wanted = (preferred or "en").split("-")[0]
    by_locale = {copy.locale.value: copy for copy in copies}
    return by_locale.get(wanted) or by_locale.get("en") or copies[0]


def birthday_on(birth: date, day: date) -> bool:
    """Whether `day` is the birthday of someone born on `birth`. Born on 29 February: the 28th
    in years without a 29th (the day before the birthday that does not exist, as most
    civil rules and loyalty programmes take it, so the reward stays in its month)."""
    if (birth.month, birth.day) == (2, 29) and not calendar.isleap(day.year):
        return (day.month, day.day) == (2, 28)
    return (birth.month, birth.day) == (day.month, day.day)


def expiry(pending: PendingRedemption, granted_at: datetime) -> datetime | None:
    """A granted reward lasts the reward's validity in days, else until the reward's own end."""
    if pending.valid_days is not None:
        return granted_at + timedelta(days=pending.valid_days)
    return pending.valid_until
