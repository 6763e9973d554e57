"""One purchase's lines as every candidate offer of that purchase reads them: matched once per
product selection and exclusion set, their spend summed once per question
(docs/adr/0031-hot-path-mechanics.md).

A purchase meets tens of candidate offers, and most of them ask the same questions of its
lines (every whole-basket offer selects every line; offers on one category share a
selection), so each answer is kept for the purchase's duration. The answers come from
`products.eligible` and `products.covered`, the one home of matching: this module only
remembers them. A `Basket` never outlives the evaluation that made it, so a new
configuration always meets a new basket.

`most` bounds what any behaviour on a selection can count in the purchase, so that a
candidate whose thresholds are out of reach is passed over before it is judged. Which lines a
selection picks depends on the products alone, not on their prices: the purchase's lines as
priced before and after this engine's discounts are two baskets (`repriced`) sharing one
match per selection.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from processors.contract.offer_definition import BehaviourKind
from processors.rules.offers.discounts import PricedLine
from processors.rules.offers.products import Selector, covered, eligible

Selectors = tuple[Selector | None, ...]


class Basket:
    """The priced lines of one purchase, with the matches and sums asked of them so far.

    The lists it answers are shared between the callers asking the same question: read them,
    never change them."""

    def __init__(
        self,
        lines: Sequence[PricedLine],
        matched: dict[tuple[Selector | None, frozenset[str]], list[int]] | None = None,
    ) -> None:
        self.lines = lines
        # The positions of the lines each (selection, exclusions) picks, shared by the
        # baskets of one purchase (`repriced`).
        self._matched = {} if matched is None else matched
        self._eligible: dict[tuple[Selector | None, frozenset[str]], list[PricedLine]] = {}
        self._covered: dict[tuple[Selectors, frozenset[str]], list[PricedLine]] = {}
        self._spend: dict[tuple[Selectors | None, frozenset[str], frozenset[str]], int] = {}
        self._most: dict[Selector | None, tuple[int, Decimal]] = {}

    def repriced(self, lines: Sequence[PricedLine]) -> Basket:
        """A basket of the same lines at other prices (`lines`: these lines in this order,
        only their amounts changed), sharing this one's matches."""
        assert len(lines) == len(self.lines), "the same lines, repriced"
        return Basket(lines, self._matched)

    def most(self, kind: BehaviourKind, selector: Selector | None) -> int | Decimal:
        """The most a purchase behaviour of `kind` on `selector` can count in these lines: the
        spend in cents or the quantity of the lines it selects, whatever SKUs an offer
        excludes (they only take lines away; amounts and quantities are never negative), and
        nothing for other kinds. On the lines as priced before this engine's discounts it
        bounds the net lines too (a discount only lowers an amount)."""
        if kind is not BehaviourKind.SPEND and kind is not BehaviourKind.QUANTITY:
            return 0
        found = self._most.get(selector)
        if found is None:
            lines = self.eligible(selector, frozenset())
            found = self._most[selector] = (
                sum(line.amount_cents for line in lines),
                sum((line.quantity for line in lines), Decimal(0)),
            )
        return found[0] if kind is BehaviourKind.SPEND else found[1]

    def eligible(
        self, selector: Selector | None, excluded_skus: frozenset[str]
    ) -> list[PricedLine]:
        """`products.eligible` of these lines."""
        key = (selector, excluded_skus)
        found = self._eligible.get(key)
        if found is None:
            positions = self._matched.get(key)
            if positions is None:
                found = eligible(self.lines, selector, excluded_skus)
                self._matched[key] = _positions(self.lines, found)
            else:
                found = [self.lines[i] for i in positions]
            self._eligible[key] = found
        return found

    def covered(self, selectors: Selectors, excluded_skus: frozenset[str]) -> list[PricedLine]:
        """`products.covered` of these lines. With at most one distinct product selection
        that is the eligible lines of that selection (or of none), already asked for."""
        key = (selectors, excluded_skus)
        found = self._covered.get(key)
        if found is None:
            selecting = {s for s in selectors if s is not None}
            if len(selecting) <= 1:
                found = self.eligible(next(iter(selecting), None), excluded_skus)
            else:
                found = covered(self.lines, selectors, excluded_skus)
            self._covered[key] = found
        return found

    def spend_cents(
        self,
        base_excluded: frozenset[str],
        covered_by: Selectors | None = None,
        excluded_skus: frozenset[str] = frozenset(),
    ) -> int:
        """The amount in cents of the lines whose SKU is not in `base_excluded`: all of them,
        or (`covered_by`) those `covered(covered_by, excluded_skus)` answers."""
        key = (covered_by, excluded_skus, base_excluded)
        found = self._spend.get(key)
        if found is None:
            lines = self.lines if covered_by is None else self.covered(covered_by, excluded_skus)
            found = self._spend[key] = sum(
                line.amount_cents for line in lines if line.sku not in base_excluded
            )
        return found


def _positions(lines: Sequence[PricedLine], chosen: Sequence[PricedLine]) -> list[int]:
    """Where the lines of `chosen`, a subsequence of `lines` (the very objects), stand in it."""
    positions: list[int] = []
    for i, line in enumerate(lines):
        if len(positions) < len(chosen) and line is chosen[len(positions)]:
            positions.append(i)
    return positions
