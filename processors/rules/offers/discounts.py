"""Discounts on a basket: how many cents each discount takes off which line (DESIGN.md §5.9).

Item discounts (AMOUNT_OFF_ITEMS, PERCENT_OFF_ITEMS, FREE_ITEM, BUNDLE_PRICE, COMBO_PRICE)
apply first, in the order given, each on what remains of its lines after the ones before it;
then cart discounts (AMOUNT_OFF_CART, PERCENT_OFF_CART) on what remains of the cart. Money is
whole cents: % off is rounded half-up per line, $ off is split pro-rata by largest remainder so
the cents add up. A discount never takes a line below zero, so it never exceeds the line or
the cart. Bundles and combos (a group of units at a fixed price) are formed as
docs/adr/0038-bundle-and-combo-prices.md decides.

This module never decides whether an offer qualifies, which offer of an unstackable group
wins, or how many multiples a use pays: the caller passes the discounts that apply.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from math import lcm
from typing import Final

from processors.contract.offer_definition import (
    ITEM_DISCOUNTS,
    DiscountKind,
    DiscountTerms,
    ProductSelection,
)
from processors.contract.transactions import TransactionLine
from processors.rules.arithmetic import round_half_up, split_pro_rata
from processors.rules.offers.products import Selector, matches

CART_DISCOUNTS: Final = frozenset({DiscountKind.AMOUNT_OFF_CART, DiscountKind.PERCENT_OFF_CART})
"""Discounts on the whole cart; they apply after every item discount."""


@dataclass(frozen=True)
class PricedLine:
    """A basket line as priced before this engine's discounts."""

    line_id: str
    sku: str
    gtin: str | None
    category: str | None
    subcategory: str | None
    brand: str | None
    quantity: Decimal
    unit_price_cents: int
    amount_cents: int

    def __init__(
        self,
        line_id: str,
        sku: str,
        gtin: str | None,
        category: str | None,
        subcategory: str | None,
        brand: str | None,
        quantity: Decimal,
        unit_price_cents: int,
        amount_cents: int,
    ) -> None:
        # Its own __init__, which mypyc compiles (ADR 41, addendum): faster than the dataclass's.
        object.__setattr__(self, "line_id", line_id)
        object.__setattr__(self, "sku", sku)
        object.__setattr__(self, "gtin", gtin)
        object.__setattr__(self, "category", category)
        object.__setattr__(self, "subcategory", subcategory)
        object.__setattr__(self, "brand", brand)
        object.__setattr__(self, "quantity", quantity)
        object.__setattr__(self, "unit_price_cents", unit_price_cents)
        object.__setattr__(self, "amount_cents", amount_cents)

    @classmethod
    def of(cls, line: TransactionLine, *, gross: bool = False) -> PricedLine:
        """The line as the engine prices it. `gross`: a completed transaction whose till already
        took the discount, so the line is priced at its amount before that discount."""
        return cls(
            line_id=line.line_id,
            sku=line.sku,
            gtin=line.gtin,
            category=line.category,
            subcategory=line.subcategory,
            brand=line.brand,
            quantity=line.quantity,
            unit_price_cents=line.unit_price_cents,
            amount_cents=line.amount_cents + (line.discount_cents if gross else 0),
        )


@dataclass(frozen=True)
class DiscountOffer:
    """One discount to apply, on behalf of an offer (or a reward or promo code).

    `line_ids` narrows the lines the discount may touch: for an item discount without its own
    `products`, the lines the offer's behaviours selected. The discount applies to the lines
    that are in `line_ids` (when given) and match `terms.products` (or one of a combo's
    `combo_products`, when given); a cart discount without `line_ids` applies to the whole
    cart, an item discount with neither to nothing. `multiples` (For Every) multiplies
    `amount_off_cents` and `free_units`; a percentage is not multiplied, and a bundle or combo
    price forms every bundle its lines allow.
    """

    offer_id: str
    terms: DiscountTerms
    line_ids: frozenset[str] | None
    multiples: int = 1

    def __init__(
        self,
        offer_id: str,
        terms: DiscountTerms,
        line_ids: frozenset[str] | None,
        multiples: int = 1,
    ) -> None:
        # Its own __init__, which mypyc compiles (ADR 41, addendum): faster than the dataclass's.
        object.__setattr__(self, "offer_id", offer_id)
        object.__setattr__(self, "terms", terms)
        object.__setattr__(self, "line_ids", line_ids)
        object.__setattr__(self, "multiples", multiples)


