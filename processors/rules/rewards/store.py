"""Reward stores (seed 002; ADR 20): a member buys an offer a store sells with points and gets
their own instance of it, which one later transaction uses once: locked first for that
transaction (reserve → commit, DESIGN.md §5.25), or redeemed at once.

A store is configured (`RewardStoreConfigured`: market, programme and points category,
availability, eligibility) and sells the live offers of its programme whose `reward_store`
listing names it; who may buy is who the store admits and the offer targets. Every request is
answered (`RequestAccepted`/`RequestRejected` with a stable reason) and remembered, so a
repeated command_id gets its first answer again.

- Purchase: `unknown_member`, `member_merged`, `unknown_offer` (no such offer, not listed in
  that store, no such store or withdrawn, or an offer of another programme than the store's),
  `offer_not_live` (the store outside its availability, or the offer outside its schedule),
  `not_eligible` (outside the store's market or eligibility; the offer's programme, not
  targeted, or held out as control), `limit_reached` (the offer's uses per member, counting
  instances held), `insufficient_points` (in the store's category); else one
  `POINTS_REDEMPTION` debit from the store's programme and category, the instance (named by
  the outcome's `issued_offer_id`) and a `MessagePosted` in the member's inbox announcing it
  with the offer's copy.
- Lock: the instance is reserved for one transaction for `LOCK_MINUTES`; the same transaction
  may lock it again (it is extended); another transaction is refused `reward_locked` until the
  lock lapses. Redeem at once: the instance is spent for that transaction (or for the next
  one that carries it, when the request names none).
- Either way the transaction that carries the instance gets the offer's benefit once: the offer
  rules apply a store offer only to a transaction presenting a usable instance, and the
  completion marks it used.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from processors.contract.base import Event
from processors.contract.config import OfferPublished, RewardStoreConfigured
from processors.contract.enrolments import MemberProfile
from processors.contract.internal import MemberMergedAway, MovedIssuedOffer
from processors.contract.ledger import EntryKind, LedgerEventType
from processors.contract.notifications import MessagePosted
from processors.contract.offers import IssuedOfferMoved
from processors.contract.outcomes import RejectionReason
from processors.contract.redemptions import (
    IssuedOfferLockRequested,
    IssuedOfferRedeemRequested,
    IssuedOfferUnlockRequested,
    RewardStoreOfferPurchaseRequested,
)
from processors.contract.transactions import TransactionCompleted
from processors.rules.arithmetic import derived_id
from processors.rules.ledger import requests
from processors.rules.ledger.draft import Draft
from processors.rules.ledger.state import MemberLedger
from processors.rules.offers import targeting
from processors.rules.offers.state import IssuedOffer, MemberOffers
from processors.rules.rewards import eligibility, grants

LOCK_MINUTES = 30
"""How long a lock reserves an issued offer for its transaction (a basket left at the till)."""

Refusal = tuple[RejectionReason, str]


def issued_offer_id(member_id: str, command_id: str) -> str:
    """The instance a member's purchase (by its command id) issues: the same on every replay."""
    return derived_id("IO", member_id, command_id)


def purchase(
    ledger: MemberLedger | None,
    offers: MemberOffers,
    asked: RewardStoreOfferPurchaseRequested,
    offer: OfferPublished | None,
    reward_store: RewardStoreConfigured | None,
) -> list[Event]:
    """Buy one instance of a store's offer (see the module)."""
    repeated = requests.repeat(ledger, asked)
    if repeated is not None:
        return repeated.emitted
    refusal = purchase_refusal(
        ledger, offers, asked.reward_store_id, asked.offer_id, offer, reward_store,
        asked.occurred_at,
    )  # fmt: skip
    if refusal is not None:
        return [requests.reply(ledger, asked, reason=refusal[0], detail=refusal[1])]
    assert ledger is not None
    assert offer is not None
    assert offer.reward_store is not None
    assert reward_store is not None
    points = offer.reward_store.points_cost
    draft = Draft(
        ledger, LedgerEventType.POINTS_REDEMPTION, cause_event_id=asked.event_id,
        occurred_at=asked.occurred_at, source=asked.source,
    )  # fmt: skip
    draft.debit(reward_store.program_id, reward_store.category, EntryKind.REDEMPTION, points)
    sealed = draft.seal()
    issued_id = issued_offer_id(asked.member_id, asked.command_id)
    offers.issued[issued_id] = IssuedOffer(
        issued_offer_id=issued_id, offer_id=offer.offer_id,
        reward_store_id=asked.reward_store_id, points=points, issued_at=asked.occurred_at,
    )  # fmt: skip
    outcome = requests.reply(
        ledger, asked, points=points, discount_cents=None,
        ledger_event_log_id=sealed.event_log_id if sealed else None, issued_offer_id=issued_id,
        offer_id=offer.offer_id, reward_store_id=asked.reward_store_id,
    )  # fmt: skip
    message = announcement(asked, offer, issued_id, offers.profile)
    return [*([sealed] if sealed else []), message, outcome]


