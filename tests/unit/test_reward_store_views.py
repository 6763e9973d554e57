"""The reward-store listings judge a member with the worker's own purchase rule on the state
rebuilt from projected rows (`reward_store_queries.buyer_of`), and the wallet's store offers
say whether they are usable as the offer rules would: given rows, then what the API shows.
No services."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from processors.contract.offer_definition import OfferTargeting, TargetingKind, TargetingTiming
from processors.contract.outcomes import RequestAccepted
from processors.contract.redemptions import RequestType
from processors.rules.offers.catalogue import Catalogue
from processors.rules.offers.targeting import in_control
from projections.api.reward_store_queries import IssuedRow, buyer_of
from projections.api.routes_issued_offers import issued_view
from projections.api.routes_reward_stores import buyer_view
from projections.writers.issued_offers import rows_of
from tests.rules.given import PROGRAM, T0
from tests.rules.offers.given_offers import usage
from tests.rules.test_reward_stores import MUFFIN, reward_store, store_offer


def member_row(balance: int = 1000, issued: list[Any] | None = None) -> dict[str, Any]:
    return {
        "status": "ACTIVE", "merged_into": None, "market": "CA", "markets": ["CA"],
        "program_ids": [PROGRAM], "balances": [[PROGRAM, "REGULAR", balance]], "standings": [],
        "issued": issued or [],
    }  # fmt: skip


def instance(n: int) -> list[Any]:
    at = T0.isoformat()
    return [f"IO-{n}", MUFFIN, "CAFE", 300, at, "ISSUED", None, None, at]


def view(member: str = "m1", **row: Any):  # type: ignore[no-untyped-def]
    offer = store_offer(usage=usage(uses_per_member_max=2))
    buyer = buyer_of(member, member_row(**row), Catalogue([offer]))
    return buyer_view(buyer, offer, reward_store(), T0)


def test_a_member_of_the_programme_with_the_points_may_buy_a_mass_store_offer():
    seen = view()
    assert (seen.targeted, seen.may_buy, seen.affordable, seen.uses_left) == (True, True, True, 2)


def test_short_of_points_the_refusal_is_the_workers():
    seen = view(balance=100)
    assert (seen.affordable, seen.may_buy, seen.refusal) == (False, False, "insufficient_points")


def test_the_instances_held_count_against_the_uses_per_member():
    seen = view(issued=[instance(1), instance(2)])
    assert (seen.uses_left, seen.refusal) == (0, "limit_reached")


def test_a_control_member_is_not_targeted_and_may_not_buy():
    held_out = OfferTargeting(
        kind=TargetingKind.MASS, timing=TargetingTiming.DYNAMIC, control_share_percent=50
    )
    offer = store_offer(targeting=held_out)
    member = next(f"m{n}" for n in range(100) if in_control(MUFFIN, f"m{n}", 50))
    seen = buyer_view(buyer_of(member, member_row(), Catalogue([offer])), offer, reward_store(), T0)
    assert (seen.targeted, seen.may_buy, seen.refusal) == (False, False, "not_eligible")


def issued_row(status: str, locked_until=None) -> IssuedRow:  # type: ignore[no-untyped-def]
    return IssuedRow(
        issued_offer_id="IO-1", member_id="m1", offer_id=MUFFIN, reward_store_id="CAFE",
        points_spent=300, command_id="k1", ledger_event_log_id="LE-1", issued_at=T0,
        status=status, transaction_id="T-A", locked_until=locked_until, status_at=T0,
        discount_cents=None,
    )  # fmt: skip


def test_a_lock_holds_the_instance_until_it_lapses_and_a_used_one_is_not_usable():
    until = T0 + timedelta(minutes=30)
    assert issued_view(issued_row("LOCKED", until), T0).is_usable is False
    assert issued_view(issued_row("LOCKED", until), until).is_usable is True
    assert issued_view(issued_row("ISSUED"), T0).is_usable is True
    assert issued_view(issued_row("USED"), T0).is_usable is False


def test_only_outcomes_naming_an_issued_offer_are_projected_as_instances():
    common = {
        "occurred_at": T0, "member_id": "m1", "command_id": "k",
        "request_event_id": "r", "points_debited": 300,
    }  # fmt: skip
    bought = RequestAccepted(
        event_id="o1", request_type=RequestType.REWARD_STORE_OFFER_PURCHASE,
        issued_offer_id="IO-1", offer_id=MUFFIN, reward_store_id="CAFE", **common,
    )  # fmt: skip
    redeemed = RequestAccepted(event_id="o2", request_type=RequestType.REWARD_REDEMPTION, **common)
    (row,) = rows_of([bought, redeemed])
    assert (row["status"], row["points_spent"], row["command_id"]) == ("ISSUED", 300, "k")
