"""The offer-uses agent: requests for uses of offers with a total-uses limit or a points
budget, and tills' reservations of discount uses, keyed by offer, decided in arrival order by
`processors.rules.offers.budget` (docs/adr/0014-offer-level-caps.md,
docs/adr/0030-discount-offer-total-uses.md) → grants and denials to the members, answers to
the reservations, and `OfferBudgetExhausted` once an offer is spent, with `OfferClosed` for the
config topic (docs/adr/0029-gaps-closed.md).

An offer's state is stored in parts (`runtime.batch.Stored`, docs/adr/0017-worker-runtime.md,
addendum): the entry keeps the counts (uses and points granted, who spent the offer), each
member's answers and each till's reservation are parts of their own, written when they change.
Stored whole, an offer with a budget used by 100,000 members rewrote every member's answers on
each batch (megabytes a batch, growing with every member) until the state passed the broker's
record size limit and its partition stalled for good. The journal keeps the counts and the
parts of one batch all or nothing."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence

from processors.contract.base import Event
from processors.frontdoor import Delivered
from processors.rules.offers import budget
from processors.runtime.batch import Decision, Stored
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

    parted = True

    def load(self, key: str, raw: bytes) -> budget.OfferUses:
        return self.load_parted(key, raw, {})

    def load_parted(self, key: str, raw: bytes, parts: Mapping[str, bytes]) -> budget.OfferUses:
        state = budget.OfferUses.model_validate_json(raw)
        # An entry stored whole (before the parts): its members move to parts a few thousand
        # a save (one journal with all of them could pass the record size limit), its
        # reservations at the next save.
        state.kept_inline(set(state.decided))
        inline = list(state.reservations)
        for name, value in parts.items():
            kind, _, item = name.partition(":")
            if kind == _MEMBER:
                uses, discounts = json.loads(value)
                state.read_answers(item, {int(n): points for n, points in uses.items()}, discounts)
            elif kind == _RESERVATION:
                state.reservations[item] = budget.Reservation.model_validate_json(value)
        for reserved in inline:
            state.held().hold(reserved, state.reservations[reserved])
        return state

    def unsaved(self, state: budget.OfferUses) -> int:
        return state.unsaved()

    def dump(self, state: budget.OfferUses) -> Stored:
        parts: dict[str, bytes | None] = {}
        for member_id in state.changed_members(moved_most=MOVED_AT_ONCE):
            parts[MEMBER + member_id] = json.dumps(state.answers_of(member_id)).encode()
        for reserved in state.changed_reservations():
            kept = state.reservations.get(reserved)
            parts[RESERVATION + reserved] = (
                None if kept is None else kept.model_dump_json().encode()
            )
        whole = state.inline()
        if whole is None:
            return Stored(state.model_dump_json(exclude=_IN_PARTS).encode(), parts)
        return Stored(whole.model_dump_json(exclude={"reservations"}).encode(), parts)


MOVED_AT_ONCE = 2_000
"""The most members an entry stored whole moves to parts in one save."""
_MEMBER, _RESERVATION = "member", "reservation"
_IN_PARTS = {"decided", "discounts_granted", "reservations"}  # never in the entry
MEMBER = _MEMBER + ":"
"""The parts that each hold one member's answers: [use number → points granted, the
discount-only uses granted]."""
RESERVATION = _RESERVATION + ":"
"""The parts that each hold one till's reservation (by transaction)."""