def announcement(
    asked: RewardStoreOfferPurchaseRequested,
    offer: OfferPublished,
    issued_id: str,
    profile: MemberProfile | None,
) -> MessagePosted:
    """The inbox message telling the member the offer is theirs: its headline and short
    description in the member's preferred language (as a granted reward is announced)."""
    copy = grants.copy_for(offer.localized_copy, profile.preferred_locale if profile else None)
    message_id = derived_id("MSG", issued_id)
    return MessagePosted(
        event_id=message_id, occurred_at=asked.occurred_at, member_id=asked.member_id,
        message_id=message_id, cause_event_id=asked.event_id, locale=copy.locale.value,
        title=copy.headline, body=copy.short_description, image_url=copy.image_url,
    )  # fmt: skip


def hold(
    ledger: MemberLedger | None,
    offers: MemberOffers,
    asked: IssuedOfferLockRequested | IssuedOfferRedeemRequested | IssuedOfferUnlockRequested,
) -> list[Event]:
    """Lock an instance to one transaction for `LOCK_MINUTES`, spend it at once for that
    transaction, or release the lock a cancelled transaction holds before it lapses (see the
    module). An unlock of an instance not locked (never, or released already) is accepted as
    it is, so a till may repeat a cancellation; one locked to another transaction
    (`reward_locked`, unless that lock lapsed) or used already (`duplicate_request`) is
    refused, as a lock or a redeem would be."""
    repeated = requests.repeat(ledger, asked)
    if repeated is not None:
        return repeated.emitted
    refusal = _use_refusal(ledger, offers, asked.issued_offer_id, asked.transaction_id,
                           asked.occurred_at)  # fmt: skip
    if refusal is not None:
        return [requests.reply(ledger, asked, reason=refusal[0], detail=refusal[1])]
    instance = offers.issued[asked.issued_offer_id]
    match asked:
        case IssuedOfferLockRequested():
            instance.status, instance.transaction_id = "LOCKED", asked.transaction_id
            instance.locked_until = asked.occurred_at + timedelta(minutes=LOCK_MINUTES)
            detail = f"locked to {asked.transaction_id} until {instance.locked_until.isoformat()}"
        case IssuedOfferRedeemRequested():
            instance.status, instance.transaction_id = "REDEEMED", asked.transaction_id
            instance.locked_until, detail = None, ""
        case IssuedOfferUnlockRequested():
            detail = f"not locked to {asked.transaction_id}"
            if instance.status == "LOCKED":  # to this transaction, or lapsed
                detail = f"lock for {instance.transaction_id} released"
                instance.status, instance.transaction_id, instance.locked_until = (
                    "ISSUED", None, None
                )  # fmt: skip
    return [requests.reply(
        ledger, asked, issued_offer_id=instance.issued_offer_id, discount_cents=None,
        detail=detail, offer_id=instance.offer_id, reward_store_id=instance.reward_store_id,
        transaction_id=asked.transaction_id, locked_until=instance.locked_until,
    )]  # fmt: skip


def use(offers: MemberOffers, offer_id: str, tx: TransactionCompleted) -> str | None:
    """The instance a completed use of a store offer spent: the one the transaction carries
    and may use (`MemberOffers.presented`, the one eligibility found), used for good. Its id
    (for the completion to name), None when no instance applied."""
    instance = offers.presented(offer_id, tx)
    if instance is None:
        return None
    instance.status, instance.transaction_id = "USED", tx.transaction_id
    return instance.issued_offer_id


