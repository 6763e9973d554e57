"""Cart evaluation shows a bundle price like any item discount: on the bundled lines, each
with its share of what the bundle saves (docs/adr/0038-bundle-and-combo-prices.md)."""

from __future__ import annotations

from processors.rules.member import Config
from projections.api.routes_carts import FixedConfig
from tests.cart_given import cart, discount, line, offer, program, single
from tests.unit.test_cart_api import client_for, evaluate


def given(*bundle_offers) -> FixedConfig:
    built = Config()
    for event in (program(), *bundle_offers):
        built.apply(event)
    return FixedConfig(built)


SNACKS_2_FOR_5 = offer(
    "SNACKS_2_FOR_5",
    behaviours=[single("QUANTITY", quantity_min="2", products={"categories": ["SNACKS"]})],
    reward=discount(
        "BUNDLE_PRICE",
        products={"categories": ["SNACKS"]},
        bundle_units=2,
        bundle_price_cents=500,
    ),
)


def test_a_bundle_price_is_shown_on_its_lines_and_in_the_offers_applied():
    # chips 2 × 3.50 and salsa 1 × 4.00: the dearest two (salsa, a chip) for 5.00 save 2.50,
    # split 400 : 350 = 133 + 117; the second chip and the grocery pay their price.
    lines = [
        line("1", "CHIPS", "SNACKS", 2, 350),
        line("2", "GROCERY", "FOOD", 1, 4800),
        line("3", "SALSA", "SNACKS", 1, 400),
    ]
    with client_for(given(SNACKS_2_FOR_5)) as client:
        response = evaluate(client, cart(lines=lines))
    assert response.status_code == 200
    body = response.json()
    assert [(li["line_id"], li["item_discount_cents"], li["net_amount_cents"]) for li in
            body["lines"]] == [("1", 117, 583), ("2", 0, 4800), ("3", 133, 267)]  # fmt: skip
    assert body["lines"][2]["discounts"] == [
        {"offer_id": "SNACKS_2_FOR_5", "cents": 133, "cart_level": False}
    ]
    assert [body[k] for k in ("total_before_cents", "total_discount_cents")] == [5900, 250]
    assert [(o["offer_id"], o["discount_cents"]) for o in body["offers_applied"]] == [
        ("SNACKS_2_FOR_5", 250)
    ]


def test_units_that_make_no_whole_bundle_leave_the_cart_at_its_price():
    lines = [line("1", "CHIPS", "SNACKS", 1, 350), line("2", "GROCERY", "FOOD", 1, 4800)]
    with client_for(given(SNACKS_2_FOR_5)) as client:
        body = evaluate(client, cart(lines=lines)).json()
    assert body["total_discount_cents"] == 0
    assert body["offers_applied"] == []