@dataclass(frozen=True)
class LineDiscount:
    """Cents one discount takes off one line; `cart_level` for AMOUNT_OFF_CART and
    PERCENT_OFF_CART, spread over the cart's lines."""

    offer_id: str
    line_id: str
    cents: int
    cart_level: bool

    def __init__(self, offer_id: str, line_id: str, cents: int, cart_level: bool) -> None:
        # Its own __init__, which mypyc compiles (ADR 41, addendum): faster than the dataclass's.
        object.__setattr__(self, "offer_id", offer_id)
        object.__setattr__(self, "line_id", line_id)
        object.__setattr__(self, "cents", cents)
        object.__setattr__(self, "cart_level", cart_level)


def selects(selection: ProductSelection, line: PricedLine) -> bool:
    """Whether `selection` selects `line`: the one matching rule of `products` (every non-empty
    include list, no exclude list)."""
    return matches(selection, line)


def apply_discounts(
    lines: Sequence[PricedLine], offers: Sequence[DiscountOffer]
) -> list[LineDiscount]:
    """The cents each discount takes off each line, item discounts first, then cart ones.

    1. Item discounts, in the order given, each on what remains of its lines.
    2. Cart discounts, in the order given, each on what remains of the cart.

    Within a discount, lines with nothing left get nothing; the result lists each discount's
    lines in line order and leaves out zero-cent discounts. A discount of an unknown kind, or
    whose lines remain below its `spend_min_cents`, takes nothing off.
    """
    if not offers:
        return []  # most candidate offers of a purchase discount nothing: no pass over its lines
    remaining = [max(line.amount_cents, 0) for line in lines]
    item_offers = [offer for offer in offers if offer.terms.kind in ITEM_DISCOUNTS]
    cart_offers = [offer for offer in offers if offer.terms.kind in CART_DISCOUNTS]
    discounts: list[LineDiscount] = []
    for offer in (*item_offers, *cart_offers):
        applies_to, cents = _takes(offer, lines, remaining)
        for i, line_cents in zip(applies_to, cents, strict=True):
            assert 0 <= line_cents <= remaining[i], "a discount never exceeds its line"
            if line_cents:
                remaining[i] -= line_cents
                cart_level = offer.terms.kind in CART_DISCOUNTS
                discounts.append(
                    LineDiscount(offer.offer_id, lines[i].line_id, line_cents, cart_level)
                )
    return discounts


def spread_apart(
    lines: Sequence[PricedLine], offers: Sequence[DiscountOffer], already: Mapping[str, int]
) -> dict[str, int]:
    """The cents `offers` take off each line (line id → cents) when each is priced alone on
    `lines`, as the till is told of promo codes and rewards (ADR 23, ADR 20), and spread as the
    till applies them on what `already` (this engine's discounts) leaves of each line: item
    discounts first, on their own lines, then each cart discount pro rata over what remains of
    the lines it applies to. A line never goes below nothing, so none of what the till is told
    is lost to a line an item discount emptied (a free item beside $3 off the cart); only
    lines that hold less than a discount clip it."""
    index = {line.line_id: i for i, line in enumerate(lines)}
    remaining = [max(line.amount_cents - already.get(line.line_id, 0), 0) for line in lines]
    off: dict[str, int] = {}
    items = [offer for offer in offers if offer.terms.kind not in CART_DISCOUNTS]
    carts = [offer for offer in offers if offer.terms.kind in CART_DISCOUNTS]
    for offer in (*items, *carts):
        alone = apply_discounts(lines, [offer])
        if offer.terms.kind in CART_DISCOUNTS:
            where = [i for i in _applies_to(offer, lines) if remaining[i] > 0]
            total = min(discount_total(alone), sum(remaining[i] for i in where))
            shares = split_pro_rata(total, [remaining[i] for i in where])
        else:
            where = [index[discount.line_id] for discount in alone]
            shares = [min(d.cents, remaining[i]) for d, i in zip(alone, where, strict=True)]
        for i, cents in zip(where, shares, strict=True):
            remaining[i] -= cents
            off[lines[i].line_id] = off.get(lines[i].line_id, 0) + cents
    return off


def basket_cents(lines: Sequence[TransactionLine]) -> int:
    """A basket before any discount: what its promo codes and rewards, each priced alone,
    take together at most (`checkout.judge` spends it on the codes, `till.check` what they
    leave on the rewards, in the basket's order)."""
    return sum(max(line.amount_cents + line.discount_cents, 0) for line in lines)


