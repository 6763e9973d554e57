"""A member spends points on a catalogue reward (DESIGN.md §5.15, §5.26; ADR 20).

Steps, each idempotent:
1. `request`: the member's partition answers at once what it can judge alone (unknown member
   or reward, another programme's or market's reward or its eligibility criteria unmet
   (`unmet`), not available, expired, the member's limit, the balance). A reward without a
   code stock or a total-grants limit is then booked at once.
   Otherwise the points are **reserved** (still in the balance, no longer spendable) and a
   `RewardAllocationRequested` goes to the reward's agent.
2. The reward's agent (`stock.decide`) gives the grants (and their codes) in arrival order, or
   refuses them all.
3. `allocated`: the reservation becomes the `POINTS_REDEMPTION` debit (earliest-expiring lots
   first), each unit a `RewardGranted`, then `RequestAccepted` naming them. If the member can no
   longer pay (merged away, or the reserved lots expired meanwhile) the request is rejected and
   the codes go back to the stock (`RewardAllocationReleased`): no debit without a grant, no
   grant without a debit, no code lost. `refused`: the reservation is released and the request
   rejected `out_of_stock`.

Pure: every time comes from the request; every id derives from the member and the command.
"""

from __future__ import annotations

from datetime import datetime

from processors.contract.base import Event
from processors.contract.common import PointsCategory
from processors.contract.config import RewardPublished
from processors.contract.internal import (
    RewardAllocated,
    RewardAllocationRefused,
    RewardAllocationReleased,
    RewardAllocationRequested,
)
from processors.contract.ledger import EntryKind, LedgerEventType
from processors.contract.outcomes import RejectionReason
from processors.contract.redemptions import RewardRedemptionRequested
from processors.contract.rewards import RewardGranted, RewardGrantReason
from processors.rules import identity
from processors.rules.arithmetic import derived_id
from processors.rules.ledger import requests
from processors.rules.ledger.draft import Draft
from processors.rules.ledger.state import MemberLedger, Reserved
from processors.rules.offers.state import MemberOffers
from processors.rules.rewards import eligibility, external, grants
from processors.rules.rewards.state import GrantedReward, MemberRewards, PendingRedemption

Refusal = tuple[RejectionReason, str]


def unmet(reward: RewardPublished | None, member: MemberOffers, at: datetime) -> str | None:
    """Why the member may not redeem `reward` (its market, its eligibility criteria judged
    on the member's facts as offers' targeting judges them), or None if they may."""
    if reward is None:
        return None
    return eligibility.unmet(
        f"reward {reward.reward_id}", reward.market, reward.eligibility, member, at
    )


def request(
    ledger: MemberLedger | None,
    rewards: MemberRewards,
    asked: RewardRedemptionRequested,
    reward: RewardPublished | None,
    ineligible: str | None = None,
) -> list[Event]:
    """Step 1 (see the module). A repeated command_id gets its outcome again, or nothing while
    it is in flight; the same command_id with another body is a conflict."""
    repeated = requests.repeat(ledger, asked)
    if repeated is not None:
        return repeated.emitted
    pending = rewards.pending.get(asked.command_id)
    if pending is not None:
        identity.check("command_id", asked.command_id, pending.digest, asked, identity.REQUEST)
        return []  # in flight: the answer comes once the reward's agent has decided
    refusal = _refusal(ledger, rewards, asked, reward, ineligible)
    if refusal is not None:
        return [requests.reply(ledger, asked, reason=refusal[0], detail=refusal[1])]
    assert ledger is not None
    assert reward is not None
    assert reward.points_cost is not None
    points = reward.points_cost * asked.quantity
    pending = PendingRedemption(
        reward_id=reward.reward_id,
        program_id=asked.program_id,
        points=points,
        quantity=asked.quantity,
        request=asked,
        digest=identity.digest(asked, identity.REQUEST),
        valid_days=reward.granted_valid_days,
        valid_until=reward.available_until if reward.granted_valid_days is None else None,
        discount=reward.discount,
    )
    if not reward.uses_code_stock and reward.grants_total_max is None:
        return _book(ledger, rewards, pending, [None] * asked.quantity)  # nothing to allocate
    rewards.pending[asked.command_id] = pending
    ledger.reserved[asked.command_id] = Reserved(program_id=asked.program_id, points=points)
    return [
        RewardAllocationRequested(
            event_id=allocation_id(asked.member_id, asked.command_id),
            occurred_at=asked.occurred_at,
            reward_id=reward.reward_id,
            member_id=asked.member_id,
            command_id=asked.command_id,
            request_event_id=asked.event_id,
            quantity=asked.quantity,
            uses_code_stock=reward.uses_code_stock,
            grants_total_max=reward.grants_total_max,
        )
    ]


