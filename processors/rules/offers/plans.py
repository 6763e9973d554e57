"""What evaluating one cause for the member's offers passes around (DESIGN.md §5.6, 5.19):
the cause itself, a plan of what it would do for one offer, and the evaluation it adds up to
(events, awards and their reversals, discounts), with the record a completed use keeps for
returns. Values only: `progress` commits plans, `limits` sends the uses an offer's agent
must grant, and both build on these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from processors.contract.base import Event
from processors.contract.common import Source
from processors.contract.config import OfferPublished, ProgramConfigured
from processors.contract.internal import PromoCodeUseRequested
from processors.rules.offers.discounts import LineDiscount
from processors.rules.offers.rewards import Payout
from processors.rules.offers.state import PurchaseContribution, UseRecord


@dataclass(frozen=True)
class Award:
    """Points one completed use credits to the member's REGULAR account of `program_id`.

    A use granted by the offer's agent (ADR 14) is booked after its cause has gone: the award
    then carries the cause's channel, store, till and transaction number itself."""

    offer_id: str
    program_id: str
    points: int
    completed_event_id: str
    cause_event_id: str
    occurred_at: datetime
    transaction_id: str | None
    source: Source | None = None
    store_id: str | None = None
    till_id: str | None = None
    transaction_number: str | None = None

    def __init__(
        self,
        offer_id: str,
        program_id: str,
        points: int,
        completed_event_id: str,
        cause_event_id: str,
        occurred_at: datetime,
        transaction_id: str | None,
        source: Source | None = None,
        store_id: str | None = None,
        till_id: str | None = None,
        transaction_number: str | None = None,
    ) -> None:
        # Its own __init__, which mypyc compiles (ADR 41, addendum): faster than the dataclass's.
        object.__setattr__(self, "offer_id", offer_id)
        object.__setattr__(self, "program_id", program_id)
        object.__setattr__(self, "points", points)
        object.__setattr__(self, "completed_event_id", completed_event_id)
        object.__setattr__(self, "cause_event_id", cause_event_id)
        object.__setattr__(self, "occurred_at", occurred_at)
        object.__setattr__(self, "transaction_id", transaction_id)
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "store_id", store_id)
        object.__setattr__(self, "till_id", till_id)
        object.__setattr__(self, "transaction_number", transaction_number)


@dataclass(frozen=True)
class AwardReversal:
    """Points to debit because a return means a use's award no longer holds (points > 0);
    `awarded_at`: when the use was paid, which names the lot its points went into."""

    offer_id: str
    program_id: str
    points: int
    completed_event_id: str
    awarded_at: datetime


@dataclass
class Evaluation:
    """What one input did to the member's offers: events to emit, points to credit and to take
    back, and discounts (cents per line)."""

    events: list[Event] = field(default_factory=list)
    awards: list[Award] = field(default_factory=list)
    reversals: list[AwardReversal] = field(default_factory=list)
    discounts: list[LineDiscount] = field(default_factory=list)


@dataclass(frozen=True)
class Cause:
    """The input being evaluated: its event id, business time and transaction (if one); its
    channel, store, till and transaction number are kept for uses that wait for the offer's
    agent (ADR 14). `unlocks`: the offers the purchase's valid promo codes unlock, each with
    its code's use request (ADR 37): their uses wait for the promotion's agent."""

    event_id: str
    at: datetime
    transaction_id: str | None
    source: Source | None = None
    store_id: str | None = None
    till_id: str | None = None
    transaction_number: str | None = None
    unlocks: Mapping[str, PromoCodeUseRequested] = field(default_factory=dict, compare=False)

    @property
    def key(self) -> str:
        """What a contribution is filed under: the transaction (returns find it), or the event."""
        return self.transaction_id or self.event_id


@dataclass(eq=False)
class Plan:
    """What a cause would do for one offer, before stacking decides whether it applies."""

    offer: OfferPublished
    program: ProgramConfigured
    values: list[Decimal]  # this cause's value per behaviour
    sums: list[Decimal]  # progress per behaviour in the current use, this cause included
    payout: Payout
    points: int  # after caps
    base: Decimal
    tier_id: str | None
    lines: list[list[str]] = field(default_factory=list)  # line ids each behaviour counted
    covered: list[str] = field(default_factory=list)  # line ids a multiplier or discount covers
    discount_cents: int = 0

    def contribution(self, use: int) -> PurchaseContribution:
        lines = self.lines or [[] for _ in self.values]
        return PurchaseContribution(use=use, lines=lines, values=self.values, covered=self.covered)


def use_record(plan: Plan, cause: Cause, use: int, completed_event_id: str) -> UseRecord:
    """What a return needs to re-price use `use` of the plan's offer, completed by `cause`."""
    return UseRecord(
        number=use,
        at=cause.at,
        completed_event_id=completed_event_id,
        program_id=plan.offer.program_id,
        transaction_id=cause.transaction_id,
        progress=plan.sums,
        base=plan.base,
        tier_id=plan.tier_id,
        points_awarded=plan.points,
    )
