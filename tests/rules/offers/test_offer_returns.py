"""Returns re-evaluate the original purchase without the returned lines: awards that no longer
hold are taken back, never more than was awarded (DESIGN.md §5.14, 5.19)."""

from processors.contract.offers import OfferProgressed
from tests.rules.given import program
from tests.rules.offers.given_offers import (
    Member,
    fill_up,
    flat,
    give_back,
    item,
    multiplier,
    offer,
    purchase,
    quantity,
    skus,
    spend,
    usage,
)


def _reversed(evaluation) -> list[tuple[str, int]]:
    return [(r.offer_id, r.points) for r in evaluation.reversals]


def test_returning_what_made_a_single_transaction_offer_qualify_takes_its_award_back():
    member = Member(offer("SPEND50", spend(5000), reward=flat(500)))
    bought = member.buys(purchase("T1", item("1", 3000), item("2", 3000)))
    evaluation = member.returns(give_back("T1", "R1", ("2", 3000)))
    assert _reversed(evaluation) == [("SPEND50", 500)]
    assert evaluation.reversals[0].completed_event_id == bought.awards[0].completed_event_id
    assert member.points == 0


def test_a_return_that_keeps_the_threshold_takes_nothing_back():
    member = Member(offer("SPEND50", spend(5000), reward=flat(500)))
    member.buys(purchase("T1", item("1", 5000), item("2", 1000)))
    assert member.returns(give_back("T1", "R1", ("2", 1000))).reversals == []


def test_for_every_takes_back_only_the_multiples_no_longer_earned():
    member = Member(offer("EVERY10", spend(1000), reward=flat(100, for_every=True)))
    member.buys(purchase("T1", item("1", 2000), item("2", 1500)))  # $35: 300
    assert _reversed(member.returns(give_back("T1", "R1", ("2", 1500)))) == [("EVERY10", 100)]
    assert member.points == 200


def test_a_multiplier_is_taken_back_on_the_returned_lines_base():
    member = Member(offer("DOUBLE", spend(100), reward=multiplier("2")))
    member.buys(purchase("T1", item("1", 4000), item("2", 1000)))  # bonus 50
    assert _reversed(member.returns(give_back("T1", "R1", ("2", 1000)))) == [("DOUBLE", 10)]


def test_a_multiplier_under_the_base_cap_takes_back_its_pro_rata_share():
    member = Member(
        offer("DOUBLE", spend(100), reward=multiplier("2")),
        programs=[program(base_points_per_transaction_max=50)],
    )
    member.buys(purchase("T1", item("1", 10000), item("2", 10000)))  # base capped 50, bonus 50
    # Half comes back: base 100 is still over the cap, so the bonus stays 50.
    assert member.returns(give_back("T1", "R1", ("2", 10000))).reversals == []


def test_a_return_reduces_accumulated_progress_in_progress():
    member = Member(offer("ACC50", spend(5000, accumulated=True)))
    member.buys(purchase("T1", item("1", 2000), item("2", 2000)))
    evaluation = member.returns(give_back("T1", "R1", ("2", 2000)))
    [event] = evaluation.events
    assert isinstance(event, OfferProgressed)
    assert event.progress[0].progress == 2000
    assert evaluation.reversals == []
    assert member.buys(purchase("T2", cents=2999)).awards == []
    assert member.buys(purchase("T3", cents=1)).awards[0].points == 100


def test_a_completed_accumulated_use_that_falls_below_its_threshold_is_reversed():
    member = Member(offer("ACC50", spend(5000, accumulated=True)))
    member.buys(purchase("T1", item("1", 3000)), purchase("T2", item("1", 2000)))
    assert member.points == 100
    assert _reversed(member.returns(give_back("T1", "R1", ("1", 1000)))) == [("ACC50", 100)]
    assert member.points == 0


def test_the_same_return_delivered_twice_takes_back_once():
    member = Member(offer("SPEND50", spend(5000), reward=flat(500)))
    member.buys(purchase("T1", item("1", 6000)))
    member.returns(give_back("T1", "R1", ("1", 6000)))
    assert member.returns(give_back("T1", "R1", ("1", 6000))).reversals == []
    assert member.points == 0


def test_a_reversal_never_exceeds_what_the_use_awarded():
    member = Member(
        offer("CAPPED", spend(1000), reward=flat(800), usage=usage(points_per_member_max=300))
    )
    member.buys(purchase("T1", item("1", 1000)))
    assert _reversed(member.returns(give_back("T1", "R1", ("1", 1000)))) == [("CAPPED", 300)]
    assert member.returns(give_back("T1", "R2", ("1", 1000))).reversals == []
    assert member.points == 0


def test_returned_fuel_below_the_minimum_fill_takes_the_bonus_back():
    member = Member(offer("FUEL", quantity("25", skus("FUEL")), reward=flat(300)))
    member.buys(fill_up("T1", "30"))
    back = member.returns(give_back("T1", "R1", ("1", 1000), quantity="6"))
    assert _reversed(back) == [("FUEL", 300)]


def test_a_return_of_an_unknown_purchase_changes_nothing():
    member = Member(offer("SPEND50", spend(5000), reward=flat(500)))
    assert member.returns(give_back("T9", "R1", ("1", 1000))).reversals == []