def allocated(
    ledger: MemberLedger | None, rewards: MemberRewards, step: RewardAllocated
) -> list[Event]:
    """Step 3, granted: book the debit and the grants, once."""
    pending = rewards.pending.pop(step.command_id, None)
    if pending is None or ledger is None:
        return []  # already answered: a redelivered step
    codes: list[str | None] = list(step.codes) or [None] * pending.quantity
    if pending.grant is not None:  # a free grant: nothing reserved, nothing to pay
        upstream = pending.grant.request  # an upstream system's grant waits for its answer
        if ledger.status != "ACTIVE":
            gone = [release(step, pending, pending.grant.at)]
            if upstream is not None:
                reason, detail = requests.cannot_spend(ledger, []) or (
                    RejectionReason.unknown_member, "no such member")  # fmt: skip
                gone.append(requests.reply(ledger, upstream, reason=reason, detail=detail))
            return gone
        booked = grants.book(rewards, step.member_id, step.command_id, pending, codes)
        if upstream is not None:
            booked += external.booked(ledger, upstream, booked)
        return booked
    asked = pending.request
    assert asked is not None
    ledger.reserved.pop(step.command_id, None)
    cannot = requests.cannot_spend(ledger, [(pending.program_id, pending.points)])
    if cannot is not None:
        reason, detail = cannot
        refusal = requests.reply(ledger, asked, reason=reason, detail=detail)
        return [release(step, pending, asked.occurred_at), refusal]
    return _book(ledger, rewards, pending, codes)


def release(step: RewardAllocated, pending: PendingRedemption, at: datetime) -> Event:
    """Grants given that cannot be used: back to the reward's stock (codes first in line)."""
    return RewardAllocationReleased(
        event_id=derived_id("RWD-REL", step.member_id, step.command_id),
        occurred_at=at,
        reward_id=step.reward_id,
        member_id=step.member_id,
        command_id=step.command_id,
        codes=list(step.codes),
        quantity=pending.quantity,
    )


def refused(
    ledger: MemberLedger | None, rewards: MemberRewards, step: RewardAllocationRefused
) -> list[Event]:
    """Step 3, refused: release the reserved points and reject `out_of_stock`, once."""
    pending = rewards.pending.pop(step.command_id, None)
    if pending is not None and pending.request is None:
        return external.refused(ledger, pending, step)  # a free grant: an upstream's answered
    if pending is None or ledger is None or pending.request is None:
        return []  # answered already
    ledger.reserved.pop(step.command_id, None)
    detail = f"reward {step.reward_id}: {step.reason.value.lower().replace('_', ' ')}"
    outcome = requests.reply(
        ledger, pending.request, reason=RejectionReason.out_of_stock, detail=detail
    )
    return [outcome]


def allocation_id(member_id: str, command_id: str) -> str:
    """The id of the allocation request of a member's redemption: the same on every replay."""
    return derived_id("RWD-ALLOC", member_id, command_id)


def granted_id(member_id: str, command_id: str, unit: int) -> str:
    """The id of the `unit`-th reward a redemption grants (0-based)."""
    return derived_id("GR", member_id, command_id, str(unit))


