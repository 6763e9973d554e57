"""Which basket lines an offer's behaviour counts (DESIGN.md §5.6, §5.22): a `ProductSelection`
matched against a line, and an offer's eligible lines per behaviour.

Owns only matching; it never prices anything. A selection is compiled once into sets
(`Selector`), because an uploaded list may hold thousands of SKUs.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from processors.contract.config import OfferPublished, ProgramConfigured
from processors.contract.offer_definition import ProductSelection
from processors.rules.ledger import policy


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


def matches(selection: ProductSelection, line: ProductLine) -> bool:
    """True when `line` is selected by `selection` (compiles it: prefer `Selector` in loops)."""
    return Selector.of(selection).selects(line)


def compile_behaviours(offer: OfferPublished) -> tuple[Selector | None, ...]:
    """Each behaviour's compiled selection, None where the behaviour selects every line."""
    return tuple(
        Selector.of(b.products) if b.products is not None else None for b in offer.behaviours
    )


def globally_excluded(
    offer: OfferPublished, program: ProgramConfigured, province: str | None
) -> frozenset[str]:
    """SKUs the offer leaves out in this province: the programme's global exclusions when the
    offer switches them on, else none."""
    if not offer.apply_global_exclusions:
        return frozenset()
    return policy.excluded_skus(program, province)


def eligible(
    lines: Iterable[Line], selector: Selector | None, excluded_skus: Collection[str]
) -> list[Line]:
    """The lines a behaviour counts: selected by its products, minus the excluded SKUs."""
    return [
        line
        for line in lines
        if line.sku not in excluded_skus and (selector is None or selector.selects(line))
    ]


def covered(
    lines: Sequence[Line], selectors: Sequence[Selector | None], excluded_skus: Collection[str]
) -> list[Line]:
    """The lines a multiplier or an item discount covers: those any product-selecting
    behaviour counts, or, when no behaviour selects products, the whole eligible basket."""
    selecting = [s for s in selectors if s is not None]
    if not selecting:
        return [line for line in lines if line.sku not in excluded_skus]
    return [
        line
        for line in lines
        if line.sku not in excluded_skus and any(s.selects(line) for s in selecting)
    ]
