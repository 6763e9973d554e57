"""A bundle or combo price offer in the console's offer form: its discount is written in the
advanced box, checked by the CLI's validator with each problem at its field, and a published
one shown in the form and submitted again is the same offer (docs/adr/0038)."""

from __future__ import annotations

import pytest

from processors.contract.config import OfferPublished
from processors.contract.offer_definition import DiscountKind
from projections.console.offer_form import ADVANCED, check, form_of_definition, read_form
from tests.cart_given import AT
from tests.unit.test_console_offer_form import CONTENT, values

BUNDLE = """
behaviours:
  - {kind: QUANTITY, quantity_min: "3", products: {subcategories: [PASTA_SAUCE]}}
reward:
  kind: DISCOUNT
  discount: {kind: BUNDLE_PRICE, products: {subcategories: [PASTA_SAUCE]}, bundle_units: 3,
             bundle_price_cents: 1000}
"""
COMBO = """
behaviours:
  - {kind: QUANTITY, quantity_min: "1", products: {categories: [SANDWICH]}}
reward:
  kind: DISCOUNT
  discount:
    kind: COMBO_PRICE
    combo_products: [{categories: [SANDWICH]}, {categories: [DRINK]}, {categories: [COOKIE]}]
    bundle_price_cents: 900
"""


def submitted(advanced: str, **changes: str):
    cleared = {"reward.points": "", "behaviours[0].spend_min_cents": "", ADVANCED: advanced}
    return check(read_form(values(**cleared, **changes), {}), published_at=AT)


@pytest.mark.parametrize(
    ("advanced", "kind"),
    [(BUNDLE, DiscountKind.BUNDLE_PRICE), (COMBO, DiscountKind.COMBO_PRICE)],
    ids=["bundle", "combo"],
)
def test_a_bundle_or_combo_offer_is_checked_and_shown_again_unchanged(advanced, kind):
    form = submitted(advanced)
    assert form.errors == []
    assert form.checked is not None
    event = form.checked.events[0]
    assert isinstance(event, OfferPublished)
    assert event.reward.discount is not None
    assert event.reward.discount.kind is kind
    shown = form_of_definition(event.model_dump(mode="json"))
    assert kind.value in shown.values[ADVANCED]
    again = check(read_form(shown.values, {}), published_at=AT)
    assert again.errors == []
    assert again.checked is not None
    assert again.checked.events[0].model_dump(exclude=CONTENT) == event.model_dump(exclude=CONTENT)


@pytest.mark.parametrize(
    ("advanced", "path", "reason"),
    [
        (
            BUNDLE.replace("bundle_units: 3", "bundle_units: 1"),
            "reward.discount.bundle_units",
            "greater than or equal to 2",
        ),
        (
            COMBO.replace(", {categories: [DRINK]}, {categories: [COOKIE]}", ""),
            "reward.discount.combo_products",
            "combo_products of a COMBO_PRICE lists 2 to 10 selections, not 1",
        ),
        (
            BUNDLE.replace("bundle_price_cents: 1000", "free_units: 1"),
            "reward.discount",
            "needs bundle_price_cents",
        ),
    ],
    ids=["one-unit-bundle", "one-selection-combo", "no-price"],
)
def test_a_bundle_or_combo_the_contract_refuses_is_refused_at_its_field(advanced, path, reason):
    form = submitted(advanced)
    assert any(p.path == path and reason in p.reason for p in form.errors), form.errors


def test_a_bundle_is_not_paid_for_every_multiple():
    form = submitted(BUNDLE, **{"reward.payout": "FOR_EVERY"})
    assert any("FOR_EVERY pays" in problem.reason for problem in form.errors), form.errors
