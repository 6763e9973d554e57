"""A member's granted rewards after the grant (ADR 20): used once at the till, expired by the
daily run, forgotten a year after they closed. Pure: times come from the inputs.

- A `TransactionCompleted` that carries a granted reward's token (its code, else its id) uses
  it when it applies (`till.check`): `RewardRedeemed` with the cents its discount took off,
  once. A token already used, expired, not this member's, or whose discount's least spend the
  basket misses is noted and changes nothing: the transaction is a fact, so it is not
  refused; the till learns beforehand from the cart evaluation whether a token applies.
- A day's run expires every issued reward whose expiry has come by the start of that day:
  `RewardExpired`, once. The points spent on it are not refunded (the member chose when to
  use it; a refund would let points outlive their own expiry).
- A return does not reinstate a used reward: its benefit was given at the till; the points
  earned on the purchase are re-evaluated as for any return.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from processors.contract.base import Event
from processors.contract.clock import DayStarted
from processors.contract.rewards import RewardExpired, RewardRedeemed
from processors.contract.transactions import TransactionCompleted
from processors.rules.arithmetic import derived_id
from processors.rules.rewards import till
from processors.rules.rewards.state import GrantedReward, MemberRewards

KEPT_AFTER_CLOSING = timedelta(days=365)
"""How long a used or expired reward stays in the member's state (the wallet's history is the
projection's)."""


@dataclass
class Outcome:
    """What the wallet emits, and why nothing happened when nothing did."""

    emitted: list[Event] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def use_tokens(rewards: MemberRewards, purchase: TransactionCompleted, left: int) -> Outcome:
    """Mark the rewards whose tokens the purchase carries as used (see the module), in its
    order, each taking at most what its promo codes and the rewards before it `left` of the
    basket, as the till was told (`till.check_in_order`)."""
    outcome = Outcome()
    if not purchase.redemption_tokens:
        return outcome
    member_id = purchase.partition_key()
    by_token = {token_of(g): g for g in rewards.granted.values()}
    tokens = dict.fromkeys(purchase.redemption_tokens)  # a token given twice is used once
    verdicts = till.check_in_order(
        {t: None if t not in by_token else held(member_id, by_token[t]) for t in tokens},
        member_id=member_id, lines=purchase.lines, at=purchase.occurred_at, gross=True,
        left=left,
    )  # fmt: skip
    for verdict in verdicts:
        granted = by_token.get(verdict.token)
        if not verdict.applies or granted is None:
            outcome.notes.append(verdict.detail or f"token {verdict.token} does not apply")
            continue
        granted.status, granted.closed_at = "REDEEMED", purchase.occurred_at
        outcome.emitted.append(
            RewardRedeemed(
                event_id=derived_id("RWD-USED", granted.granted_reward_id),
                occurred_at=purchase.occurred_at,
                member_id=member_id,
                granted_reward_id=granted.granted_reward_id,
                reward_id=granted.reward_id,
                code=granted.code,
                cause_event_id=purchase.event_id,
                source=purchase.source,
                transaction_id=purchase.transaction_id,
                store_id=purchase.store.store_id,
                till_id=purchase.till_id,
                discount_cents=None if granted.discount is None else verdict.discount_cents,
            )
        )
    return outcome


def held(member_id: str, granted: GrantedReward) -> till.Held:
    """What the till judges of a reward the member holds."""
    return till.Held(
        member_id=member_id, granted_reward_id=granted.granted_reward_id,
        reward_id=granted.reward_id, status=granted.status, expires_at=granted.expires_at,
        discount=granted.discount,
    )  # fmt: skip


def start_day(rewards: MemberRewards, member_id: str, day: DayStarted) -> Outcome:
    """Expire what has come due by the start of the day; forget what closed long ago."""
    outcome = Outcome()
    for granted in sorted(rewards.granted.values(), key=lambda g: g.granted_reward_id):
        due = granted.expires_at is not None and granted.expires_at <= day.started_at
        if granted.status != "ISSUED" or not due:
            continue
        assert granted.expires_at is not None
        granted.status, granted.closed_at = "EXPIRED", granted.expires_at
        outcome.emitted.append(
            RewardExpired(
                event_id=derived_id("RWD-EXPIRED", granted.granted_reward_id),
                occurred_at=max(day.occurred_at, granted.expires_at),
                member_id=member_id,
                granted_reward_id=granted.granted_reward_id,
                reward_id=granted.reward_id,
                code=granted.code,
                expires_at=granted.expires_at,
                cause_event_id=day.event_id,
            )
        )
    rewards.granted = {
        key: g for key, g in rewards.granted.items() if not _forgotten(g, day.started_at)
    }
    return outcome


def token_of(granted: GrantedReward) -> str:
    """What the till sends to use a granted reward: its code, else its id (a reward moved by
    a merge keeps the token it had)."""
    return granted.token or granted.code or granted.granted_reward_id


def _forgotten(granted: GrantedReward, now: datetime) -> bool:
    return granted.closed_at is not None and granted.closed_at + KEPT_AFTER_CLOSING < now