def purchase_refusal(
    ledger: MemberLedger | None,
    offers: MemberOffers,
    store_id: str,
    offer_id: str,
    offer: OfferPublished | None,
    reward_store: RewardStoreConfigured | None,
    at: datetime,
) -> Refusal | None:
    """Why the member may not buy `offer_id` in `store_id` at `at`, in the order the module
    lists; None when they may. The worker's rule, and the API's store listings ask it too."""
    if ledger is None or ledger.status == "UNKNOWN":
        return RejectionReason.unknown_member, "no such member"
    if ledger.status == "MERGED":
        return RejectionReason.member_merged, f"merged into {ledger.merged_into}"
    refusal = listing_refusal(store_id, offer_id, offer, reward_store, at)
    if refusal is not None:
        return refusal
    assert offer is not None
    assert offer.reward_store is not None
    assert reward_store is not None
    refusal = store_refusal(reward_store, offers, at)
    if refusal is not None:
        return refusal
    refusal = audience_refusal(ledger.programs, offers, offer, at)
    if refusal is not None:
        return refusal
    if uses_left(offer, offers) == 0:
        held, limit = held_instances(offer.offer_id, offers), offer.usage.uses_per_member_max
        return RejectionReason.limit_reached, f"{held} of at most {limit} per member bought"
    return requests.cannot_spend(
        ledger, [(reward_store.program_id, offer.reward_store.points_cost)],
        category=reward_store.category,
    )  # fmt: skip


def listing_refusal(
    store_id: str,
    offer_id: str,
    offer: OfferPublished | None,
    reward_store: RewardStoreConfigured | None,
    at: datetime,
) -> Refusal | None:
    """Why `offer` is not for sale in `store_id` at `at`, to anyone; None when it is."""
    if offer is None:
        return RejectionReason.unknown_offer, f"no offer {offer_id}"
    if offer.reward_store is None or offer.reward_store.reward_store_id != store_id:
        return RejectionReason.unknown_offer, f"offer {offer.offer_id} is not sold in {store_id}"
    if reward_store is None or reward_store.withdrawn:
        return RejectionReason.unknown_offer, f"no reward store {store_id}"
    if reward_store.program_id != offer.program_id:
        # A listing the store cannot pay for: its points are another programme's.
        return RejectionReason.unknown_offer, (
            f"offer {offer.offer_id} of programme {offer.program_id} is not sold in "
            f"{store_id}, a store of programme {reward_store.program_id}"
        )
    if not reward_store.is_open(at):
        return RejectionReason.offer_not_live, f"reward store {store_id} is not open at {at}"
    if not offer.schedule.starts_at <= at < offer.schedule.ends_at:
        return RejectionReason.offer_not_live, f"offer {offer.offer_id} is not live at {at}"
    return None


def store_refusal(
    reward_store: RewardStoreConfigured, offers: MemberOffers, at: datetime
) -> Refusal | None:
    """Why the store does not admit the member at `at` (`not_eligible`: another market, or
    its eligibility criteria unmet); None when it does."""
    unmet = eligibility.unmet(
        f"reward store {reward_store.reward_store_id}", reward_store.market,
        reward_store.eligibility, offers, at,
    )  # fmt: skip
    return None if unmet is None else (RejectionReason.not_eligible, unmet)


def is_listed_for(reward_store: RewardStoreConfigured, member: MemberOffers, at: datetime) -> bool:
    """Whether the store's listing shows it to the member at `at`: open, of the member's
    market, and its criteria a profile can judge met. Criteria on history (purchases, visits)
    are left to the purchase's answer rather than hide a store the member may buy in, as the
    reward catalogue leaves them (ADR 20)."""
    if not reward_store.is_open(at):
        return False
    if member.markets and reward_store.market not in member.markets:
        return False
    return targeting.meets_on_profile(reward_store.eligibility, member, at)


def audience_refusal(
    programs: Collection[str], offers: MemberOffers, offer: OfferPublished, at: datetime
) -> Refusal | None:
    """Why the offer's audience leaves the member out at `at` (`not_eligible`: another
    programme, not targeted, or held out as control); None when it includes them."""
    if offer.program_id not in programs:
        return RejectionReason.not_eligible, f"not a member of programme {offer.program_id}"
    if not is_targeted(offer, offers, at):
        return RejectionReason.not_eligible, f"member is not targeted by {offer.offer_id}"
    return None


