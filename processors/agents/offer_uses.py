"""One batch of offer-use requests through the offer's decision (`processors.rules.offers.budget`):
the adapter between the offer-keyed internal topic and the rules, independent of Faust so it
can be tested alone (docs/adr/0014-offer-level-caps.md).

Same order of effects as the member batches (`ledger_batch`, DESIGN.md §7):
1. admit every record (refusals go to the dead-letter topic);
2. decide request by request, in record order, on each offer's state;
3. send every answer (grants and denials to the members, OfferBudgetExhausted) and wait until
   the broker acknowledged all of them;
4. only then hand back the changed states, for the caller to save.
A crash before 4 redelivers the batch against the old states: the same answers, same ids.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from prometheus_client import Counter

from loyalty.logs import get_logger
from processors.agents.ledger_batch import Send
from processors.codec.avro import AvroCodec
from processors.contract.base import Event
from processors.contract.deadletter import DeadLetterReason
from processors.contract.internal import OfferUseRequested
from processors.frontdoor import Delivered, FrontDoor, Tombstone
from processors.rules.offers import budget

log = get_logger(__name__)
ANSWERS = Counter("loyalty_offer_use_answers_total", "Offer-use decisions sent.", ["type"])


def dump(state: budget.OfferUses) -> bytes:
    """The bytes an offer's state is saved as."""
    return state.model_dump_json().encode()


def load(raw: bytes) -> budget.OfferUses:
    """An offer's state from its saved bytes."""
    return budget.OfferUses.model_validate_json(raw)


@dataclass
class UsesResult:
    """What the caller must save: offer id → new state."""

    states: dict[str, bytes] = field(default_factory=dict)
    emitted: int = 0


class OfferUsesBatch:
    """Decides batches of requests for the offers of the partitions a worker owns."""

    def __init__(self, codec: AvroCodec, door: FrontDoor, send: Send) -> None:
        self.codec = codec
        self.door = door
        self.send = send

    async def run(
        self, records: Iterable[Delivered], load_raw: Callable[[str], bytes | None]
    ) -> UsesResult:
        """Decide `records`; `load_raw` reads an offer's saved state."""
        result = UsesResult()
        working: dict[str, budget.OfferUses | None] = {}
        changed: set[str] = set()
        pending: list[Awaitable[object]] = []

        async def apply(admitted: Event | Tombstone, delivered: Delivered) -> None:
            if not isinstance(admitted, OfferUseRequested):
                return  # nothing else travels here; the front door decoded it, so pass it over
            offer_id = admitted.offer_id
            if offer_id not in working:
                raw = load_raw(offer_id)
                working[offer_id] = load(raw) if raw else None
            state = working[offer_id]
            undo = _undo(state, admitted.member_id)
            try:
                decision = budget.decide(state, admitted)
            except Exception as error:
                # Kept whole on the dead-letter topic, to be replayed once fixed; the offer's
                # state is put back as it was before this request (decide changes it in place).
                working[offer_id] = undo()
                log.exception("offer_uses.rules_failed", offer=offer_id, offset=delivered.offset)
                pending.append(
                    await self.door.dead_letter(
                        delivered, DeadLetterReason.PROCESSING_FAILED,
                        f"{type(error).__name__}: {error}"[:4000], type(admitted).__name__,
                    )
                )  # fmt: skip
                return
            working[offer_id] = decision.state
            changed.add(offer_id)
            for event in decision.emitted:
                ANSWERS.labels(type(event).__name__).inc()
                pending.append(
                    await self.send(
                        event.topic, self.codec.encode(event), event.partition_key().encode()
                    )
                )
                result.emitted += 1

        await self.door.process(records, apply)
        await asyncio.gather(*pending)
        for offer_id in changed:
            state = working[offer_id]
            if state is not None:
                result.states[offer_id] = dump(state)
        return result


def _undo(state: budget.OfferUses | None, member_id: str) -> Callable[[], budget.OfferUses | None]:
    """How to put `state` back as it is now, after a decision about `member_id` failed midway.
    Cheaper than a copy of the whole state: a decision touches the totals and that member."""
    if state is None:
        return lambda: None
    totals = (state.uses_granted, state.points_granted, state.exhausted_by)
    answers = dict(state.decided[member_id]) if member_id in state.decided else None

    def undo() -> budget.OfferUses:
        state.uses_granted, state.points_granted, state.exhausted_by = totals
        if answers is None:
            state.decided.pop(member_id, None)
        else:
            state.decided[member_id] = answers
        return state

    return undo
