"""Stacking: offers stack by default; in an unstackable group only the most valuable applies,
ties to the better rank, then the smaller offer_id; a losing offer consumes no use
(DESIGN.md §5.8)."""

from decimal import Decimal

from processors.contract.offer_definition import DiscountKind
from processors.rules.offers.stacking import Contender, winners
from tests.rules.offers.given_offers import (
    Member,
    discount,
    flat,
    multiplier,
    offer,
    points_of,
    purchase,
    spend,
    usage,
)


def _awarded(evaluation) -> dict[str, int]:
    return {a.offer_id: a.points for a in evaluation.awards}


def test_offers_without_a_group_stack():
    member = Member(offer("AAA", reward=flat(100)), offer("BBB", reward=flat(200)))
    assert _awarded(member.buys(purchase("T1", cents=1000))) == {"AAA": 100, "BBB": 200}


def test_in_an_unstackable_group_only_the_highest_value_applies():
    member = Member(
        offer("SMALL", reward=flat(100), stacking_group="G"),
        offer("LARGE", reward=flat(200), stacking_group="G", rank=9),
        offer("OTHER", reward=flat(50)),
    )
    assert _awarded(member.buys(purchase("T1", cents=1000))) == {"LARGE": 200, "OTHER": 50}


def test_equal_values_go_to_the_better_rank_then_the_smaller_offer_id():
    member = Member(
        offer("ZZZ", reward=flat(100), stacking_group="G", rank=1),
        offer("AAA", reward=flat(100), stacking_group="G", rank=2),
        offer("YYY", reward=flat(100), stacking_group="H", rank=3),
        offer("XXX", reward=flat(100), stacking_group="H", rank=3),
    )
    assert _awarded(member.buys(purchase("T1", cents=1000))) == {"ZZZ": 100, "XXX": 100}


def test_the_value_compared_is_what_the_member_would_get_after_caps():
    member = Member(
        offer(
            "BIG_CAPPED",
            reward=flat(500),
            stacking_group="G",
            usage=usage(points_per_transaction_max=150),
        ),
        offer("MEDIUM", reward=flat(200), stacking_group="G"),
    )
    assert _awarded(member.buys(purchase("T1", cents=1000))) == {"MEDIUM": 200}


def test_a_losing_offer_consumes_no_use():
    once = usage(uses_per_member_max=1)
    member = Member(
        offer("ONCE", reward=flat(100), stacking_group="G", usage=once),
        offer(
            "TWICE_BIGGER",
            spend(5000),
            reward=flat(300),
            stacking_group="G",
            usage=usage(uses_per_member_max=1),
        ),
    )
    assert _awarded(member.buys(purchase("T1", cents=6000))) == {"TWICE_BIGGER": 300}
    assert _awarded(member.buys(purchase("T2", cents=1000))) == {"ONCE": 100}


def test_a_mixed_group_compares_points_at_the_programme_s_redemption_rate():
    # 100 points buy $1 in the test programme: 300 points are worth 300 cents, less than $5.
    member = Member(
        offer("POINTS", reward=flat(300), stacking_group="G"),
        offer(
            "FIVE_OFF",
            reward=discount(DiscountKind.AMOUNT_OFF_CART, amount_off_cents=500),
            stacking_group="G",
        ),
    )
    evaluation = member.buys(purchase("T1", cents=2000))
    assert evaluation.awards == []
    assert {d.offer_id for d in evaluation.discounts} == {"FIVE_OFF"}


def test_a_multiplier_competes_by_the_bonus_it_pays():
    member = Member(
        offer("DOUBLE", reward=multiplier("2"), stacking_group="G"),
        offer("FLAT", reward=flat(40), stacking_group="G"),
    )
    assert points_of(member.buys(purchase("T1", cents=5000))) == 50


def test_winners_keep_every_ungrouped_contender():
    contenders = [
        Contender("A", 1, None, Decimal(0)),
        Contender("B", 1, "G", Decimal(5)),
        Contender("C", 1, "G", Decimal(6)),
    ]
    assert winners(contenders) == {"A", "C"}
