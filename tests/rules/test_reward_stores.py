"""Reward stores (seed 002, ADR 20), through the simulator: a member buys a store's offer with
points and holds their own instance; one later transaction that carries it gets the offer's
benefit once, locked for it first or redeemed at once; a lock holds off other transactions
until it lapses."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from processors.contract.common import PointsCategory
from processors.contract.config import RewardStoreConfigured
from processors.contract.enrolments import ImportedBalance, MemberProfile, MemberProfileUpdated
from processors.contract.ledger import LedgerEventRecorded, LedgerEventType
from processors.contract.notifications import MessagePosted
from processors.contract.offer_definition import (
    DiscountKind,
    LocalizedCopy,
    RewardStoreListing,
    TargetingCriterion,
)
from processors.contract.offers import OfferCompleted
from processors.contract.outcomes import RejectionReason, RequestAccepted, RequestRejected
from processors.contract.redemptions import (
    IssuedOfferLockRequested,
    IssuedOfferRedeemRequested,
    IssuedOfferUnlockRequested,
    RewardStoreOfferPurchaseRequested,
)
from processors.simulation import Simulation
from tests.rules.given import PROGRAM, T0, bought, enrolled, program
from tests.rules.offers.given_offers import discount, offer, spend

MUFFIN = "MUFFIN_HALF_OFF"


def store_offer(**changes: Any):  # type: ignore[no-untyped-def]
    listing = RewardStoreListing(reward_store_id="CAFE", points_cost=300)
    reward = discount(DiscountKind.AMOUNT_OFF_CART, amount_off_cents=200)
    return offer(MUFFIN, spend(500), reward=reward, reward_store=listing, **changes)


def reward_store(store_id: str = "CAFE", **changes: Any) -> RewardStoreConfigured:
    """A store of the test programme in CA, open to all from a month before T0."""
    fields: dict[str, Any] = {
        "event_id": f"cfg-store-{store_id}-{len(changes)}",
        "occurred_at": T0 - timedelta(days=30),
        "reward_store_id": store_id,
        "market": "CA",
        "program_id": PROGRAM,
        "localized_copy": [
            LocalizedCopy(locale="en", headline="The café", short_description="Treats for points"),
            LocalizedCopy(locale="fr", headline="Le café", short_description="Des gâteries"),
        ],
        "available_from": T0 - timedelta(days=30),
    }
    return RewardStoreConfigured(**(fields | changes))


def engine(*configs: Any, points: int = 1000) -> Simulation:
    sim = Simulation()
    sim.run([program(), reward_store(), store_offer(), *configs])
    sim.feed(enrolled("m1"))
    sim.feed(bought("m1", "T0", cents=points * 100))
    return sim


def buy(command: str = "p1", store: str = "CAFE", offer_id: str = MUFFIN, at=T0):  # type: ignore[no-untyped-def]
    return RewardStoreOfferPurchaseRequested(
        event_id=f"buy-{command}", occurred_at=at, command_id=command, member_id="m1",
        reward_store_id=store, offer_id=offer_id, source="APP",
    )  # fmt: skip


def lock(issued: str, tx: str, command: str = "l1", at=T0):  # type: ignore[no-untyped-def]
    return IssuedOfferLockRequested(
        event_id=f"lock-{command}", occurred_at=at, command_id=command, member_id="m1",
        issued_offer_id=issued, transaction_id=tx, source="INSTORE",
    )  # fmt: skip


def redeem_now(issued: str, tx: str | None, command: str = "r1", at=T0):  # type: ignore[no-untyped-def]
    return IssuedOfferRedeemRequested(
        event_id=f"now-{command}", occurred_at=at, command_id=command, member_id="m1",
        issued_offer_id=issued, transaction_id=tx, source="INSTORE",
    )  # fmt: skip


def paid_with(tx: str, issued: str, at=T0, cents: int = 1000):  # type: ignore[no-untyped-def]
    return bought("m1", tx, cents=cents, at=at).model_copy(update={"redemption_tokens": [issued]})


def outcome(out: list) -> RequestAccepted | RequestRejected:  # type: ignore[type-arg]
    (only,) = [e for e in out if isinstance(e, RequestAccepted | RequestRejected)]
    return only


def discounts(out: list) -> list[int]:  # type: ignore[type-arg]
    return [e.discount_cents for e in out if isinstance(e, OfferCompleted) and e.discount_cents]


def bought_instance(sim: Simulation, command: str = "p1") -> str:
    accepted = outcome(sim.feed(buy(command)))
    assert isinstance(accepted, RequestAccepted), accepted
    assert accepted.issued_offer_id is not None
    return accepted.issued_offer_id


def test_buying_a_store_offer_debits_its_price_and_issues_an_instance():
    sim = engine()
    out = sim.feed(buy())
    debit, message, accepted = out
    assert isinstance(debit, LedgerEventRecorded)
    assert (debit.event_type, debit.points_on_event) == (LedgerEventType.POINTS_REDEMPTION, -300)
    assert [(e.program_id, e.category) for e in debit.entries] == [
        (PROGRAM, PointsCategory.REGULAR)
    ]
    assert isinstance(message, MessagePosted)
    assert isinstance(accepted, RequestAccepted)
    assert (accepted.points_debited, accepted.issued_offer_id) != (0, None)


def test_a_store_offer_applies_only_to_a_transaction_carrying_an_instance_and_once():
    sim = engine()
    assert discounts(sim.feed(bought("m1", "T1", cents=1000))) == []  # not bought: nothing
    issued = bought_instance(sim)
    assert discounts(sim.feed(paid_with("T2", issued))) == [200]
    assert discounts(sim.feed(paid_with("T3", issued))) == []  # used


def test_a_lock_holds_the_instance_for_its_transaction_until_it_lapses():
    sim = engine()
    issued = bought_instance(sim)
    assert isinstance(outcome(sim.feed(lock(issued, "T-A"))), RequestAccepted)
    other = outcome(sim.feed(lock(issued, "T-B", "l2")))
    assert isinstance(other, RequestRejected)
    assert other.reason is RejectionReason.reward_locked
    assert discounts(sim.feed(paid_with("T-B", issued))) == []  # another basket: held off
    assert discounts(sim.feed(paid_with("T-A", issued))) == [200]  # its own: applies


def test_a_lapsed_lock_frees_the_instance_for_another_transaction():
    sim = engine()
    issued = bought_instance(sim)
    sim.feed(lock(issued, "T-A"))
    later = T0 + timedelta(minutes=31)
    assert discounts(sim.feed(paid_with("T-B", issued, at=later))) == [200]


def unlock(issued: str, tx: str, command: str = "u1", at=T0):  # type: ignore[no-untyped-def]
    return IssuedOfferUnlockRequested(
        event_id=f"unlock-{command}", occurred_at=at, command_id=command, member_id="m1",
        issued_offer_id=issued, transaction_id=tx, source="INSTORE",
    )  # fmt: skip


def test_a_cancelled_order_s_lock_is_released_at_once_and_only_by_that_order():
    sim = engine()
    issued = bought_instance(sim)
    sim.feed(lock(issued, "T-A"))
    other = outcome(sim.feed(unlock(issued, "T-B")))
    assert isinstance(other, RequestRejected)
    assert other.reason is RejectionReason.reward_locked  # another basket cannot free it
    released = outcome(sim.feed(unlock(issued, "T-A", "u2")))
    assert isinstance(released, RequestAccepted)
    assert (released.issued_offer_id, released.transaction_id) == (issued, "T-A")
    assert released.locked_until is None
    again = outcome(sim.feed(unlock(issued, "T-A", "u3")))  # a till repeating its cancel
    assert isinstance(again, RequestAccepted)
    assert again.detail == "not locked to T-A"
    soon = T0 + timedelta(minutes=1)  # well within the lock's 30 minutes
    assert discounts(sim.feed(paid_with("T-B", issued, at=soon))) == [200]


def test_a_used_instance_cannot_be_unlocked():
    sim = engine()
    issued = bought_instance(sim)
    sim.feed(lock(issued, "T-A"))
    assert discounts(sim.feed(paid_with("T-A", issued))) == [200]
    used = outcome(sim.feed(unlock(issued, "T-A")))
    assert isinstance(used, RequestRejected)
    assert used.reason is RejectionReason.duplicate_request


def test_redeemed_at_once_for_a_transaction_the_instance_applies_to_that_one_only():
    sim = engine()
    issued = bought_instance(sim)
    assert isinstance(outcome(sim.feed(redeem_now(issued, "T-A"))), RequestAccepted)
    again = outcome(sim.feed(redeem_now(issued, "T-A", "r2")))
    assert isinstance(again, RequestRejected)
    assert again.reason is RejectionReason.duplicate_request
    assert discounts(sim.feed(paid_with("T-B", issued))) == []
    assert discounts(sim.feed(paid_with("T-A", issued))) == [200]


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (buy(store="OTHER"), RejectionReason.unknown_offer),
        (buy(offer_id="NO_SUCH_OFFER"), RejectionReason.unknown_offer),
        (buy(at=T0 + timedelta(days=90)), RejectionReason.offer_not_live),
    ],
)
def test_purchase_refusals_are_named_and_cost_nothing(request_, reason):  # type: ignore[no-untyped-def]
    sim = engine()
    refused = outcome(sim.feed(request_))
    assert isinstance(refused, RequestRejected)
    assert refused.reason is reason
    ledger = sim.members["m1"].ledger
    assert ledger is not None
    assert ledger.spendable(PROGRAM) == 1000


def test_a_purchase_beyond_the_balance_is_refused():
    sim = engine(points=100)
    refused = outcome(sim.feed(buy()))
    assert isinstance(refused, RequestRejected)
    assert refused.reason is RejectionReason.insufficient_points


def test_a_repeated_purchase_key_issues_one_instance():
    sim = engine()
    first = outcome(sim.feed(buy()))
    assert sim.feed(buy().model_copy(update={"event_id": "again"})) == [first]
    offers = sim.members["m1"].offers
    assert offers is not None
    assert len(offers.issued) == 1


def test_the_outcomes_name_the_offer_its_store_and_a_locks_transaction_and_lapse():
    sim = engine()
    bought_ = outcome(sim.feed(buy()))
    assert isinstance(bought_, RequestAccepted)
    assert (bought_.offer_id, bought_.reward_store_id) == (MUFFIN, "CAFE")
    assert bought_.issued_offer_id is not None
    locked = outcome(sim.feed(lock(bought_.issued_offer_id, "T-A")))
    assert isinstance(locked, RequestAccepted)
    assert (locked.offer_id, locked.reward_store_id, locked.transaction_id) == (
        MUFFIN, "CAFE", "T-A",
    )  # fmt: skip
    assert locked.locked_until == T0 + timedelta(minutes=30)


def test_the_completion_that_spends_an_instance_names_it():
    sim = engine()
    issued = bought_instance(sim)
    (completed,) = [e for e in sim.feed(paid_with("T2", issued)) if isinstance(e, OfferCompleted)]
    assert completed.issued_offer_id == issued


# --- the store as a configured entity (ADR 33, addendum) -----------------------------------


def refused(sim: Simulation, request: RewardStoreOfferPurchaseRequested) -> RequestRejected:
    ledger = sim.members["m1"].ledger
    assert ledger is not None
    before = ledger.spendable(PROGRAM)
    answer = outcome(sim.feed(request))
    assert isinstance(answer, RequestRejected), answer
    after = sim.members["m1"].ledger
    assert after is not None
    assert after.spendable(PROGRAM) == before  # a refusal costs nothing
    return answer


def gold(member: str = "m1") -> MemberProfileUpdated:
    return MemberProfileUpdated(
        event_id=f"prof-{member}", occurred_at=T0 - timedelta(minutes=5), member_id=member,
        source="APP", profile=MemberProfile(first_name=member, attributes={"tier": "GOLD"}),
    )  # fmt: skip


GOLD_ONLY = [TargetingCriterion(attribute="TIER", values=["GOLD"])]


def test_an_offer_listed_in_a_store_never_configured_is_an_unknown_offer():
    sim = Simulation()
    sim.run([program(), store_offer()])
    sim.feed(enrolled("m1"))
    sim.feed(bought("m1", "T0", cents=100_000))
    answer = refused(sim, buy())
    assert (answer.reason, answer.detail) == (RejectionReason.unknown_offer, "no reward store CAFE")


def test_a_withdrawn_store_sells_nothing_and_what_was_bought_in_it_stays_usable():
    sim = engine()
    issued = bought_instance(sim)
    sim.run([reward_store(withdrawn=True)])
    assert refused(sim, buy("p2")).reason is RejectionReason.unknown_offer
    assert discounts(sim.feed(paid_with("T2", issued))) == [200]


@pytest.mark.parametrize(
    "window",
    [
        {"available_from": T0 + timedelta(hours=1)},
        {"available_from": T0 - timedelta(days=30), "available_until": T0},
    ],
    ids=["not yet open", "closed"],
)
def test_a_store_outside_its_availability_is_not_live(window):  # type: ignore[no-untyped-def]
    answer = refused(engine(reward_store(**window)), buy())
    assert answer.reason is RejectionReason.offer_not_live
    assert answer.detail.startswith("reward store CAFE is not open")


def test_a_store_for_gold_members_refuses_others_not_eligible_and_sells_to_gold_ones():
    sim = engine(reward_store(eligibility=GOLD_ONLY))
    answer = refused(sim, buy())
    assert answer.reason is RejectionReason.not_eligible
    assert answer.detail == "reward store CAFE: the member does not meet TIER"
    sim.feed(gold())
    assert isinstance(outcome(sim.feed(buy("p2"))), RequestAccepted)


def test_a_store_of_another_market_is_not_eligible():
    answer = refused(engine(reward_store(market="US")), buy())
    assert (answer.reason, answer.detail) == (
        RejectionReason.not_eligible, "reward store CAFE is for members of market US",
    )  # fmt: skip


def test_an_offer_of_another_programme_than_its_store_s_is_not_sold_there():
    answer = refused(engine(program("US_MAIN"), reward_store(program_id="US_MAIN")), buy())
    assert answer.reason is RejectionReason.unknown_offer
    assert "a store of programme US_MAIN" in answer.detail


def test_a_store_paid_from_another_category_debits_that_category_and_not_regular():
    categories = [PointsCategory.REGULAR, PointsCategory.TRIGGER]
    sim = engine(program(categories=categories), reward_store(category="TRIGGER"))
    poor = refused(sim, buy())  # REGULAR holds 1000, TRIGGER nothing
    assert poor.reason is RejectionReason.insufficient_points
    assert poor.detail == f"{PROGRAM} TRIGGER: balance 0 < 300 requested"
    imported = ImportedBalance(program_id=PROGRAM, category="TRIGGER", points=500)
    sim.feed(enrolled("m2", imported=[imported]))
    debit = sim.feed(buy().model_copy(update={"member_id": "m2", "event_id": "buy-m2"}))[0]
    assert isinstance(debit, LedgerEventRecorded)
    assert [(e.category, e.points) for e in debit.entries] == [(PointsCategory.TRIGGER, 300)]
    ledger = sim.members["m2"].ledger
    assert ledger is not None
    assert (ledger.spendable(PROGRAM, PointsCategory.TRIGGER), ledger.spendable(PROGRAM)) == (
        200, 0,
    )  # fmt: skip


def test_a_purchase_announces_the_offer_in_the_member_s_inbox_in_their_language():
    sim = engine()
    sim.feed(gold().model_copy(update={"profile": MemberProfile(preferred_locale="fr-CA")}))
    out = sim.feed(buy())
    (message,) = [e for e in out if isinstance(e, MessagePosted)]
    accepted = outcome(out)
    assert isinstance(accepted, RequestAccepted)
    assert (message.member_id, message.locale, message.title) == ("m1", "fr", "Offre")
    assert message.body == "Une offre"
    assert message.cause_event_id == "buy-p1"
    assert sim.feed(buy().model_copy(update={"event_id": "again"})) == [accepted]  # once


def test_the_till_says_why_a_bought_offer_gives_nothing_to_a_basket():
    """Found by trying it as a user: a bought offer on a $3 basket was left out in silence."""
    from processors.rules.offers.state import IssuedOffer, MemberOffers
    from processors.rules.rewards import till

    at = T0 + timedelta(hours=1)
    free = IssuedOffer(issued_offer_id="IO-1", offer_id="TWO_OFF", reward_store_id="CAFE",
                       points=300, issued_at=T0)  # fmt: skip
    locked = free.model_copy(update={"status": "LOCKED", "transaction_id": "T-A",
                                     "locked_until": at + timedelta(minutes=5)})  # fmt: skip
    used = free.model_copy(update={"status": "USED", "transaction_id": "T-A"})

    basket = paid_with("T-B", "IO-1", at=at)

    def held(instance: IssuedOffer) -> MemberOffers:
        return MemberOffers(member_id="m1", issued={"IO-1": instance})

    assert till.bought_unused(held(free), basket, completed={"TWO_OFF"}) == []
    assert till.bought_unused(held(free), bought("m1", "T-B", at=at), completed=set()) == []
    cases = [(free, "offer_not_met"), (locked, "reward_locked"), (used, "reward_used")]
    for instance, reason in cases:
        [check] = till.bought_unused(held(instance), basket, completed=set())
        assert (check.token, check.applies, check.reason) == ("IO-1", False, reason)
        assert "TWO_OFF" in (check.detail or "")


def test_a_merge_moves_the_offers_the_victim_bought_and_has_not_used_to_the_survivor():
    """Found by trying it as a user: after a merge the survivor did not have the bought offer,
    the victim's instance still said usable, and a purchase carrying it got no discount: the
    points paid for it were lost."""
    from processors.contract.offers import IssuedOfferMoved
    from tests.rules.given import merged

    sim = engine()
    unused, spent = bought_instance(sim, "p1"), bought_instance(sim, "p2")
    sim.feed(paid_with("T-SPENT", spent))
    sim.feed(enrolled("m2"))

    moved = [e for e in sim.feed(merged("m1", "m2")) if isinstance(e, IssuedOfferMoved)]

    assert [(e.member_id, e.from_member_id, e.issued_offer_id) for e in moved] == [
        ("m2", "m1", unused)
    ]  # the one used stays where it was used
    old_card = paid_with("T-AFTER", unused)  # the victim's card: forwarded to the survivor
    assert discounts(sim.feed(old_card)) == [200]
    assert discounts(sim.feed(paid_with("T-AGAIN", unused).model_copy(
        update={"member_id": "m2"}))) == []  # used once, whoever carries it  # fmt: skip


def test_a_purchase_spends_the_instance_it_carries_not_another_of_the_same_offer():
    """Found while moving bought offers with a merge: two instances of one offer, the basket
    carrying the second spent the first (the one the member still had in hand)."""
    sim = engine()
    first, second = bought_instance(sim, "p1"), bought_instance(sim, "p2")

    out = sim.feed(paid_with("T-1", second))

    assert [e.issued_offer_id for e in out if isinstance(e, OfferCompleted)] == [second]
    assert discounts(sim.feed(paid_with("T-2", first))) == [200]  # the first is still there
    assert discounts(sim.feed(paid_with("T-3", second))) == []
