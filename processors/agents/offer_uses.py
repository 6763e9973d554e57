"""The offer-uses agent: requests for uses of offers with a total-uses limit or a points
budget, and tills' reservations of discount uses, keyed by offer, decided in arrival order by
`processors.rules.offers.budget` (docs/adr/0014-offer-level-caps.md,
docs/adr/0030-discount-offer-total-uses.md) → grants and denials to the members, answers to
the reservations, and `OfferBudgetExhausted` once an offer is spent, with `OfferClosed` for the
config topic (docs/adr/0029-gaps-closed.md)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from processors.contract.base import Event
from processors.frontdoor import Delivered
from processors.rules.offers import budget
from processors.runtime.batch import Decision
from processors.runtime.table import Table


class OfferUses:
    """Decides each offer's uses on the offer's state."""

    name = "offer-uses"

    async def prepare(self, records: Sequence[Delivered]) -> None:
        return None

    def keys(self, event: Event, delivered: Delivered, table: Table | None) -> Iterable[str]:
        # The front door lets nothing else onto this topic.
        assert isinstance(event, budget.UsesInput)
        return (event.offer_id,)

    def decide(
        self, key: str, state: budget.OfferUses | None, event: Event
    ) -> Decision[budget.OfferUses]:
        assert isinstance(event, budget.UsesInput)
        decision = budget.decide(state, event)
        return Decision(decision.state, decision.emitted)

    def load(self, key: str, raw: bytes) -> budget.OfferUses:
        return budget.OfferUses.model_validate_json(raw)

    def dump(self, state: budget.OfferUses) -> bytes | None:
        return state.model_dump_json().encode()
