"""The catalogue: candidates come from indexes (market, product keys, whole basket, activity),
live ones only, sorted by rank then offer_id, whatever the publish order."""

from datetime import timedelta

from processors.contract.activities import ActivityKind
from processors.contract.offer_definition import ProductSelection
from processors.rules.offers.catalogue import Catalogue
from tests.rules.given import T0
from tests.rules.offers.given_offers import ENDS, act, did, item, offer, skus, spend


def _ids(offers) -> list[str]:
    return [o.offer_id for o in offers]


COFFEE = offer("COFFEE", spend(100, products=skus("COFFEE")), rank=2)
DAIRY = offer("DAIRY", spend(100, products=ProductSelection(categories=["dairy"])), rank=1)
BASKET = offer("BASKET", rank=3)
NOT_TEA = offer("NOT_TEA", spend(100, products=ProductSelection(excluded_skus=["TEA"])), rank=3)
US_ONLY = offer("US_ONLY", market="US")
LOGIN = offer("LOGIN", did(ActivityKind.LOGIN))


def test_candidates_exclude_offers_of_other_markets_and_other_products():
    catalogue = Catalogue([COFFEE, DAIRY, BASKET, NOT_TEA, US_ONLY, LOGIN])
    lines = [item("1", 500, "COFFEE")]
    assert _ids(catalogue.for_transaction("CA", T0, lines)) == ["COFFEE", "BASKET", "NOT_TEA"]
    milk = [item("1", 500, "MILK", category="dairy")]
    assert _ids(catalogue.for_transaction("CA", T0, milk)) == ["DAIRY", "BASKET", "NOT_TEA"]
    assert _ids(catalogue.for_transaction("US", T0, lines)) == ["US_ONLY"]


def test_candidates_do_not_depend_on_publish_order():
    offers = [COFFEE, DAIRY, BASKET, NOT_TEA]
    lines = [item("1", 500, "COFFEE"), item("2", 500, "MILK", category="dairy")]
    forwards = Catalogue(offers).for_transaction("CA", T0, lines)
    backwards = Catalogue(reversed(offers)).for_transaction("CA", T0, lines)
    assert _ids(forwards) == _ids(backwards) == ["DAIRY", "COFFEE", "BASKET", "NOT_TEA"]


def test_only_live_offers_are_candidates():
    catalogue = Catalogue([BASKET])
    assert _ids(catalogue.for_transaction("CA", ENDS, [item("1", 1)])) == []
    assert _ids(
        catalogue.for_transaction("CA", ENDS - timedelta(milliseconds=1), [item("1", 1)])
    ) == ["BASKET"]


def test_republishing_replaces_the_definition_and_its_index_entries():
    catalogue = Catalogue([COFFEE])
    catalogue.publish(offer("COFFEE", spend(100, products=skus("TEA"))))
    assert _ids(catalogue.for_transaction("CA", T0, [item("1", 1, "COFFEE")])) == []
    assert _ids(catalogue.for_transaction("CA", T0, [item("1", 1, "TEA")])) == ["COFFEE"]
    assert len(catalogue) == 1


def test_a_withdrawn_offer_is_no_candidate_but_its_definition_stays_readable():
    catalogue = Catalogue([BASKET])
    catalogue.withdraw("BASKET")
    assert (catalogue.for_transaction("CA", T0, [item("1", 1)]), catalogue.get("BASKET")) == (
        [],
        None,
    )
    assert catalogue.definition("BASKET") == BASKET
    assert len(catalogue) == 0


def test_an_extension_moves_the_end_of_liveness():
    catalogue = Catalogue([BASKET])
    catalogue.extend("BASKET", ENDS + timedelta(days=10))
    assert _ids(catalogue.for_transaction("CA", ENDS + timedelta(days=5), [item("1", 1)])) == [
        "BASKET"
    ]


def test_activity_candidates_come_from_the_activity_index():
    catalogue = Catalogue([LOGIN, BASKET])
    assert _ids(catalogue.for_activity(["CA"], T0, act(ActivityKind.LOGIN))) == ["LOGIN"]
    assert catalogue.for_activity(["CA"], T0, act(ActivityKind.FIRST_LOGIN)) == []
    assert catalogue.for_activity(["US"], T0, act(ActivityKind.LOGIN)) == []


def test_a_whole_basket_offer_out_of_a_baskets_reach_is_cut_for_evaluation_only():
    ten = offer("SPEND_10", spend(1000), rank=1)
    hundred = offer("SPEND_100", spend(10000), rank=2)
    kept = offer("SPEND_100_OVER_TIME", spend(10000, accumulated=True), rank=3)
    catalogue = Catalogue([ten, hundred, kept, COFFEE])
    # $40 paid after $10 off at the till: $50 of whole spend before discounts.
    lines = [item("1", 3000, "COFFEE"), item("2", 1000, "MILK", discount_cents=1000)]
    cut = catalogue.for_transaction("CA", T0, lines, within_reach=True)
    assert _ids(cut) == ["SPEND_10", "COFFEE", "SPEND_100_OVER_TIME"]
    # Targeting is decided on any behaviour towards an offer: every candidate.
    every = catalogue.for_transaction("CA", T0, lines)
    assert _ids(every) == ["SPEND_10", "COFFEE", "SPEND_100", "SPEND_100_OVER_TIME"]
    catalogue.withdraw("SPEND_10")
    big = [item("1", 10000, "MILK")]
    assert _ids(catalogue.for_transaction("CA", T0, big, within_reach=True)) == [
        "SPEND_100",
        "SPEND_100_OVER_TIME",
    ]
