"""Which basket lines an offer's behaviour counts (DESIGN.md §5.6, §5.22): a `ProductSelection`
matched against a line, and an offer's eligible lines per behaviour.

Owns only matching; it never prices anything. A selection is compiled once into sets
(`processors.rules.selection.Selector`, shared with the programme's exclusions), because an
uploaded list may hold thousands of SKUs.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

from processors.contract.config import OfferPublished, ProgramConfigured
from processors.contract.offer_definition import ProductSelection
from processors.rules.ledger import policy
from processors.rules.selection import PRODUCT_KEYS, Line, ProductLine, Selector

__all__ = [
    "PRODUCT_KEYS",
    "Line",
    "ProductLine",
    "Selector",
    "compile_behaviours",
    "covered",
    "eligible",
    "globally_excluded",
    "matches",
]


def matches(selection: ProductSelection, line: ProductLine) -> bool:
    """True when `line` is selected by `selection` (compiles it: prefer `Selector` in loops)."""
    return Selector.of(selection).selects(line)


def compile_behaviours(offer: OfferPublished) -> tuple[Selector | None, ...]:
    """Each behaviour's compiled selection, None where the behaviour selects every line."""
    return tuple(
        Selector.of(b.products) if b.products is not None else None for b in offer.behaviours
    )


def globally_excluded(
    offer: OfferPublished,
    program: ProgramConfigured,
    province: str | None,
    lines: Iterable[ProductLine],
) -> frozenset[str]:
    """SKUs of `lines` the offer leaves out in this province: the programme's global
    exclusions when the offer switches them on, else none."""
    if not offer.apply_global_exclusions:
        return frozenset()
    return policy.excluded_skus(program, province, lines)


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
