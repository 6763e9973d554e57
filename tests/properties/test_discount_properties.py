"""Discounts over random baskets and random discounts: never more than a line or the cart,
never negative, the same answer twice, and a $-off split that adds up (DESIGN.md §5.9)."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from processors.contract.offer_definition import DiscountKind, DiscountTerms, ProductSelection
from processors.rules.arithmetic import split_pro_rata
from processors.rules.offers.discounts import (
    DiscountOffer,
    PricedLine,
    apply_discounts,
    discount_total,
)

CATEGORIES = ["coffee", "tea", "milk"]


@st.composite
def baskets(draw: st.DrawFn) -> list[PricedLine]:
    count = draw(st.integers(min_value=1, max_value=6))
    lines = []
    for n in range(count):
        quantity = draw(st.decimals(min_value=0, max_value=5, places=3))
        lines.append(
            PricedLine(
                line_id=str(n),
                sku=f"SKU{n}",
                gtin=None,
                category=draw(st.sampled_from(CATEGORIES)),
                subcategory=None,
                brand=None,
                quantity=quantity,
                unit_price_cents=draw(st.integers(min_value=0, max_value=5_000)),
                amount_cents=draw(st.integers(min_value=0, max_value=50_000)),
            )
        )
    return lines


@st.composite
def discounts(draw: st.DrawFn, n: int) -> DiscountOffer:
    kind = draw(st.sampled_from([k for k in DiscountKind if k is not DiscountKind.UNKNOWN]))
    products = ProductSelection(categories=draw(st.lists(st.sampled_from(CATEGORIES), min_size=1)))
    items = kind in (DiscountKind.AMOUNT_OFF_ITEMS, DiscountKind.PERCENT_OFF_ITEMS)
    fields: dict[str, object] = {}
    if kind in (DiscountKind.AMOUNT_OFF_ITEMS, DiscountKind.AMOUNT_OFF_CART):
        fields["amount_off_cents"] = draw(st.integers(min_value=1, max_value=60_000))
    if kind in (DiscountKind.PERCENT_OFF_ITEMS, DiscountKind.PERCENT_OFF_CART):
        fields["percent_off"] = draw(st.decimals(min_value="0.01", max_value=100, places=2))
        fields["discount_max_cents"] = draw(st.none() | st.integers(min_value=1, max_value=9_999))
    if kind is DiscountKind.FREE_ITEM:
        fields["free_units"] = draw(st.integers(min_value=1, max_value=5))
    if kind is DiscountKind.BUNDLE_PRICE:
        fields["bundle_units"] = draw(st.integers(min_value=2, max_value=4))
    if kind is DiscountKind.COMBO_PRICE:
        selection = st.builds(
            ProductSelection, categories=st.lists(st.sampled_from(CATEGORIES), min_size=1)
        )
        fields["combo_products"] = draw(st.lists(selection, min_size=2, max_size=3))
    if kind in (DiscountKind.BUNDLE_PRICE, DiscountKind.COMBO_PRICE):
        fields["bundle_price_cents"] = draw(st.integers(min_value=1, max_value=20_000))
    if kind in (DiscountKind.FREE_ITEM, DiscountKind.BUNDLE_PRICE) or (
        items and draw(st.booleans())
    ):
        fields["products"] = products
    line_ids = draw(st.none() | st.frozensets(st.sampled_from([str(i) for i in range(6)])))
    return DiscountOffer(
        offer_id=f"O{n}",
        terms=DiscountTerms(kind=kind, **fields),
        line_ids=line_ids,
        multiples=draw(st.integers(min_value=0, max_value=4)),
    )


@st.composite
def offers(draw: st.DrawFn) -> list[DiscountOffer]:
    count = draw(st.integers(min_value=0, max_value=5))
    return [draw(discounts(n)) for n in range(count)]


@given(baskets(), offers())
def test_discounts_are_positive_and_never_exceed_a_line_or_the_cart(lines, given_offers):
    result = apply_discounts(lines, given_offers)
    by_line = Counter[str]()
    for discount in result:
        assert discount.cents > 0
        by_line[discount.line_id] += discount.cents
    for line in lines:
        assert by_line[line.line_id] <= line.amount_cents
    assert discount_total(result) <= sum(line.amount_cents for line in lines)


@given(baskets(), offers())
def test_the_same_basket_and_discounts_give_the_same_discounts(lines, given_offers):
    assert apply_discounts(lines, given_offers) == apply_discounts(list(lines), list(given_offers))


@given(baskets(), offers())
def test_a_discount_s_lines_are_listed_once_in_line_order(lines, given_offers):
    result = apply_discounts(lines, given_offers)
    position = {line.line_id: i for i, line in enumerate(lines)}
    for discount in given_offers:
        mine = [position[d.line_id] for d in result if d.offer_id == discount.offer_id]
        assert mine == sorted(set(mine))


@given(
    baskets(),
    st.integers(min_value=1, max_value=60_000),
    st.integers(min_value=0, max_value=4),
    st.booleans(),
)
def test_a_dollars_off_split_adds_up_to_the_amount_or_the_eligible_remainder(
    lines, cents, multiples, cart
):
    kind = DiscountKind.AMOUNT_OFF_CART if cart else DiscountKind.AMOUNT_OFF_ITEMS
    products = None if cart else ProductSelection(categories=["coffee"])
    terms = DiscountTerms(kind=kind, amount_off_cents=cents, products=products)
    result = apply_discounts(lines, [DiscountOffer("O1", terms, None, multiples)])
    eligible = sum(line.amount_cents for line in lines if cart or line.category == "coffee")
    assert discount_total(result) == min(cents * multiples, eligible)


@given(baskets(), st.decimals(min_value="0.01", max_value=100, places=2), st.integers(1, 9_999))
def test_a_capped_percent_off_never_takes_more_than_its_cap(lines, percent, cap):
    terms = DiscountTerms(
        kind=DiscountKind.PERCENT_OFF_CART, percent_off=Decimal(percent), discount_max_cents=cap
    )
    result = apply_discounts(lines, [DiscountOffer("O1", terms, None)])
    assert discount_total(result) <= cap


@given(
    st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=8).filter(any),
    st.data(),
)
def test_a_split_adds_up_and_each_share_is_within_a_unit_of_its_exact_share(weights, data):
    total = data.draw(st.integers(min_value=0, max_value=sum(weights)))
    shares = split_pro_rata(total, weights)
    assert sum(shares) == total
    for share, weight in zip(shares, weights, strict=True):
        exact = Fraction(total * weight, sum(weights))
        assert abs(share - exact) < 1
        assert share <= weight
