"""Uses and caps: one award is one use; per-member use limit, per-member and per-transaction
points caps clip (DESIGN.md §5.19, 5.20; seed 003 "Offer usage/reward controls")."""

from tests.rules.offers.given_offers import (
    Member,
    fill_up,
    flat,
    offer,
    points_of,
    purchase,
    quantity,
    skus,
    spend,
    usage,
)


def test_a_use_limit_of_three_pays_three_of_four_qualifying_transactions():
    # Seed 003: spend $10 to get 100 points, usage limit 3 → 300 points.
    member = Member(
        offer("SPEND10", spend(1000), reward=flat(100), usage=usage(uses_per_member_max=3))
    )
    member.buys(*(purchase(f"T{n}", cents=1000) for n in range(1, 5)))
    assert member.points == 300
    assert [e.use_number for e in member.completed()] == [1, 2, 3]


def test_a_points_cap_of_1500_stops_fuel_bonuses_after_five_fill_ups():
    # Seed 003: 300 points per fill-up of at least 25 L, at most 1,500 in the offer period.
    fuel = offer(
        "FUEL300",
        quantity("25", skus("FUEL")),
        reward=flat(300),
        usage=usage(points_per_member_max=1500),
    )
    member = Member(fuel)
    member.buys(fill_up("T0", "24"))
    assert member.points == 0
    member.buys(*(fill_up(f"T{n}", "30") for n in range(1, 7)))
    assert member.points == 1500
    assert len(member.completed()) == 5


def test_a_points_cap_clips_the_award_that_crosses_it_then_pays_nothing():
    member = Member(
        offer("BIG", spend(1000), reward=flat(800), usage=usage(points_per_member_max=1100))
    )
    first, second, third = (member.buys(purchase(f"T{n}", cents=1000)) for n in (1, 2, 3))
    assert [points_of(e) for e in (first, second, third)] == [800, 300, 0]
    crossing = member.completed()[1]
    assert (crossing.points_due, crossing.points_awarded) == (800, 300)
    assert third.events == []


def test_a_per_transaction_cap_clips_one_transaction_s_award():
    member = Member(
        offer(
            "EVERY10",
            spend(1000),
            reward=flat(100, for_every=True),
            usage=usage(points_per_transaction_max=250),
        )
    )
    assert points_of(member.buys(purchase("T1", cents=5000))) == 250
    assert points_of(member.buys(purchase("T2", cents=2000))) == 200