def discount_alone(lines: Sequence[PricedLine], offer: DiscountOffer) -> int:
    """The cents `offer` takes off `lines` when it is the only discount: what
    `discount_total(apply_discounts(lines, [offer]))` answers, without a `LineDiscount` a line
    (stacking values every discounting candidate of a purchase this way)."""
    _, cents = _takes(offer, lines, [max(line.amount_cents, 0) for line in lines])
    return sum(cents)


def discount_on(
    lines: Sequence[PricedLine], offer: DiscountOffer, remaining: Sequence[int]
) -> list[int]:
    """The cents `offer` takes off each line (by index) when `remaining` is what the discounts
    before it left of each: the rule of `discount_alone` on what is left, its least spend not
    judged again (its caller judged it on the basket). Two rewards of one free muffin free
    one muffin each, not the same one twice."""
    applies_to = [i for i in _applies_to(offer, lines) if remaining[i] > 0]
    taken = _cents_off(offer, [lines[i] for i in applies_to], [remaining[i] for i in applies_to])
    cents = [0] * len(lines)
    for i, off in zip(applies_to, taken, strict=True):
        cents[i] = off
    return cents


def spend_on(lines: Sequence[PricedLine], offer: DiscountOffer) -> int:
    """The amount of the lines `offer` applies to (a combo's: those any of its selections
    selects), on which its `spend_min_cents` is judged when it is the only discount."""
    return sum(max(lines[i].amount_cents, 0) for i in _applies_to(offer, lines))


def _takes(
    offer: DiscountOffer, lines: Sequence[PricedLine], remaining: Sequence[int]
) -> tuple[list[int], list[int]]:
    """The indexes of the lines `offer` applies to that have something `remaining`, and the
    cents it takes off each (none when they remain below its `spend_min_cents`)."""
    applies_to = [i for i in _applies_to(offer, lines) if remaining[i] > 0]
    amounts = [remaining[i] for i in applies_to]
    spend_min_cents = offer.terms.spend_min_cents
    if spend_min_cents is not None and sum(amounts) < spend_min_cents:
        return [], []
    return applies_to, _cents_off(offer, [lines[i] for i in applies_to], amounts)


def discount_total(discounts: Iterable[LineDiscount], offer_id: str | None = None) -> int:
    """The cents the discounts take off in all, or those of one offer."""
    return sum(d.cents for d in discounts if offer_id is None or d.offer_id == offer_id)


def _applies_to(offer: DiscountOffer, lines: Sequence[PricedLine]) -> list[int]:
    terms = offer.terms
    if terms.kind in ITEM_DISCOUNTS and not terms.names_its_items and offer.line_ids is None:
        return []  # nothing names its items: never generous
    if terms.combo_products:
        selectors = [Selector.of(selection) for selection in terms.combo_products]
        return [
            i
            for i, line in enumerate(lines)
            if (offer.line_ids is None or line.line_id in offer.line_ids)
            and any(selector.selects(line) for selector in selectors)
        ]
    selector = Selector.of(terms.products) if terms.products is not None else None
    return [
        i
        for i, line in enumerate(lines)
        if (offer.line_ids is None or line.line_id in offer.line_ids)
        and (selector is None or selector.selects(line))
    ]


def _cents_off(offer: DiscountOffer, lines: Sequence[PricedLine], amounts: list[int]) -> list[int]:
    """Cents off each of `lines`, whose remaining amounts are `amounts` (all positive)."""
    terms = offer.terms
    multiples = max(offer.multiples, 0)
    if terms.kind in (DiscountKind.AMOUNT_OFF_ITEMS, DiscountKind.AMOUNT_OFF_CART):
        amount_off = (terms.amount_off_cents or 0) * multiples
        return split_pro_rata(min(amount_off, sum(amounts)), amounts)
    if terms.kind in (DiscountKind.PERCENT_OFF_ITEMS, DiscountKind.PERCENT_OFF_CART):
        return _percent_off(terms, amounts)
    if terms.kind is DiscountKind.FREE_ITEM:
        return _free_units(lines, amounts, (terms.free_units or 0) * multiples)
    if terms.kind is DiscountKind.BUNDLE_PRICE and terms.products is not None:
        slots = [Selector.of(terms.products)] * (terms.bundle_units or 0)
        return _bundle_prices(slots, terms.bundle_price_cents or 0, lines, amounts)
    if terms.kind is DiscountKind.COMBO_PRICE:
        slots = [Selector.of(selection) for selection in terms.combo_products]
        return _bundle_prices(slots, terms.bundle_price_cents or 0, lines, amounts)
    return [0] * len(amounts)


