"""Exclusions from base earn by the product hierarchy (DESIGN.md §5.3, §5.22): the same
product selection offers use, so a SKU nobody listed is excluded with its category."""

import pytest
from pydantic import ValidationError

from processors.contract.config import GlobalExclusion
from processors.contract.offer_definition import ProductSelection
from processors.contract.transactions import TransactionLine
from processors.rules.ledger import policy
from tests.rules.given import program

QUEBEC = GlobalExclusion(
    province="QC",
    skus=["WINE_RED"],
    products=[ProductSelection(categories=["TOBACCO"]), ProductSelection(brands=["LOTO"])],
)


def item(sku: str, cents: int, **hierarchy: str) -> TransactionLine:
    return TransactionLine(
        line_id=sku, sku=sku, quantity=1, unit_price_cents=cents, amount_cents=cents, **hierarchy
    )


def test_a_new_sku_of_an_excluded_category_or_brand_earns_nothing():
    given = program(global_exclusions=[QUEBEC])
    basket = [
        item("CIG_NEW", 1500, category="TOBACCO"),  # never listed: its category is excluded
        item("SCRATCH", 500, category="LOTTERY", brand="LOTO"),  # its brand is
        item("WINE_RED", 2000, category="WINE"),  # listed by SKU
        item("CHIPS", 400, category="SNACKS"),
    ]
    assert policy.excluded_skus(given, "QC", basket) == {"CIG_NEW", "SCRATCH", "WINE_RED"}
    assert policy.eligible_spend_cents(given, basket, "QC") == 400
    assert policy.eligible_spend_cents(given, basket, "ON") == 4400


def test_a_global_exclusion_names_skus_or_products():
    with pytest.raises(ValidationError, match="names skus or products"):
        GlobalExclusion(province="QC")
