"""Control members (DESIGN.md §5.16; ADR 13): tracked as if targeted, never rewarded."""

from processors.contract.ledger import LedgerEventRecorded
from processors.contract.offer_definition import DiscountKind, TargetingKind
from processors.contract.offer_definition import TargetingTiming as Timing
from processors.contract.offers import OfferProgressed
from tests.rules.offers.given_offers import discount, purchase, spend
from tests.rules.offers.given_targeting import Engine, audience, targeting

# At a 50% share of CONTROL_T, m1 is held out and m3 is not (sha256 of offer and member).
HELD, TESTED = "m1", "m3"


def test_a_control_member_completes_with_nothing_awarded_and_points_due_set():
    engine = Engine()
    engine.feed(audience("LIST", HELD, TESTED))
    engine.enrol(HELD)
    engine.enrol(TESTED)
    engine.publish("CONTROL_T", targeting=targeting(
        TargetingKind.AUDIENCE_LIST, Timing.STATIC, audience_id="LIST",
        control_share_percent=50))  # fmt: skip
    assert sorted(engine.targeted()) == [(HELD, "CONTROL_T", True), (TESTED, "CONTROL_T", False)]
    engine.buy(HELD, "T1")
    engine.buy(TESTED, "T2")
    got = {e.member_id: (e.in_control_group, e.points_due, e.points_awarded)
           for e in engine.completed()}  # fmt: skip
    assert got == {HELD: (True, 100, 0), TESTED: (False, 100, 100)}
    offer_awards = [
        e for e in engine.outputs
        if isinstance(e, LedgerEventRecorded) and any(x.offer_id for x in e.entries)
    ]  # fmt: skip
    assert [e.member_id for e in offer_awards] == [TESTED]


def test_control_progress_is_flagged_and_mass_offers_hold_out_too():
    engine = Engine()
    engine.publish("CONTROL_T", spend(2000, accumulated=True),
                   targeting=targeting(TargetingKind.MASS, Timing.DYNAMIC,
                                       control_share_percent=50))  # fmt: skip
    engine.enrol(HELD)
    engine.buy(HELD, "T1")
    progressed = [e for e in engine.outputs if isinstance(e, OfferProgressed)]
    assert [e.in_control_group for e in progressed] == [True]
    engine.buy(HELD, "T2")
    assert [(e.in_control_group, e.points_awarded) for e in engine.completed()] == [(True, 0)]


def test_a_control_member_gets_no_discount_and_does_not_block_another_offer():
    engine = Engine()
    five_off = discount(DiscountKind.AMOUNT_OFF_CART, amount_off_cents=500)
    held_out = targeting(TargetingKind.MASS, Timing.DYNAMIC, control_share_percent=50)
    engine.publish("CONTROL_T", reward=five_off, targeting=held_out, stacking_group="G")
    engine.publish("OTHER", stacking_group="G")
    engine.enrol(HELD)
    engine.feed(purchase("T1", cents=1000, member=HELD))
    got = {e.offer_id: (e.in_control_group, e.discount_cents, e.points_awarded)
           for e in engine.completed()}  # fmt: skip
    assert got == {"CONTROL_T": (True, 0, 0), "OTHER": (False, 0, 100)}
