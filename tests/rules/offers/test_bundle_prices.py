"""Bundle and combo prices: whole groups of units sold at a fixed price, the dearest units
first, a group that would cost more not formed, what they save spread over the bundled lines
pro rata (docs/adr/0038-bundle-and-combo-prices.md)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from processors.contract.offer_definition import (
    DiscountKind,
    DiscountTerms,
    ProductSelection,
    standalone_discount_problems,
)
from processors.contract.transactions import TransactionLine
from processors.rules.offers.discounts import apply_discounts, discount_alone, discount_total
from processors.rules.rewards.till import Held, check
from tests.rules.given import T0
from tests.rules.offers.test_discounts import COFFEE, cents_by_line, dollars_off_items, line, offer

SANDWICH = ProductSelection(categories=["sandwich"])
DRINK = ProductSelection(categories=["drink"])
COOKIE = ProductSelection(categories=["cookie"])


def bundle(units: int, price_cents: int, **changes: Any) -> Any:
    changes.setdefault("products", COFFEE)
    return offer(
        "B",
        DiscountKind.BUNDLE_PRICE,
        bundle_units=units,
        bundle_price_cents=price_cents,
        **changes,
    )


def combo(price_cents: int, *selections: ProductSelection, **changes: Any) -> Any:
    return offer(
        "C",
        DiscountKind.COMBO_PRICE,
        combo_products=list(selections or (SANDWICH, DRINK, COOKIE)),
        bundle_price_cents=price_cents,
        **changes,
    )


# --- BUNDLE_PRICE ------------------------------------------------------------------------


def test_three_units_for_a_price_take_off_what_they_cost_above_it():
    # 3 for $10 on 3 × $4.00: $12.00 - $10.00.
    lines = [line("1", 1200, quantity="3", unit_price_cents=400)]
    assert cents_by_line(apply_discounts(lines, [bundle(3, 1000)])) == [("B", "1", 200)]


def test_as_many_bundles_as_whole_groups_and_the_units_left_over_pay_their_price():
    # 7 units: two bundles of 3, the seventh unit at its price.
    lines = [line("1", 2800, quantity="7", unit_price_cents=400)]
    assert discount_total(apply_discounts(lines, [bundle(3, 1000)])) == 2 * 200


def test_units_that_do_not_make_a_whole_bundle_take_nothing_off():
    lines = [line("1", 800, quantity="2", unit_price_cents=400), line("2", 500, category="milk")]
    assert apply_discounts(lines, [bundle(3, 1000)]) == []


def test_the_dearest_units_are_bundled_and_the_saving_split_pro_rata_over_them():
    # 2 for $5 over $4.00, $3.50 and $2.00: the $4.00 and $3.50 units make the bundle
    # ($2.50 saved, split 400 : 350), the $2.00 unit pays its price.
    lines = [line("1", 200), line("2", 400), line("3", 350)]
    assert cents_by_line(apply_discounts(lines, [bundle(2, 500)])) == [
        ("B", "2", 133),
        ("B", "3", 117),
    ]


def test_a_bundle_that_would_cost_more_than_its_units_is_not_formed():
    # 2 for $5: $4.00 + $3.50 saves, the next pair ($2.00 + $2.00) would cost more.
    lines = [line("1", 400), line("2", 350), line("3", 400, quantity="2", unit_price_cents=200)]
    assert discount_total(apply_discounts(lines, [bundle(2, 500)])) == 250
    cheap = [line("1", 400, quantity="2", unit_price_cents=200)]
    assert apply_discounts(cheap, [bundle(2, 500)]) == []


def test_a_bundle_is_priced_on_what_earlier_discounts_left_of_its_units():
    # $3.00 off first leaves $9.00 of 3 × $4.00: a 3 for $10 bundle would cost more.
    lines = [line("1", 1200, quantity="3", unit_price_cents=400)]
    assert cents_by_line(
        apply_discounts(lines, [dollars_off_items("O1", 300), bundle(3, 1000)])
    ) == [("O1", "1", 300)]


def test_only_whole_units_of_a_line_sold_by_measure_are_bundled():
    # 2.5 kg at $4.00/kg: 2 units of 1 kg, worth $10.00 × 2 / 2.5 = $8.00, 2 for $5.
    lines = [line("1", 1000, quantity="2.5", unit_price_cents=400)]
    assert discount_total(apply_discounts(lines, [bundle(2, 500)])) == 300


def test_for_every_multiples_do_not_multiply_the_bundles():
    lines = [line("1", 1200, quantity="3", unit_price_cents=400)]
    assert discount_total(apply_discounts(lines, [bundle(3, 1000, multiples=3)])) == 200


def test_valued_alone_a_bundle_takes_off_what_it_takes_off_among_discounts():
    lines = [line("1", 200), line("2", 400), line("3", 350)]
    assert discount_alone(lines, bundle(2, 500)) == 250


# --- COMBO_PRICE -------------------------------------------------------------------------


def test_a_combo_takes_one_unit_of_each_selection_at_its_price():
    lines = [
        line("1", 700, category="sandwich"),
        line("2", 250, category="drink"),
        line("3", 150, category="cookie"),
        line("4", 300, category="coffee"),
    ]
    # $11.00 of units for $9.00: $2.00 split 700 : 250 : 150.
    assert cents_by_line(apply_discounts(lines, [combo(900)])) == [
        ("C", "1", 127),
        ("C", "2", 46),
        ("C", "3", 27),
    ]


def test_combos_are_formed_while_every_selection_has_a_unit_left():
    lines = [
        line("1", 1400, quantity="2", unit_price_cents=700, category="sandwich"),
        line("2", 750, quantity="3", unit_price_cents=250, category="drink"),
        line("3", 150, category="cookie"),
    ]
    # One cookie: one combo, the second sandwich and the other drinks at their price.
    assert discount_total(apply_discounts(lines, [combo(900)])) == 200


def test_a_combo_missing_a_selection_or_costing_more_is_not_formed():
    missing = [line("1", 700, category="sandwich"), line("2", 250, category="drink")]
    assert apply_discounts(missing, [combo(900)]) == []
    cheap = [*missing, line("3", 150, category="cookie")]
    assert apply_discounts(cheap, [combo(1100)]) == []


def test_a_selection_named_twice_gives_two_different_units():
    lines = [
        line("1", 700, category="sandwich"),
        line("2", 300, sku="LATTE", category="drink"),
        line("3", 200, sku="MOCHA", category="drink"),
    ]
    # $12.00 for $10.00: $2.00 split 700 : 300 : 200.
    assert cents_by_line(apply_discounts(lines, [combo(1000, SANDWICH, DRINK, DRINK)])) == [
        ("C", "1", 117),
        ("C", "2", 50),
        ("C", "3", 33),
    ]


# --- the contract ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("terms", "reason"),
    [
        (
            {"kind": "BUNDLE_PRICE", "products": {"skus": ["A"]}, "bundle_units": 3},
            "needs bundle_price_cents",
        ),
        ({"kind": "BUNDLE_PRICE", "bundle_units": 3, "bundle_price_cents": 1000}, "needs products"),
        (
            {"kind": "BUNDLE_PRICE", "products": {"skus": ["A"]}, "bundle_units": 1,
             "bundle_price_cents": 1000},
            "greater than or equal to 2",
        ),
        (
            {"kind": "COMBO_PRICE", "combo_products": [{"skus": ["A"]}], "bundle_price_cents": 900},
            "combo_products of a COMBO_PRICE lists 2 to 10 selections, not 1",
        ),
        (
            {"kind": "COMBO_PRICE", "combo_products": [{"skus": ["A"]}, {"skus": ["B"]}],
             "bundle_price_cents": 900, "products": {"skus": ["A"]}},
            "does not use products",
        ),
        (
            {"kind": "AMOUNT_OFF_CART", "amount_off_cents": 100, "bundle_units": 2},
            "does not use bundle_units",
        ),
    ],
)  # fmt: skip
def test_bundle_and_combo_terms_are_refused_with_the_field_at_fault(terms, reason):
    with pytest.raises(ValidationError, match=reason):
        DiscountTerms.model_validate(terms)


def test_a_combo_outside_an_offer_names_its_products_by_its_selections():
    terms = DiscountTerms(
        kind=DiscountKind.COMBO_PRICE, combo_products=[SANDWICH, DRINK], bundle_price_cents=800
    )
    assert standalone_discount_problems(terms) == []


def test_a_combo_rewards_least_spend_is_judged_on_its_selections_lines_at_the_till():
    lunch = DiscountTerms(
        kind=DiscountKind.COMBO_PRICE,
        combo_products=[SANDWICH, DRINK],
        bundle_price_cents=800,
        spend_min_cents=1000,
    )
    reward = Held(
        member_id="m1", granted_reward_id="GR1", reward_id="LUNCH", status="ISSUED",
        expires_at=T0 + timedelta(days=1), discount=lunch,
    )  # fmt: skip
    lines = [
        TransactionLine(line_id=f"L{i}", sku=f"S{i}", category=category, quantity=Decimal(1),
                        unit_price_cents=cents, amount_cents=cents)
        for i, (category, cents) in enumerate([("sandwich", 700), ("drink", 250), ("food", 5000)])
    ]  # fmt: skip
    verdict = check("TOK", reward, member_id="m1", lines=lines, at=T0, gross=False)
    assert (verdict.applies, verdict.reason) == (False, "min_spend_not_met")
    assert verdict.detail is not None
    assert "950 cents of eligible spend" in verdict.detail
