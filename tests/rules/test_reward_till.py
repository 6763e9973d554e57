"""A granted reward's token judged at the till (`rewards.till.check`): the refusals in their
order, and the discount of the version granted, priced on the basket's lines."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from processors.contract.offer_definition import DiscountTerms
from processors.contract.transactions import TransactionLine
from processors.rules.rewards.till import Held, check
from tests.rules.given import T0

TEN_PERCENT = DiscountTerms.model_validate({"kind": "PERCENT_OFF_CART", "percent_off": "10"})


def held(**changes: object) -> Held:
    fields: dict[str, object] = {
        "member_id": "m1", "granted_reward_id": "GR1", "reward_id": "R", "status": "ISSUED",
        "expires_at": T0 + timedelta(days=1), "discount": TEN_PERCENT,
    }  # fmt: skip
    return Held(**(fields | changes))  # type: ignore[arg-type]


def line(cents: int, *, taken: int = 0) -> TransactionLine:
    return TransactionLine(
        line_id=f"L{cents}", sku="A", quantity=Decimal(1), unit_price_cents=cents,
        amount_cents=cents - taken, discount_cents=taken,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("reward", "member", "at", "reason"),
    [
        (None, "m1", T0, "reward_unknown"),
        (held(), "m2", T0, "reward_not_yours"),
        (held(), None, T0, "reward_not_yours"),
        (held(status="REDEEMED"), "m1", T0, "reward_used"),
        (held(status="EXPIRED"), "m1", T0, "reward_expired"),
        (held(), "m1", T0 + timedelta(days=1), "reward_expired"),  # its expiry has come
    ],
)
def test_refusals_are_named(reward, member, at, reason):  # type: ignore[no-untyped-def]
    verdict = check("TOK", reward, member_id=member, lines=[line(1000)], at=at, gross=False)
    assert (verdict.applies, verdict.reason, verdict.discount_cents) == (False, reason, 0)


def test_a_used_reward_is_named_before_an_expired_one():
    used_late = held(status="REDEEMED", expires_at=T0)
    verdict = check("TOK", used_late, member_id="m1", lines=[line(1000)], at=T0, gross=False)
    assert verdict.reason == "reward_used"


def test_a_completed_transaction_is_priced_before_the_tills_discounts():
    cart = check("TOK", held(), member_id="m1", lines=[line(1000)], at=T0, gross=False)
    paid = check("TOK", held(), member_id="m1", lines=[line(1000, taken=100)], at=T0, gross=True)
    assert (cart.applies, cart.discount_cents) == (True, 100)
    assert (paid.applies, paid.discount_cents) == (True, 100)


def test_a_reward_takes_at_most_what_the_codes_before_it_left_and_none_of_nothing():
    # Found by a user's trial: a $10-off reward beside a $15-off code on a $20 basket was
    # told $10 and $15, $25 off a $20 basket.
    lines = [line(2000)]
    partly = check("TOK", held(), member_id="m1", lines=lines, at=T0, gross=False, left=50)
    spent = check("TOK", held(), member_id="m1", lines=lines, at=T0, gross=False, left=0)
    whole = check("TOK", held(), member_id="m1", lines=lines, at=T0, gross=False, left=2000)
    assert (partly.applies, partly.discount_cents) == (True, 50)
    assert (spent.applies, spent.reason, spent.discount_cents) == (False, "nothing_left", 0)
    assert (whole.applies, whole.discount_cents) == (True, 200)


def test_two_free_item_rewards_free_two_units_not_the_same_one_twice():
    # Found by a user's trial: two "one free muffin" rewards on a basket of one muffin were
    # each told 3.00 (and booked so), 6.00 off a basket with one 3.00 muffin.
    from processors.rules.rewards.till import check_in_order

    muffin = DiscountTerms.model_validate(
        {"kind": "FREE_ITEM", "free_units": 1, "products": {"skus": ["MUF"]}}
    )
    one_muffin = [
        TransactionLine(line_id="1", sku="MUF", quantity=Decimal(1), unit_price_cents=300,
                        amount_cents=300),
        TransactionLine(line_id="2", sku="X", quantity=Decimal(1), unit_price_cents=2700,
                        amount_cents=2700),
    ]  # fmt: skip
    rewards = {"T1": held(discount=muffin), "T2": held(granted_reward_id="GR2", discount=muffin)}
    first, second = check_in_order(
        rewards, member_id="m1", lines=one_muffin, at=T0, gross=False, left=3000
    )
    assert (first.applies, first.discount_cents) == (True, 300)
    assert (second.applies, second.reason) == (False, "nothing_left")
    two = [one_muffin[0].model_copy(update={"line_id": "3"}), *one_muffin]
    both = check_in_order(rewards, member_id="m1", lines=two, at=T0, gross=False, left=3300)
    assert [c.discount_cents for c in both] == [300, 300]