def is_targeted(offer: OfferPublished, offers: MemberOffers, at: datetime) -> bool:
    """Whether the offer's targeting lets the member buy it at `at`: targeted, and not held
    out as control (a control member is tracked, never served)."""
    standing = offers.offers.get(offer.offer_id)
    held_out = targeting.status(offer, offers, at, standing.uses if standing else 0)
    return held_out is False


def uses_left(offer: OfferPublished, offers: MemberOffers) -> int | None:
    """How many more instances of the offer the member may buy (its uses per member, less the
    instances held, used or not); None without a limit."""
    limit = offer.usage.uses_per_member_max
    if limit is None:
        return None
    return max(limit - held_instances(offer.offer_id, offers), 0)


def held_instances(offer_id: str, offers: MemberOffers) -> int:
    """Instances of the offer the member bought, used or not."""
    return sum(1 for i in offers.issued.values() if i.offer_id == offer_id)


def _use_refusal(
    ledger: MemberLedger | None,
    offers: MemberOffers,
    issued_offer_id: str,
    transaction_id: str | None,
    at: datetime,
) -> Refusal | None:
    if ledger is None or ledger.status != "ACTIVE":
        return RejectionReason.unknown_member, "no such member"
    instance = offers.issued.get(issued_offer_id)
    if instance is None:
        return RejectionReason.unknown_offer, f"no issued offer {issued_offer_id}"
    if instance.status in ("USED", "REDEEMED"):
        return RejectionReason.duplicate_request, f"issued offer {issued_offer_id} was used"
    if instance.status == "LOCKED" and not instance.applies_to(transaction_id or "", at):
        until = instance.locked_until.isoformat() if instance.locked_until else "?"
        return (
            RejectionReason.reward_locked,
            f"locked to {instance.transaction_id} until {until}",
        )
    return None


# --- a merge ------------------------------------------------------------------------------------

_MOVING = ("ISSUED", "LOCKED", "REDEEMED")
"""The statuses of an instance not used yet: a merge moves it to the survivor."""


def moved_away(offers: MemberOffers | None) -> list[MovedIssuedOffer]:
    """The victim's instances not used yet, closed here as MOVED: what travels to the survivor
    with the merge's step, as they stand (a lock or an immediate redeem keeps its basket: a
    till told yes is never overruled)."""
    moving = [i for i in (offers.issued.values() if offers else []) if i.status in _MOVING]
    travelling = []
    for instance in sorted(moving, key=lambda i: i.issued_offer_id):
        travelling.append(
            MovedIssuedOffer(
                issued_offer_id=instance.issued_offer_id, offer_id=instance.offer_id,
                reward_store_id=instance.reward_store_id, points_spent=instance.points,
                issued_at=instance.issued_at, status=instance.status,
                transaction_id=instance.transaction_id, locked_until=instance.locked_until,
            )
        )  # fmt: skip
        instance.status = "MOVED"
    return travelling


def moved_in(offers: MemberOffers, step: MemberMergedAway) -> list[Event]:
    """The survivor's instances from the victim's (same id: the token the till sends), once."""
    emitted: list[Event] = []
    for moved in step.issued_offers:
        if moved.issued_offer_id in offers.issued:
            continue
        offers.issued[moved.issued_offer_id] = IssuedOffer(
            issued_offer_id=moved.issued_offer_id, offer_id=moved.offer_id,
            reward_store_id=moved.reward_store_id, points=moved.points_spent,
            issued_at=moved.issued_at, status=moved.status,
            transaction_id=moved.transaction_id, locked_until=moved.locked_until,
        )  # fmt: skip
        emitted.append(
            IssuedOfferMoved(
                event_id=derived_id("IO-MOVED", moved.issued_offer_id, step.member_id),
                occurred_at=step.occurred_at, member_id=step.member_id,
                from_member_id=step.victim_member_id, issued_offer_id=moved.issued_offer_id,
                offer_id=moved.offer_id, reward_store_id=moved.reward_store_id,
                points_spent=moved.points_spent, issued_at=moved.issued_at,
                cause_event_id=step.event_id,
            )
        )  # fmt: skip
    return emitted
