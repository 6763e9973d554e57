"""A product selection compiled for matching basket lines: the one mechanism behind offers'
product selections (DESIGN.md §5.6) and the programme's exclusions from base earn
(§5.3, §5.22). Pure; owns only matching, never prices anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, TypedDict, TypeVar

from pydantic import BaseModel, Field

from processors.contract.offer_definition import ProductSelection


class ProductLine(Protocol):
    """What matching reads from a line: a `TransactionLine` or a priced cart line."""

    @property
    def sku(self) -> str: ...
    @property
    def gtin(self) -> str | None: ...
    @property
    def category(self) -> str | None: ...
    @property
    def subcategory(self) -> str | None: ...
    @property
    def brand(self) -> str | None: ...


Line = TypeVar("Line", bound=ProductLine)

PRODUCT_KEYS = ("sku", "gtin", "subcategory", "brand", "category")
"""The product hierarchy's keys, most specific first (the catalogue indexes by the first
include list a selection sets, in this order)."""


@dataclass(frozen=True)
class Selector:
    """A compiled `ProductSelection`: per key, the values included (empty: any) and excluded."""

    includes: tuple[tuple[str, frozenset[str]], ...]
    excludes: tuple[tuple[str, frozenset[str]], ...]

    @classmethod
    def of(cls, selection: ProductSelection) -> Selector:
        include = {
            "sku": selection.skus,
            "gtin": selection.gtins,
            "category": selection.categories,
            "subcategory": selection.subcategories,
            "brand": selection.brands,
        }
        exclude = {
            "sku": selection.excluded_skus,
            "gtin": selection.excluded_gtins,
            "category": selection.excluded_categories,
            "subcategory": selection.excluded_subcategories,
            "brand": selection.excluded_brands,
        }
        return cls(
            includes=tuple((k, frozenset(include[k])) for k in PRODUCT_KEYS if include[k]),
            excludes=tuple((k, frozenset(exclude[k])) for k in PRODUCT_KEYS if exclude[k]),
        )

    def selects(self, line: ProductLine) -> bool:
        """True when the line matches every include list and none of the exclude lists."""
        for key, values in self.includes:
            if getattr(line, key) not in values:
                return False
        return not any(getattr(line, key) in values for key, values in self.excludes)

    @property
    def index_key(self) -> tuple[str, frozenset[str]] | None:
        """One include list every selected line matches (the most specific), or None when the
        selection only excludes, so any line may match."""
        return self.includes[0] if self.includes else None


def _is_none(value: Any) -> bool:
    return value is None


class ProductHierarchy(BaseModel):
    """A remembered line's place in the product hierarchy above its SKU, so that a return
    matches it as its purchase did. Unknown parts are left out of the stored state."""

    gtin: str | None = Field(default=None, exclude_if=_is_none)
    category: str | None = Field(default=None, exclude_if=_is_none)
    subcategory: str | None = Field(default=None, exclude_if=_is_none)
    brand: str | None = Field(default=None, exclude_if=_is_none)


class Hierarchy(TypedDict):
    """`ProductHierarchy`'s fields, as keyword arguments."""

    gtin: str | None
    category: str | None
    subcategory: str | None
    brand: str | None


def hierarchy_of(line: ProductLine) -> Hierarchy:
    """A line's `ProductHierarchy` fields, to remember it with."""
    return {
        "gtin": line.gtin,
        "category": line.category,
        "subcategory": line.subcategory,
        "brand": line.brand,
    }
