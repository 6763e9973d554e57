"""The promotion-uses agent: purchases' promo code uses, keyed by promotion, counted in
arrival order by `processors.rules.codes.uses` (docs/adr/0023-promo-codes.md) → each use
redeemed or refused, keyed like the purchase; for a code that unlocks an offer, the member's
pending use granted or denied on the steps topic (docs/adr/0037-codes-that-unlock-an-offer.md)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from processors.contract.base import Event
from processors.frontdoor import Delivered
from processors.rules.codes import uses
from processors.runtime.batch import Decision
from processors.runtime.table import Table


class PromotionUsesAgent:
    """Decides each promotion's uses on the promotion's state."""

    name = "promotion-uses"

    async def prepare(self, records: Sequence[Delivered]) -> None:
        return None

    def keys(self, event: Event, delivered: Delivered, table: Table | None) -> Iterable[str]:
        # The front door lets nothing else onto this topic.
        assert isinstance(event, uses.UsesInput)
        return (event.promotion_id,)

    def decide(
        self, key: str, state: uses.PromotionUses | None, event: Event
    ) -> Decision[uses.PromotionUses]:
        assert isinstance(event, uses.UsesInput)
        decision = uses.decide(state, event)
        return Decision(decision.state, decision.emitted)

    def load(self, key: str, raw: bytes) -> uses.PromotionUses:
        return uses.PromotionUses.model_validate_json(raw)

    def dump(self, state: uses.PromotionUses) -> bytes | None:
        return state.model_dump_json().encode()