def _refusal(
    ledger: MemberLedger | None,
    rewards: MemberRewards,
    asked: RewardRedemptionRequested,
    reward: RewardPublished | None,
    ineligible: str | None,
) -> Refusal | None:
    """Why the redemption is refused, checked in this order; None if it may go on."""
    if ledger is None or ledger.status == "UNKNOWN":
        return RejectionReason.unknown_member, "no such member"
    if ledger.status == "MERGED":
        return RejectionReason.member_merged, f"merged into {ledger.merged_into}"
    if reward is None:
        return RejectionReason.unknown_reward, f"no reward {asked.reward_id} in the catalogue"
    if reward.program_id != asked.program_id:
        return (
            RejectionReason.not_eligible,
            f"reward {reward.reward_id} is paid with {reward.program_id} points, "
            f"not {asked.program_id}",
        )
    if ineligible is not None:
        return RejectionReason.not_eligible, ineligible
    at = asked.occurred_at
    if reward.points_cost is None:
        return RejectionReason.reward_unavailable, f"reward {reward.reward_id} is not for sale"
    if at < reward.available_from:
        when = reward.available_from.isoformat()
        return RejectionReason.reward_unavailable, f"reward {reward.reward_id} opens at {when}"
    if reward.available_until is not None and at >= reward.available_until:
        when = reward.available_until.isoformat()
        return RejectionReason.reward_expired, f"reward {reward.reward_id} ended at {when}"
    limit = reward.grants_per_member_max
    if limit is not None and rewards.held(reward.reward_id) + asked.quantity > limit:
        held = rewards.held(reward.reward_id)
        # Every grant counts, used or expired too: "held" read as "still in the wallet".
        return (
            RejectionReason.limit_reached,
            f"reward {reward.reward_id}: {held} granted to the member (used and expired ones "
            f"included) and {asked.quantity} asked, over the {limit} per member",
        )
    return requests.cannot_spend(ledger, [(asked.program_id, reward.points_cost * asked.quantity)])


def _book(
    ledger: MemberLedger,
    rewards: MemberRewards,
    pending: PendingRedemption,
    codes: list[str | None],
) -> list[Event]:
    """The debit, one `RewardGranted` per unit, and the accepted outcome naming them."""
    asked = pending.request
    assert asked is not None
    draft = Draft(
        ledger,
        LedgerEventType.POINTS_REDEMPTION,
        cause_event_id=asked.event_id,
        occurred_at=asked.occurred_at,
        source=asked.source,
        store_id=asked.store_id,
        till_id=asked.till_id,
        transaction_id=asked.transaction_id,
    )
    draft.debit(pending.program_id, PointsCategory.REGULAR, EntryKind.REDEMPTION, pending.points)
    sealed = draft.seal()
    emitted: list[Event] = [sealed] if sealed is not None else []
    expires_at = grants.expiry(pending, asked.occurred_at)
    granted: list[str] = []
    for unit, code in enumerate(codes):
        grant_id = granted_id(asked.member_id, asked.command_id, unit)
        granted.append(grant_id)
        rewards.granted[grant_id] = GrantedReward(
            granted_reward_id=grant_id,
            reward_id=pending.reward_id,
            granted_at=asked.occurred_at,
            expires_at=expires_at,
            code=code,
            command_id=asked.command_id,
            discount=pending.discount,
            points_spent=pending.points // pending.quantity,
        )
        emitted.append(
            RewardGranted(
                event_id=derived_id("RWD-GRANT", grant_id),
                occurred_at=asked.occurred_at,
                member_id=asked.member_id,
                granted_reward_id=grant_id,
                reward_id=pending.reward_id,
                reason=RewardGrantReason.REDEMPTION,
                program_id=pending.program_id,
                points_spent=pending.points // pending.quantity,
                code=code,
                redemption_token=code or grant_id,
                expires_at=expires_at,
                cause_event_id=asked.event_id,
                command_id=asked.command_id,
                discount=pending.discount,
            )
        )
    emitted.append(
        requests.reply(
            ledger,
            asked,
            points=pending.points,
            discount_cents=None,
            ledger_event_log_id=sealed.event_log_id if sealed is not None else None,
            granted_reward_ids=granted,
        )
    )
    return emitted
