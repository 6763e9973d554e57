"""A reward granted by an upstream system, recorded (seed 004: "the attribution can either be
owned by your external system such as the PoS or e-commerce, or by Splio"). Pure.

`RewardGrantRecordRequested` names the member, the reward and the code the upstream gave. It
is a free grant (`grants.give`, reason EXTERNAL) whose code is the upstream's: when the reward
keeps a stock or a total-grants limit, its agent takes that code out of the stock (or accepts
a code it never stocked) and refuses one already granted (`code_taken`), so the wallet and
the stock stay right whoever attributed the code. Every request is answered: refused at once
(`unknown_member`, `member_merged`, `unknown_reward`, `reward_expired`, `limit_reached`), or
accepted naming the granted reward once it is booked (at once, or when the agent answers).
"""

from __future__ import annotations

from processors.contract.base import Event
from processors.contract.config import RewardPublished
from processors.contract.internal import RewardAllocationRefusal, RewardAllocationRefused
from processors.contract.outcomes import RejectionReason
from processors.contract.redemptions import RewardGrantRecordRequested
from processors.contract.rewards import RewardGranted, RewardGrantReason
from processors.rules import identity
from processors.rules.ledger import requests
from processors.rules.ledger.state import MemberLedger
from processors.rules.rewards import grants
from processors.rules.rewards.state import FreeGrant, MemberRewards, PendingRedemption

REFUSED_BY_THE_STOCK = {
    RewardAllocationRefusal.CODE_TAKEN: RejectionReason.code_taken,
    RewardAllocationRefusal.OUT_OF_CODES: RejectionReason.out_of_stock,
    RewardAllocationRefusal.GRANTS_SPENT: RejectionReason.out_of_stock,
}


def record(
    ledger: MemberLedger | None,
    rewards: MemberRewards,
    asked: RewardGrantRecordRequested,
    reward: RewardPublished | None,
) -> list[Event]:
    """Record the upstream's grant (see the module)."""
    repeated = requests.repeat(ledger, asked)
    if repeated is not None:
        return repeated.emitted
    pending = rewards.pending.get(asked.command_id)
    if pending is not None:
        identity.check("command_id", asked.command_id, pending.digest, asked, identity.REQUEST)
        return []  # in flight: answered once the reward's agent has decided
    refusal = _refusal(ledger, rewards, asked, reward)
    if refusal is not None:
        return [requests.reply(ledger, asked, reason=refusal[0], detail=refusal[1])]
    assert reward is not None
    grant = FreeGrant(
        reason=RewardGrantReason.EXTERNAL.value, cause_event_id=asked.event_id,
        at=asked.occurred_at, program_id=reward.program_id, code=asked.code, request=asked,
    )  # fmt: skip
    emitted, why = grants.give(rewards, asked.member_id, asked.command_id, reward, grant)
    assert not why, why  # `_refusal` judged what `give` would refuse
    if asked.command_id in rewards.pending:
        rewards.pending[asked.command_id].digest = identity.digest(asked, identity.REQUEST)
        return emitted  # the allocation; answered by `booked` or `refused`
    return [*emitted, *booked(ledger, asked, emitted)]


def booked(
    ledger: MemberLedger | None, asked: RewardGrantRecordRequested, emitted: list[Event]
) -> list[Event]:
    """The acceptance naming the granted reward, once the grant is booked."""
    granted = [e.granted_reward_id for e in emitted if isinstance(e, RewardGranted)]
    return [requests.reply(ledger, asked, discount_cents=None, granted_reward_ids=granted)]


def refused(
    ledger: MemberLedger | None, pending: PendingRedemption, step: RewardAllocationRefused
) -> list[Event]:
    """The refusal of an upstream's grant the reward's agent could not give."""
    asked = pending.grant.request if pending.grant is not None else None
    if asked is None:
        return []
    reason = REFUSED_BY_THE_STOCK.get(step.reason, RejectionReason.out_of_stock)
    detail = f"reward {step.reward_id}: {step.reason.value.lower().replace('_', ' ')}"
    if asked.code is not None:
        detail += f" ({asked.code})"
    return [requests.reply(ledger, asked, reason=reason, detail=detail)]


def _refusal(
    ledger: MemberLedger | None,
    rewards: MemberRewards,
    asked: RewardGrantRecordRequested,
    reward: RewardPublished | None,
) -> tuple[RejectionReason, str] | None:
    if ledger is None or ledger.status == "UNKNOWN":
        return RejectionReason.unknown_member, "no such member"
    if ledger.status == "MERGED":
        return RejectionReason.member_merged, f"merged into {ledger.merged_into}"
    if reward is None:
        return RejectionReason.unknown_reward, f"no reward {asked.reward_id} in the catalogue"
    at = asked.occurred_at
    if reward.available_until is not None and at >= reward.available_until:
        when = reward.available_until.isoformat()
        return RejectionReason.reward_expired, f"reward {reward.reward_id} ended at {when}"
    limit = reward.grants_per_member_max
    if limit is not None and rewards.held(reward.reward_id) >= limit:
        return RejectionReason.limit_reached, f"reward {reward.reward_id}: {limit} per member held"
    return None
