"""A merge moves the victim's usable granted rewards to the survivor (seed 004: a granted
reward is tied to a member's card; after a merge, the survivor's). Pure.

Every event about one wallet row stays on one member's partition, so the projection needs no
order between partitions:
- the victim's side (`moved_away`): each issued reward not yet past its expiry is closed as
  MOVED (`RewardMoved`, keyed by the victim; one past its expiry is left for the daily run to
  expire) and travels in the `MemberMergedAway` the ledger sends the survivor,
  with its code, token, expiry, discount and price; used and expired ones stay the victim's
  history;
- the survivor's side (`moved_in`): each becomes a reward of its own (`RewardGranted`, reason
  MERGE, an id derived from the survivor and the victim's id) with the same code, token,
  expiry and discount, once: a redelivered step adds nothing.
A redemption in flight at the merge is not moved: it is rejected `member_merged` and its codes
go back to the stock (ADR 20).
"""

from __future__ import annotations

from datetime import datetime

from processors.contract.base import Event
from processors.contract.internal import MemberMergedAway, MovedReward
from processors.contract.rewards import RewardGranted, RewardGrantReason, RewardMoved
from processors.rules.arithmetic import derived_id
from processors.rules.rewards.state import GrantedReward, MemberRewards
from processors.rules.rewards.wallet import token_of


def moved_away(
    rewards: MemberRewards, victim: str, survivor: str, cause_event_id: str, at: datetime
) -> tuple[list[MovedReward], list[Event]]:
    """Close the victim's issued rewards as moved: what travels to the survivor, and the
    victim's `RewardMoved` events."""
    moving = sorted(
        (
            g
            for g in rewards.granted.values()
            if g.status == "ISSUED" and (g.expires_at is None or g.expires_at > at)
        ),
        key=lambda g: g.granted_reward_id,
    )
    travelling: list[MovedReward] = []
    emitted: list[Event] = []
    for granted in moving:
        granted.status, granted.closed_at = "MOVED", at
        travelling.append(
            MovedReward(
                granted_reward_id=granted.granted_reward_id,
                reward_id=granted.reward_id,
                granted_at=granted.granted_at,
                expires_at=granted.expires_at,
                code=granted.code,
                redemption_token=token_of(granted),
                points_spent=granted.points_spent,
                discount=granted.discount,
            )
        )
        emitted.append(
            RewardMoved(
                event_id=derived_id("RWD-MOVED", granted.granted_reward_id),
                occurred_at=at,
                member_id=victim,
                to_member_id=survivor,
                granted_reward_id=granted.granted_reward_id,
                reward_id=granted.reward_id,
                code=granted.code,
                cause_event_id=cause_event_id,
            )
        )
    return travelling, emitted


def moved_in(rewards: MemberRewards, step: MemberMergedAway) -> list[Event]:
    """The survivor's copy of each of the victim's rewards, once."""
    emitted: list[Event] = []
    for moved in step.rewards:
        granted_id = derived_id("GR-MERGE", step.member_id, moved.granted_reward_id)
        if granted_id in rewards.granted:
            continue
        rewards.granted[granted_id] = GrantedReward(
            granted_reward_id=granted_id,
            reward_id=moved.reward_id,
            granted_at=step.occurred_at,
            expires_at=moved.expires_at,
            code=moved.code,
            command_id=moved.granted_reward_id,
            discount=moved.discount,
            token=moved.redemption_token,
            points_spent=moved.points_spent,
        )
        emitted.append(
            RewardGranted(
                event_id=derived_id("RWD-GRANT", granted_id),
                occurred_at=step.occurred_at,
                member_id=step.member_id,
                granted_reward_id=granted_id,
                reward_id=moved.reward_id,
                reason=RewardGrantReason.MERGE,
                points_spent=moved.points_spent,
                code=moved.code,
                redemption_token=moved.redemption_token,
                expires_at=moved.expires_at,
                cause_event_id=step.event_id,
                discount=moved.discount,
            )
        )
    return emitted
