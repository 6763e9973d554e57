"""The published challenges, as the member rules read them from the config topic: the latest
version of each, and which of them a purchase or an activity in a market at an instant counts
towards (live: `starts_at <= t < ends_at`, business time, like offers, DESIGN.md §5.10)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from processors.contract.config import ChallengePublished
from processors.contract.offer_definition import BehaviourKind

PURCHASE_GOALS: Final = frozenset(
    {BehaviourKind.SPEND, BehaviourKind.QUANTITY, BehaviourKind.VISITS}
)
"""Goals a purchase counts towards (and a return takes back)."""

SUPPORTED_GOALS: Final = PURCHASE_GOALS | {BehaviourKind.ACTIVITY}
"""Goals this version tracks; another (a points redemption) is refused when published."""


@dataclass
class Challenges:
    """Every challenge published, by id: its latest version."""

    by_id: dict[str, ChallengePublished] = field(default_factory=dict)

    def publish(self, challenge: ChallengePublished) -> str:
        """Take a (re)publication in; returns why it was refused, or "" when taken."""
        if challenge.goal.kind not in SUPPORTED_GOALS:
            return (
                f"challenge {challenge.challenge_id} refused: a {challenge.goal.kind.value} goal "
                "is not supported"
            )
        self.by_id[challenge.challenge_id] = challenge
        return ""

    def get(self, challenge_id: str) -> ChallengePublished | None:
        return self.by_id.get(challenge_id)

    def live(self, markets: Collection[str], at: datetime) -> list[ChallengePublished]:
        """The challenges running at `at` in any of `markets`, by id."""
        return [
            c
            for _, c in sorted(self.by_id.items())
            if c.market in markets and c.starts_at <= at < c.ends_at
        ]
