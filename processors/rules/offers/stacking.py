"""Which qualifying offers apply together (DESIGN.md §5.8): offers stack by default; of the
qualifying offers in one unstackable group only the most valuable applies, ties to the better
rank (1 is best), then the smaller offer_id. An offer that loses consumes no use.

Value is compared in money, so a group may mix points and discount offers: a discount is worth
its cents, a point what it buys in its programme's points redemption (cents_per_block /
points_per_block), or one cent in a programme without one (docs/adr/0010-offer-engine.md).
Within a group of points offers of one programme this orders exactly as the points do.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from processors.contract.config import ProgramConfigured


@dataclass(frozen=True)
class Contender:
    """A qualifying offer and what applying it is worth to the member."""

    offer_id: str
    rank: int
    group: str | None
    value_cents: Decimal

    def __init__(self, offer_id: str, rank: int, group: str | None, value_cents: Decimal) -> None:
        # Its own __init__, which mypyc compiles (ADR 41, addendum): faster than the dataclass's.
        object.__setattr__(self, "offer_id", offer_id)
        object.__setattr__(self, "rank", rank)
        object.__setattr__(self, "group", group)
        object.__setattr__(self, "value_cents", value_cents)


def point_value_cents(program: ProgramConfigured | None) -> Decimal:
    """What one point of the programme buys, in cents (one cent when it sells no discount)."""
    rule = program.points_redemption if program is not None else None
    if rule is None:
        return Decimal(1)
    return Decimal(rule.cents_per_block) / Decimal(rule.points_per_block)


def value_cents(points: int, discount_cents: int, program: ProgramConfigured | None) -> Decimal:
    """An award's worth in money: its points at the programme's redemption rate, plus cents."""
    return points * point_value_cents(program) + discount_cents


def winners(contenders: Iterable[Contender]) -> set[str]:
    """The offer_ids that apply: every ungrouped offer, and the best offer of each group."""
    applying: set[str] = set()
    best: dict[str, Contender] = {}
    for contender in contenders:
        if contender.group is None:
            applying.add(contender.offer_id)
            continue
        held = best.get(contender.group)
        if held is None or _order(contender) < _order(held):
            best[contender.group] = contender
    return applying | {c.offer_id for c in best.values()}


def _order(contender: Contender) -> tuple[Decimal, int, str]:
    return (-contender.value_cents, contender.rank, contender.offer_id)
