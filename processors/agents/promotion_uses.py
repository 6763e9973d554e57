"""The promotion-uses agent: purchases' promo code uses, keyed by promotion, counted in
arrival order by `processors.rules.codes.uses` (docs/adr/0023-promo-codes.md) → each use
redeemed or refused, keyed like the purchase; for a code that unlocks an offer, the member's
pending use granted or denied on the steps topic (docs/adr/0037-codes-that-unlock-an-offer.md).

A promotion's reservations, answers and links are stored as parts of its entry
(`runtime.batch.Stored`), one per item, written when it changes: a shared code reserved 100
times a second keeps thousands of reservations, and used by 100,000 customers keeps as many
answers; rewriting them all on each batch cost more than deciding, and grew with every use
(docs/adr/0017-worker-runtime.md, addendum). The counts (uses, per code, per member) are
derived from the answers on load, so they can never disagree with them; the entry itself is
written once and keeps only what an older version kept inline."""

from __future__ import annotations

import json
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
        entry = raw if not inline else state.model_dump_json(exclude=_IN_PARTS).encode()
        for name, value in parts.items():
            kind, _, item = name.partition(":")
            if kind == _RESERVATION:
                state.reservations[item] = uses.Reservation.model_validate_json(value)
            elif kind == _ANSWER:
                answer, code, member_id = json.loads(value)
                state.answered(item, answer, code, member_id)
            elif kind == _LINK:
                state.links[item] = json.loads(value)
            elif kind == _LEASE:
                state.leases[item] = uses.Lease.model_validate_json(value)
        state = uses.settled(state)
        for reserved in inline:  # stored as parts from now on
            if reserved in state.reservations:
                state.held().hold(reserved, state.reservations[reserved])
        state.entry = entry
        return state

    def unsaved(self, state: uses.PromotionUses) -> int:
        """Parts changed since `state` was last stored: the batch saves before its journal
        grows too big for one record (`runtime.batch`)."""
        return state.unsaved()

    def dump(self, state: uses.PromotionUses) -> Stored:
        parts: dict[str, bytes | None] = {}
        for key, (answer, member_id) in state.changed_answers().items():
            code = key.partition("|")[0]
            parts[ANSWER + key] = json.dumps([answer, code, member_id]).encode()
        for code, member_id in state.changed_links().items():
            parts[LINK + code] = json.dumps(member_id).encode()
        for reserved in state.changed_reservations():
            kept = state.reservations.get(reserved)
            parts[RESERVATION + reserved] = (
                None if kept is None else kept.model_dump_json().encode()
            )
        # A lease after the reservations: a reservation taken from it is stored before the
        # lease's count of uses assigned, so a crash between them leaves the use counted twice
        # until the lease ends (never given twice), and the rerun extends the reservation.
        for lease_id, lease in state.changed_leases().items():
            parts[LEASE + lease_id] = None if lease is None else lease.model_dump_json().encode()
        entry = state.entry
        if entry is None:  # a new promotion: its counts are in its answers' parts
            fresh = uses.PromotionUses(promotion_id=state.promotion_id)
            entry = state.entry = fresh.model_dump_json(exclude=_IN_PARTS).encode()
        return Stored(entry, parts)


_RESERVATION, _ANSWER, _LINK, _LEASE = "reservation", "answer", "link", "lease"
_IN_PARTS = {"reservations", "leases"}  # never in the entry
RESERVATION = _RESERVATION + ":"
"""The parts of a promotion's entry that each hold one reservation (`code|transaction`)."""
ANSWER = _ANSWER + ":"
"""The parts that each hold one answer (`code|transaction` → [use number or refusal, code,
member]): the promotion's counts are theirs, counted on load, never kept beside them (a
process that died between two writes cannot leave a count without its answer)."""
LINK = _LINK + ":"
"""The parts that each hold one single-use code's link (code → member)."""
LEASE = _LEASE + ":"
"""The parts that each hold one lease of uses to an API process (lease id → `uses.Lease`)."""
