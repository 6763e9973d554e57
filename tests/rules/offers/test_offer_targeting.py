"""Who may count towards an offer: enrolment, targeting (more in test_targeting*.py),
coupon codes, store locations; anonymous carts (DESIGN.md §5.16–17; seed 003)."""

from processors.contract.common import Store
from processors.contract.offer_definition import (
    ActivationKind,
    DiscountKind,
    OfferActivation,
    OfferTargeting,
    StoreLocations,
    TargetingKind,
    TargetingTiming,
)
from processors.rules.offers.catalogue import Catalogue
from processors.rules.offers.evaluate import evaluate_cart
from tests.rules.given import program
from tests.rules.offers.given_offers import (
    Member,
    coupon,
    discount,
    item,
    offer,
    points_of,
    purchase,
    spend,
    usage,
)


def test_a_coupon_offer_counts_only_when_its_code_is_in_the_cart():
    member = Member(offer("COUPON", activation=coupon("SAVE10")))
    assert points_of(member.buys(purchase("T1", cents=1000))) == 0
    assert points_of(member.buys(purchase("T2", cents=1000, codes=["OTHER"]))) == 0
    assert points_of(member.buys(purchase("T3", cents=1000, codes=["save10"]))) == 100


def test_an_offer_limited_to_stores_counts_only_there():
    where = StoreLocations(provinces=["QC"], banners=["MAXI"])
    targeting = OfferTargeting(
        kind=TargetingKind.MASS, timing=TargetingTiming.DYNAMIC, locations=where
    )
    member = Member(offer("QC_MAXI", targeting=targeting))
    in_ontario = Store(store_id="S1", province="ON", banner="MAXI")
    other_banner = Store(store_id="S2", province="QC", banner="PROVIGO")
    there = Store(store_id="S3", province="QC", banner="MAXI")
    results = [
        points_of(member.buys(purchase(f"T{s.store_id}", cents=1000, store=s)))
        for s in (in_ontario, other_banner, there)
    ]
    assert results == [0, 0, 100]


def test_a_postal_code_prefix_matches_the_store_s_postal_code():
    where = StoreLocations(postal_code_prefixes=["h2x"])
    targeting = OfferTargeting(
        kind=TargetingKind.MASS, timing=TargetingTiming.DYNAMIC, locations=where
    )
    member = Member(offer("MILE_END", targeting=targeting))
    store = Store(store_id="S1", postal_code="H2X 1Y4")
    assert points_of(member.buys(purchase("T1", cents=1000, store=store))) == 100


def test_an_audience_not_decided_and_an_offer_not_loaded_never_pay():
    audience = OfferTargeting(
        kind=TargetingKind.AUDIENCE_LIST, timing=TargetingTiming.STATIC, audience_id="A1"
    )
    member = Member(
        offer("AUDIENCE", targeting=audience),
        offer("LOADED", activation=OfferActivation(kind=ActivationKind.LOAD_TO_CARD)),
    )
    assert member.buys(purchase("T1", cents=1000)).events == []


def test_a_member_not_enrolled_in_the_offer_s_programme_does_not_count():
    member = Member(
        offer("OTHER_PROGRAMME", program_id="CA_OTHER"), programs=[program(), program("CA_OTHER")]
    )
    assert points_of(member.buys(purchase("T1", cents=1000))) == 0


def test_an_anonymous_cart_gets_open_discounts_but_no_points_or_limited_offers():
    five_off = discount(DiscountKind.AMOUNT_OFF_CART, amount_off_cents=500)
    catalogue = Catalogue(
        [
            offer("POINTS"),
            offer("OPEN_DISCOUNT", reward=five_off),
            offer("ONCE_PER_MEMBER", reward=five_off, usage=usage(uses_per_member_max=1)),
            offer("ACCUMULATED", spend(1000, accumulated=True), reward=five_off),
        ]
    )
    cart = purchase("C1", item("1", 2000), member=None)
    result = evaluate_cart(None, cart, catalogue, {"CA_MAIN": program()})
    assert {d.offer_id for d in result.discounts} == {"OPEN_DISCOUNT"}
    assert (result.awards, result.base_points) == ([], {})


def test_a_cart_preview_matches_what_the_purchase_then_earns():
    member = Member(offer("SPEND10"), offer("ACC50", spend(5000, accumulated=True)))
    preview = member.cart(purchase("T1", cents=6000))
    done = member.buys(purchase("T1", cents=6000))
    assert [a.points for a in preview.awards] == [a.points for a in done.awards] == [100, 100]
    assert [e.event_id for e in preview.events] == [e.event_id for e in done.events]
