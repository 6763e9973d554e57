"""What the challenge rules keep about one member: per challenge the progress towards the
next completion and the completions a return may still reach, and per recent purchase what it
counted towards each challenge. Serialisable (pydantic) for the processor's tables.

Bounded like the offers' state: purchases and completions are forgotten after the returns
window (`policy.returns_horizon`), judged on the newest business time seen, never on a clock;
progress keeps one dated contribution per cause of the completion in progress, pruned by the
goal's rolling window.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from processors.rules.ledger.policy import returns_horizon
from processors.rules.offers.state import Contribution, LineFacts


class Completion(BaseModel):
    """One completion, kept through the returns window so a return can judge its award."""

    number: int
    at: datetime
    completed_event_id: str
    program_id: str
    progress: Decimal  # towards the goal when it completed
    points_awarded: int = 0
    taken_back: bool = False


class ChallengeStanding(BaseModel):
    """One member's standing on one challenge."""

    joined_at: datetime  # the first time anything counted
    completions: int = 0
    contributions: list[Contribution] = Field(default_factory=list)  # towards completions + 1
    history: list[Completion] = Field(default_factory=list)

    def completion(self, number: int) -> Completion | None:
        return next((c for c in self.history if c.number == number), None)


class Counted(BaseModel):
    """What one purchase counted towards one challenge: the completion, its value, the lines."""

    completion: int
    value: Decimal
    lines: list[str] = Field(default_factory=list)


class CountedPurchase(BaseModel):
    """A purchase that counted towards a challenge, as much as a return needs."""

    at: datetime
    lines: dict[str, LineFacts] = Field(default_factory=dict)
    counted: dict[str, Counted] = Field(default_factory=dict)  # by challenge id
    return_ids: list[str] = Field(default_factory=list)


class MemberChallenges(BaseModel):
    """Everything the challenge rules know about one member."""

    standings: dict[str, ChallengeStanding] = Field(default_factory=dict)
    purchases: dict[str, CountedPurchase] = Field(default_factory=dict)
    newest_at: datetime | None = None

    def see(self, at: datetime) -> None:
        """Move the newest time seen to `at` and forget what fell out of the returns window."""
        if self.newest_at is not None and at <= self.newest_at:
            return
        self.newest_at = at
        horizon = returns_horizon(at)
        self.purchases = {k: p for k, p in self.purchases.items() if p.at >= horizon}
        for standing in self.standings.values():
            standing.history = [c for c in standing.history if c.at >= horizon]
