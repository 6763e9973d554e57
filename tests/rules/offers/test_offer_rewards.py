"""Rewards: flat points, base/tier/fractional multipliers on the covered lines' base, Minimum vs
For Every, reward tiers, discounts (DESIGN.md §5.2–5.5, 5.7, 5.9, 5.20–21)."""

from decimal import Decimal

from processors.contract.offer_definition import DiscountKind, ProductSelection
from processors.contract.offers import OfferCompleted
from processors.rules.ledger import policy
from processors.rules.offers.discounts import LineDiscount
from tests.rules.given import PROGRAM, program
from tests.rules.offers.given_offers import (
    Member,
    discount,
    flat,
    flat_tiers,
    item,
    multiplier,
    offer,
    points_of,
    purchase,
    quantity,
    skus,
    spend,
    tier_multiplier,
)


def _completed(evaluation) -> OfferCompleted:
    [event] = [e for e in evaluation.events if isinstance(e, OfferCompleted)]
    return event


def test_a_flat_bonus_pays_its_points():
    member = Member(offer("FLAT", reward=flat(1000)))
    event = _completed(member.buys(purchase("T1", cents=1000)))
    assert (event.points_due, event.points_awarded, event.multiples, event.program_id) == (
        1000,
        1000,
        1,
        PROGRAM,
    )


def test_for_every_pays_once_per_multiple_of_the_threshold():
    member = Member(offer("EVERY10", spend(1000), reward=flat(100, for_every=True)))
    event = _completed(member.buys(purchase("T1", cents=3500)))
    assert (event.multiples, event.points_awarded, event.use_number) == (3, 300, 1)


def test_minimum_pays_once_however_far_past_the_threshold():
    member = Member(offer("MIN10", spend(1000), reward=flat(100)))
    assert points_of(member.buys(purchase("T1", cents=3500))) == 100


def test_a_fractional_multiplier_rounds_half_up_once_on_the_member_total():
    # 1.5 × 75 base = 112.5 → 113: the base earns 75, the offer the remaining 38.
    member = Member(offer("ONE_AND_HALF", spend(100), reward=multiplier("1.5")))
    tx = purchase("T1", cents=7500)
    base = policy.base_points(program(), policy.eligible_spend_cents(program(), tx.lines, "ON"))
    bonus = points_of(member.buys(tx))
    assert (base, bonus, base + bonus) == (75, 38, 113)


def test_a_multiplier_with_products_covers_only_those_lines():
    member = Member(
        offer("TRIPLE_COFFEE", spend(100, products=skus("COFFEE")), reward=multiplier("3"))
    )
    basket = purchase("T1", item("1", 1000, "COFFEE"), item("2", 4000, "BREAD"))
    assert points_of(member.buys(basket)) == 20  # (3 − 1) × 10 base on the coffee only


def test_a_multiplier_without_products_covers_the_whole_eligible_basket():
    member = Member(offer("DOUBLE", spend(100), reward=multiplier("2")))
    basket = purchase("T1", item("1", 1000, "COFFEE"), item("2", 4000, "BREAD"))
    assert points_of(member.buys(basket)) == 50


def test_the_programme_base_cap_applies_before_the_multiplier_pro_rata():
    capped = program(base_points_per_transaction_max=50)
    member = Member(
        offer("DOUBLE_COFFEE", spend(100, products=skus("COFFEE")), reward=multiplier("2")),
        programs=[capped],
    )
    basket = purchase("T1", item("1", 10000, "COFFEE"), item("2", 10000, "BREAD"))
    # Base earn 200 capped to 50; coffee is half the spend: base 25, bonus (2 − 1) × 25.
    assert points_of(member.buys(basket)) == 25


def test_a_tier_multiplier_pays_by_the_member_s_tier():
    reward = tier_multiplier(GOLD="3", SILVER="1.5")
    gold = Member(offer("TIERED", reward=reward), tier="GOLD")
    silver = Member(offer("TIERED", reward=reward), tier="SILVER")
    bronze = Member(offer("TIERED", reward=reward), tier="BRONZE")
    assert [points_of(m.buys(purchase("T1", cents=3300))) for m in (gold, silver, bronze)] == [
        66,
        17,  # 0.5 × 33 = 16.5 → 17
        0,
    ]
    assert bronze.completed() == []  # a use due nothing does not happen


def test_the_highest_reward_tier_reached_pays_not_the_sum():
    tiers = flat_tiers((5000, 500), (10000, 1500), (20000, 4000))
    member = Member(offer("SPEND_MORE", spend(5000), reward=tiers))
    event = _completed(member.buys(purchase("T1", cents=15000)))
    assert (event.tier, event.points_awarded) == (2, 1500)
    assert points_of(member.buys(purchase("T2", cents=4999))) == 0


def test_a_discount_taken_at_the_till_is_recorded_on_the_completion():
    ten_off = discount(DiscountKind.PERCENT_OFF_CART, percent_off=Decimal(10))
    member = Member(offer("TEN_OFF", spend(5000), reward=ten_off))
    # The till took $6 off a $60 cart: amounts are net, the offer is judged on $60.
    tx = purchase("T1", item("1", 5400, discount_cents=600))
    evaluation = member.buys(tx)
    event = _completed(evaluation)
    assert (event.discount_cents, event.points_awarded) == (600, 0)
    assert evaluation.discounts == [LineDiscount("TEN_OFF", "1", 600, cart_level=True)]
    assert evaluation.awards == []


def test_an_offer_is_passed_over_only_when_the_lines_before_the_tills_discount_miss_it():
    ten_off = discount(DiscountKind.PERCENT_OFF_CART, percent_off=Decimal(10))
    member = Member(
        offer("TEN_OFF", spend(6000), reward=ten_off),
        offer("POINTS", spend(6000), rank=2),
    )
    # $54 paid after $6 off at the till: $60 before it reaches the discount offer's threshold,
    # while the points offer is judged on the $54 paid.
    evaluation = member.buys(purchase("T1", item("1", 5400, discount_cents=600)))
    assert [e.offer_id for e in evaluation.events] == ["TEN_OFF"]
    assert evaluation.awards == []


def test_a_cart_gets_its_discounts_and_earns_base_on_what_remains():
    five_off = discount(DiscountKind.AMOUNT_OFF_ITEMS, amount_off_cents=500)
    member = Member(
        offer(
            "FIVE_OFF_COFFEE",
            spend(1000, products=ProductSelection(skus=["COFFEE"])),
            reward=five_off,
        )
    )
    cart = member.cart(purchase("C1", item("1", 2000, "COFFEE"), item("2", 3000, "BREAD")))
    assert cart.discounts == [LineDiscount("FIVE_OFF_COFFEE", "1", 500, cart_level=False)]
    assert cart.base_points == {PROGRAM: 45}
    assert member.state.offers == {}  # a cart changes nothing


def test_for_every_discount_multiplies_the_amount_off():
    two_off = discount(DiscountKind.AMOUNT_OFF_CART, amount_off_cents=200, for_every=True)
    member = Member(offer("EVERY_LITRE", quantity("10", skus("FUEL")), reward=two_off))
    cart = member.cart(purchase("C1", item("1", 6000, "FUEL", quantity="35")))
    assert sum(d.cents for d in cart.discounts) == 600
