"""Who may spend points on a catalogue reward or in a reward store: a market and criteria
judged as offers' targeting judges them (ADR 13), on the member's facts at the decision.

Pure; the reward and store rules ask it, and the API's listings ask the same function.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from processors.contract.offer_definition import TargetingCriterion
from processors.rules.offers import targeting
from processors.rules.offers.state import MemberOffers


def unmet(
    what: str,
    market: str,
    criteria: Sequence[TargetingCriterion],
    member: MemberOffers,
    at: datetime,
) -> str | None:
    """Why the member is outside `what`'s market or eligibility criteria (all must hold), or
    None when inside. A member of no known market yet is judged on the criteria alone."""
    if member.markets and market not in member.markets:
        return f"{what} is for members of market {market}"
    failed = [c for c in criteria if not targeting.holds(c, member, at)]
    if failed:
        names = ", ".join(c.attribute.value for c in failed)
        return f"{what}: the member does not meet {names}"
    return None