def _percent_off(terms: DiscountTerms, amounts: list[int]) -> list[int]:
    """Per line, half-up to the cent; a binding cap is spread over the lines in proportion to
    what each would have had, so capping never raises a line."""
    # Half-up of amount × percent / 100 in integers (percent = n / d exactly, both positive):
    # floor((2 × amount × n + 100 × d) / (200 × d)), what round_half_up gives, at a tenth of
    # the cost on a hot path (a percentage is judged once per line per candidate offer).
    n, d = (terms.percent_off or Decimal(0)).as_integer_ratio()
    per_line = [min(amount, (2 * amount * n + 100 * d) // (200 * d)) for amount in amounts]
    cap = terms.discount_max_cents
    if cap is not None and sum(per_line) > cap:
        return split_pro_rata(cap, per_line)
    return per_line


def _free_units(lines: Sequence[PricedLine], amounts: list[int], units: int) -> list[int]:
    """The cheapest `units` whole units free, by shelf price, ties to the earlier line.

    A unit is worth its line's remaining amount divided by the line's quantity; k units of a
    line of quantity q are worth remaining × k / q, half-up, so a whole line is exactly its
    remaining amount. Only whole units are given free: a line of 2.5 kg offers 2 units of
    1 kg, a line under one unit offers none.
    """
    cents = [0] * len(lines)
    by_price = sorted(range(len(lines)), key=lambda i: (lines[i].unit_price_cents, i))
    for i in by_price:
        if units <= 0:
            break
        taken = min(int(lines[i].quantity), units)
        if taken <= 0:
            continue
        units -= taken
        value = round_half_up(amounts[i] * Decimal(taken) / lines[i].quantity)
        cents[i] = min(value, amounts[i])
    return cents


def _bundle_prices(
    slots: Sequence[Selector], price_cents: int, lines: Sequence[PricedLine], amounts: list[int]
) -> list[int]:
    """Cents off each line when its units are sold in bundles of one unit per slot at
    `price_cents` a bundle (BUNDLE_PRICE: N slots of one selection; COMBO_PRICE: one slot per
    selection).

    Bundle after bundle, each slot takes the dearest unit it selects that is still free, by
    shelf price, ties to the earlier line (only whole units, as for free items). A bundle is
    formed only while its units are worth more than its price: units are taken dearest first,
    so the first bundle not worth forming ends the bundling. A unit is worth its line's
    remaining amount over its quantity; the k bundled units of a line are worth remaining ×
    k / q, half-up, and what all bundles save (their units' worth less their prices) is split
    over those amounts pro rata, so no line gives more than its bundled units.
    """
    if not slots:
        return [0] * len(lines)
    left = [int(line.quantity) for line in lines]
    dearest_first = sorted(range(len(lines)), key=lambda i: (-lines[i].unit_price_cents, i))
    matched: dict[Selector, list[int]] = {}  # a bundle's N slots share one selection
    for slot in slots:
        if slot not in matched:
            matched[slot] = [i for i in dearest_first if slot.selects(lines[i])]
    candidates = [matched[slot] for slot in slots]
    # A unit's worth, amount / quantity, in integers over one common denominator: exact, and
    # cheaper than fractions on the hot path.
    ratios = [line.quantity.as_integer_ratio() for line in lines]
    common = lcm(*(n for n, _ in ratios if n > 0))
    worth = [
        amount * d * (common // n) if n > 0 else 0
        for (n, d), amount in zip(ratios, amounts, strict=True)
    ]
    bundled = [0] * len(lines)
    bundles = 0
    while True:
        picked = []
        for slot_lines in candidates:
            found = next((i for i in slot_lines if left[i] > 0), None)
            if found is None:
                break
            left[found] -= 1
            picked.append(found)
        if len(picked) < len(slots) or sum(worth[i] for i in picked) <= price_cents * common:
            break
        for i in picked:
            bundled[i] += 1
        bundles += 1
    values = [
        min(amounts[i], round_half_up(amounts[i] * Decimal(k) / lines[i].quantity)) if k else 0
        for i, k in enumerate(bundled)
    ]
    saved = max(sum(values) - bundles * price_cents, 0)
    return split_pro_rata(saved, values)
