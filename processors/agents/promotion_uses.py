"""The promotion-uses agent: purchases' promo code uses, keyed by promotion, counted in
arrival order by `processors.rules.codes.uses` (docs/adr/0023-promo-codes.md) → each use
redeemed or refused, keyed like the purchase; for a code that unlocks an offer, the member's
pending use granted or denied on the steps topic (docs/adr/0037-codes-that-unlock-an-offer.md).

A promotion's reservations are stored as parts of its entry (`runtime.batch.Stored`), one per
reservation, written when it changes: a shared code reserved 100 times a second keeps
thousands, and rewriting them all with the counts on each batch cost more than deciding
(docs/adr/0017-worker-runtime.md, addendum)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from processors.contract.base import Event
from processors.frontdoor import Delivered
from processors.rules.codes import uses
from processors.runtime.batch import Decision, Stored
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

    parted = True

    def load(self, key: str, raw: bytes) -> uses.PromotionUses:
        return self.load_parted(key, raw, {})

    def load_parted(self, key: str, raw: bytes, parts: Mapping[str, bytes]) -> uses.PromotionUses:
        state = uses.PromotionUses.model_validate_json(raw)
        inline = list(state.reservations)  # an entry stored before reservations were parts
        for name, value in parts.items():
            reserved = name.removeprefix(RESERVATION)
            state.reservations[reserved] = uses.Reservation.model_validate_json(value)
        state = uses.settled(state)
        for reserved in inline:  # stored as parts from now on
            if reserved in state.reservations:
                state.held().hold(reserved, state.reservations[reserved])
        return state

    def dump(self, state: uses.PromotionUses) -> Stored:
        parts: dict[str, bytes | None] = {}
        for reserved in state.changed_reservations():
            kept = state.reservations.get(reserved)
            parts[RESERVATION + reserved] = (
                None if kept is None else kept.model_dump_json().encode()
            )
        return Stored(state.model_dump_json(exclude={"reservations"}).encode(), parts)


RESERVATION = "reservation:"
"""The parts of a promotion's entry that each hold one reservation (`code|transaction`)."""
