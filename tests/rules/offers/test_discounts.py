"""Discounts on a basket: item discounts first, then cart ones on what remains; % per line,
half-up; $ pro-rata by largest remainder; free items cheapest first; never more than the line
or the cart (DESIGN.md §5.9)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from processors.contract.offer_definition import DiscountKind, DiscountTerms, ProductSelection
from processors.contract.transactions import TransactionLine
from processors.rules.arithmetic import split_pro_rata
from processors.rules.offers.discounts import (
    DiscountOffer,
    LineDiscount,
    PricedLine,
    apply_discounts,
    discount_total,
    selects,
)

COFFEE = ProductSelection(categories=["coffee"])


def line(
    line_id: str,
    cents: int,
    *,
    quantity: str = "1",
    unit_price_cents: int | None = None,
    sku: str | None = None,
    category: str | None = "coffee",
    brand: str | None = None,
) -> PricedLine:
    """A line of `cents`; by default one unit of coffee at that price."""
    return PricedLine(
        line_id=line_id,
        sku=sku or f"SKU-{line_id}",
        gtin=None,
        category=category,
        subcategory=None,
        brand=brand,
        quantity=Decimal(quantity),
        unit_price_cents=cents if unit_price_cents is None else unit_price_cents,
        amount_cents=cents,
    )


def offer(
    offer_id: str,
    kind: DiscountKind,
    *,
    line_ids: set[str] | None = None,
    multiples: int = 1,
    **terms: Any,
) -> DiscountOffer:
    needs_products = kind is DiscountKind.FREE_ITEM and "products" not in terms
    products = {"products": COFFEE} if needs_products else {}
    return DiscountOffer(
        offer_id=offer_id,
        terms=DiscountTerms(kind=kind, **products, **terms),
        line_ids=None if line_ids is None else frozenset(line_ids),
        multiples=multiples,
    )


def dollars_off_items(offer_id: str, cents: int, **changes: Any) -> DiscountOffer:
    changes.setdefault("products", COFFEE)
    return offer(offer_id, DiscountKind.AMOUNT_OFF_ITEMS, amount_off_cents=cents, **changes)


def dollars_off_cart(offer_id: str, cents: int, **changes: Any) -> DiscountOffer:
    return offer(offer_id, DiscountKind.AMOUNT_OFF_CART, amount_off_cents=cents, **changes)


def percent_off_items(offer_id: str, percent: str, **changes: Any) -> DiscountOffer:
    changes.setdefault("products", COFFEE)
    return offer(offer_id, DiscountKind.PERCENT_OFF_ITEMS, percent_off=Decimal(percent), **changes)


def percent_off_cart(offer_id: str, percent: str, **changes: Any) -> DiscountOffer:
    return offer(offer_id, DiscountKind.PERCENT_OFF_CART, percent_off=Decimal(percent), **changes)


def free_items(offer_id: str, units: int, **changes: Any) -> DiscountOffer:
    return offer(offer_id, DiscountKind.FREE_ITEM, free_units=units, **changes)


def cents_by_line(discounts: list[LineDiscount]) -> list[tuple[str, str, int]]:
    return [(d.offer_id, d.line_id, d.cents) for d in discounts]


# --- which lines -------------------------------------------------------------------------


def test_a_selection_matches_any_value_within_a_list_and_every_list_given():
    selection = ProductSelection(categories=["coffee", "tea"], brands=["ACME"])
    assert selects(selection, line("1", 100, category="tea", brand="ACME"))
    assert not selects(selection, line("2", 100, category="tea", brand="OTHER"))
    assert not selects(selection, line("3", 100, category="milk", brand="ACME"))


def test_a_selection_without_include_lists_selects_everything_but_its_exclusions():
    selection = ProductSelection(excluded_categories=["tobacco"])
    assert selects(selection, line("1", 100, category="coffee"))
    assert selects(selection, line("2", 100, category=None))
    assert not selects(selection, line("3", 100, category="tobacco"))


def test_an_exclusion_wins_over_an_inclusion():
    selection = ProductSelection(categories=["coffee"], excluded_skus=["DECAF"])
    assert selects(selection, line("1", 100, sku="DARK"))
    assert not selects(selection, line("2", 100, sku="DECAF"))


def test_a_line_without_the_value_a_list_includes_is_not_selected():
    assert not selects(ProductSelection(brands=["ACME"]), line("1", 100, brand=None))


def test_a_line_priced_gross_adds_back_what_the_till_already_took_off():
    till_line = TransactionLine(
        line_id="1",
        sku="DARK",
        quantity=Decimal(2),
        unit_price_cents=600,
        amount_cents=1000,
        discount_cents=200,
    )
    assert PricedLine.of(till_line).amount_cents == 1000
    assert PricedLine.of(till_line, gross=True).amount_cents == 1200


# --- $ off -------------------------------------------------------------------------------


def test_dollars_off_items_take_the_amount_off_the_selected_line_only():
    lines = [line("1", 1200), line("2", 800, category="milk")]
    discounts = apply_discounts(lines, [dollars_off_items("O1", 500)])
    assert discounts == [LineDiscount("O1", "1", 500, cart_level=False)]


def test_dollars_off_split_pro_rata_gives_the_left_over_cent_to_the_largest_remainder():
    lines = [line("1", 333), line("2", 333), line("3", 334)]
    discounts = apply_discounts(lines, [dollars_off_items("O1", 100)])
    assert cents_by_line(discounts) == [("O1", "1", 33), ("O1", "2", 33), ("O1", "3", 34)]


def test_ten_dollars_off_lines_of_333_333_334_takes_each_line_whole():
    lines = [line("1", 333), line("2", 333), line("3", 334)]
    discounts = apply_discounts(lines, [dollars_off_cart("O1", 1000)])
    assert cents_by_line(discounts) == [("O1", "1", 333), ("O1", "2", 333), ("O1", "3", 334)]


def test_dollars_off_split_ties_go_to_the_earlier_line():
    lines = [line("1", 500), line("2", 500), line("3", 500)]
    discounts = apply_discounts(lines, [dollars_off_cart("O1", 1000)])
    assert cents_by_line(discounts) == [("O1", "1", 334), ("O1", "2", 333), ("O1", "3", 333)]


def test_dollars_off_items_never_exceed_the_items():
    lines = [line("1", 300), line("2", 5000, category="milk")]
    discounts = apply_discounts(lines, [dollars_off_items("O1", 1000)])
    assert cents_by_line(discounts) == [("O1", "1", 300)]


def test_dollars_off_the_cart_spread_over_every_line_and_never_exceed_the_cart():
    lines = [line("1", 600), line("2", 400, category="milk")]
    assert cents_by_line(apply_discounts(lines, [dollars_off_cart("O1", 500)])) == [
        ("O1", "1", 300),
        ("O1", "2", 200),
    ]
    discounts = apply_discounts(lines, [dollars_off_cart("O1", 5000)])
    assert [(d.line_id, d.cents, d.cart_level) for d in discounts] == [
        ("1", 600, True),
        ("2", 400, True),
    ]


def test_for_every_multiplies_the_amount_off():
    lines = [line("1", 5000)]
    discounts = apply_discounts(lines, [dollars_off_items("O1", 300, multiples=3)])
    assert discount_total(discounts) == 900


def test_a_discount_with_zero_multiples_takes_nothing_off():
    assert apply_discounts([line("1", 5000)], [dollars_off_items("O1", 300, multiples=0)]) == []


# --- % off -------------------------------------------------------------------------------


def test_percent_off_is_rounded_half_up_per_line_not_on_the_total():
    # 15% of 12.50 is 1.875 → 1.88; of 12.30 is 1.845 → 1.85 (banker's rounding says 1.84);
    # on the total, 15% of 24.80 would be 3.72.
    lines = [line("1", 1250), line("2", 1230)]
    discounts = apply_discounts(lines, [percent_off_items("O1", "15")])
    assert cents_by_line(discounts) == [("O1", "1", 188), ("O1", "2", 185)]


def test_a_percent_cap_that_binds_is_spread_in_proportion_to_each_line_s_share():
    lines = [line("1", 1000), line("2", 3000)]
    capped = percent_off_items("O1", "50", discount_max_cents=1000)
    assert cents_by_line(apply_discounts(lines, [capped])) == [("O1", "1", 250), ("O1", "2", 750)]


def test_a_percent_cap_that_does_not_bind_changes_nothing():
    lines = [line("1", 1000), line("2", 3000)]
    capped = percent_off_items("O1", "10", discount_max_cents=1000)
    assert cents_by_line(apply_discounts(lines, [capped])) == [("O1", "1", 100), ("O1", "2", 300)]


def test_percent_off_the_cart_applies_to_every_line():
    lines = [line("1", 999), line("2", 1001, category="milk")]
    discounts = apply_discounts(lines, [percent_off_cart("O1", "10")])
    # 99.9 → 100 and 100.1 → 100, per line.
    assert [(d.line_id, d.cents, d.cart_level) for d in discounts] == [
        ("1", 100, True),
        ("2", 100, True),
    ]


def test_a_hundred_percent_off_takes_exactly_the_line():
    discounts = apply_discounts([line("1", 1234)], [percent_off_items("O1", "100")])
    assert discount_total(discounts) == 1234


def test_for_every_does_not_multiply_a_percentage():
    discounts = apply_discounts([line("1", 1000)], [percent_off_items("O1", "10", multiples=3)])
    assert discount_total(discounts) == 100


# --- free items --------------------------------------------------------------------------


def test_a_free_item_is_the_cheapest_matching_unit():
    lines = [
        line("1", 900, quantity="2", unit_price_cents=450),
        line("2", 300),
        line("3", 100, category="milk"),
    ]
    assert cents_by_line(apply_discounts(lines, [free_items("O1", 1)])) == [("O1", "2", 300)]


def test_free_units_go_unit_by_unit_from_the_cheapest_up():
    lines = [line("1", 900, quantity="2", unit_price_cents=450), line("2", 300)]
    discounts = apply_discounts(lines, [free_items("O1", 2)])
    assert cents_by_line(discounts) == [("O1", "1", 450), ("O1", "2", 300)]


def test_free_units_between_lines_of_the_same_price_go_to_the_earlier_line():
    lines = [line("1", 300), line("2", 300)]
    assert cents_by_line(apply_discounts(lines, [free_items("O1", 1)])) == [("O1", "1", 300)]


def test_a_free_unit_is_worth_what_remains_of_its_line_per_unit():
    # 3 units at 4.00, 3.00 off already: one free unit is worth 9.00 / 3.
    lines = [line("1", 1200, quantity="3", unit_price_cents=400)]
    discounts = apply_discounts(lines, [dollars_off_items("O1", 300), free_items("O2", 1)])
    assert cents_by_line(discounts) == [("O1", "1", 300), ("O2", "1", 300)]


def test_only_whole_units_of_a_line_sold_by_measure_are_free():
    # 2.5 kg at 4.00/kg: at most 2 kg free, worth 10.00 × 2 / 2.5; 0.5 kg offers no unit.
    lines = [
        line("1", 200, quantity="0.5", unit_price_cents=400),
        line("2", 1000, quantity="2.5", unit_price_cents=400),
    ]
    assert cents_by_line(apply_discounts(lines, [free_items("O1", 3)])) == [("O1", "2", 800)]


def test_for_every_multiplies_the_free_units():
    lines = [line("1", 1500, quantity="5", unit_price_cents=300)]
    discounts = apply_discounts(lines, [free_items("O1", 1, multiples=2)])
    assert cents_by_line(discounts) == [("O1", "1", 600)]


def test_more_free_units_than_the_basket_holds_make_the_matching_lines_free():
    lines = [line("1", 1500, quantity="5", unit_price_cents=300)]
    assert discount_total(apply_discounts(lines, [free_items("O1", 9)])) == 1500


# --- order and limits --------------------------------------------------------------------


def test_item_discounts_apply_in_order_each_on_what_the_earlier_left():
    lines = [line("1", 1000)]
    discounts = apply_discounts(
        lines, [dollars_off_items("O1", 900), percent_off_items("O2", "50")]
    )
    assert cents_by_line(discounts) == [("O1", "1", 900), ("O2", "1", 50)]


def test_cart_discounts_apply_after_item_discounts_whatever_the_order_given():
    lines = [line("1", 1000), line("2", 1000, category="milk")]
    given = [percent_off_cart("CART", "10"), dollars_off_items("ITEM", 200)]
    assert cents_by_line(apply_discounts(lines, given)) == [
        ("ITEM", "1", 200),
        ("CART", "1", 80),
        ("CART", "2", 100),
    ]


def test_dollars_off_the_cart_are_split_by_what_remains_after_item_discounts():
    lines = [line("1", 1000), line("2", 1000, category="milk")]
    given = [dollars_off_items("ITEM", 500), dollars_off_cart("CART", 300)]
    assert cents_by_line(apply_discounts(lines, given)) == [
        ("ITEM", "1", 500),
        ("CART", "1", 100),
        ("CART", "2", 200),
    ]


def test_lines_with_nothing_left_get_nothing_and_zero_discounts_are_not_listed():
    lines = [line("1", 500), line("2", 0)]
    given = [dollars_off_cart("O1", 5000), percent_off_cart("O2", "10")]
    assert cents_by_line(apply_discounts(lines, given)) == [("O1", "1", 500)]


def test_an_item_discount_without_products_applies_to_the_lines_the_offer_selected():
    lines = [line("1", 1000), line("2", 1000, category="milk")]
    behaviour_lines = offer(
        "O1", DiscountKind.AMOUNT_OFF_ITEMS, amount_off_cents=300, line_ids={"2"}
    )
    assert cents_by_line(apply_discounts(lines, [behaviour_lines])) == [("O1", "2", 300)]


def test_an_item_discount_with_neither_products_nor_lines_takes_nothing_off():
    lines = [line("1", 1000)]
    nameless = offer("O1", DiscountKind.PERCENT_OFF_ITEMS, percent_off=Decimal(10), line_ids=None)
    assert apply_discounts(lines, [nameless]) == []


def test_products_and_lines_together_narrow_to_the_lines_in_both():
    lines = [line("1", 1000), line("2", 1000), line("3", 1000, category="milk")]
    both = dollars_off_items("O1", 400, line_ids={"2", "3"})
    assert cents_by_line(apply_discounts(lines, [both])) == [("O1", "2", 400)]


def test_a_cart_discount_given_lines_spreads_over_those_lines_only():
    lines = [line("1", 1000), line("2", 1000, category="lottery")]
    cart = dollars_off_cart("O1", 300, line_ids={"1"})
    assert cents_by_line(apply_discounts(lines, [cart])) == [("O1", "1", 300)]


@pytest.mark.parametrize(("spend_min_cents", "applies"), [(2000, True), (2001, False)])
def test_a_least_spend_is_judged_on_what_remains_of_the_discount_s_lines(spend_min_cents, applies):
    lines = [line("1", 1500), line("2", 1000, category="milk")]
    given = [
        dollars_off_items("ITEM", 500),
        percent_off_cart("CART", "10", spend_min_cents=spend_min_cents),
    ]
    assert discount_total(apply_discounts(lines, given), "CART") == (200 if applies else 0)


def test_a_discount_of_an_unknown_kind_takes_nothing_off():
    unknown = DiscountOffer("O1", DiscountTerms(kind=DiscountKind.UNKNOWN), line_ids=None)
    assert apply_discounts([line("1", 1000)], [unknown]) == []


def test_the_total_of_one_offer_counts_only_its_discounts():
    lines = [line("1", 1000), line("2", 1000, category="milk")]
    discounts = apply_discounts(lines, [dollars_off_items("A", 100), dollars_off_cart("B", 300)])
    assert (discount_total(discounts, "A"), discount_total(discounts, "B")) == (100, 300)
    assert discount_total(discounts) == 400


def test_the_same_basket_and_discounts_give_the_same_discounts():
    lines = [line("1", 777), line("2", 333, quantity="3", unit_price_cents=111)]
    given = [free_items("F", 1), percent_off_cart("P", "33.33"), dollars_off_cart("D", 101)]
    assert apply_discounts(lines, given) == apply_discounts(lines, given)


# --- the split helper --------------------------------------------------------------------


def test_a_split_adds_up_and_gives_nothing_to_a_zero_weight():
    assert split_pro_rata(10, [1, 0, 1, 1]) == [4, 0, 3, 3]
    assert split_pro_rata(0, [5, 5]) == [0, 0]
    assert split_pro_rata(7, [0, 0]) == [0, 0]
    assert split_pro_rata(7, []) == []
