"""A reward's stock, decided in arrival order by the agent keyed by the reward (DESIGN.md §2,
§5.26; ADR 20): code batches in, grants out, "the first N" exact whatever member partition
asked. Pure: the state and one input in, the next state and the events out.

- A batch (`RewardCodesStocked`) adds its codes at the back of the stock, once per batch;
  a code the reward already had (in stock or given) is not added again.
- A request (`RewardAllocationRequested`) gets all its grants or none: with a code stock it
  takes `quantity` codes from the front; with a total-grants limit (the one the request
  carries, i.e. the reward's version where it was asked) it needs that many grants left.
  A request naming its code (an upstream system's grant) takes that code out of the stock
  if it is there, and is refused CODE_TAKEN if the code was granted already.
- A redelivered request gets its first answer again, same id and content.
- A release (`RewardAllocationReleased`) puts the codes back at the front and the grants
  back, once; the request's answer stays, so a redelivery of it changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from processors.contract.base import Event
from processors.contract.config import RewardCodesAdded
from processors.contract.internal import (
    RewardAllocated,
    RewardAllocationRefusal,
    RewardAllocationRefused,
    RewardAllocationReleased,
    RewardAllocationRequested,
    RewardCodesStocked,
)
from processors.rules.arithmetic import derived_id
from processors.rules.rewards.state import RewardStock

StockInput = RewardCodesStocked | RewardAllocationRequested | RewardAllocationReleased


@dataclass
class Decision:
    """The reward's next state and what to emit, in order."""

    state: RewardStock
    emitted: list[Event] = field(default_factory=list)
    note: str = ""


def decide(state: RewardStock | None, event: StockInput) -> Decision:
    """One input on the reward's stock (see the module). Takes ownership of `state`."""
    state = state or RewardStock(reward_id=event.reward_id)
    match event:
        case RewardCodesStocked():
            return _stock(state, event)
        case RewardAllocationRequested():
            return _allocate(state, event)
        case RewardAllocationReleased():
            return _release(state, event)
    raise TypeError(f"the reward stock does not handle {type(event).__name__}")


def stocked(added: RewardCodesAdded) -> RewardCodesStocked:
    """A batch of codes from the config topic, as it goes to the reward's agent."""
    return RewardCodesStocked(
        event_id=added.event_id,
        occurred_at=added.occurred_at,
        reward_id=added.reward_id,
        codes=added.codes,
    )


def _stock(state: RewardStock, batch: RewardCodesStocked) -> Decision:
    if batch.event_id in state.batches:
        return Decision(state, note="batch already stocked")
    state.batches.append(batch.event_id)
    known = set(state.codes)
    known.update(code for given in state.answers.values() if isinstance(given, list)
                 for code in given)  # fmt: skip
    fresh = [code for code in batch.codes if code not in known]
    state.codes.extend(fresh)
    skipped = len(batch.codes) - len(fresh)
    return Decision(state, note=f"{skipped} code(s) already known, skipped" if skipped else "")


def _allocate(state: RewardStock, asked: RewardAllocationRequested) -> Decision:
    key = _key(asked.member_id, asked.command_id)
    if key in state.answers:
        return Decision(state, [_answer(asked, state.answers[key])], note="repeated request")
    refusal: RewardAllocationRefusal | None = None
    if asked.code is not None and asked.code in _given(state):
        refusal = RewardAllocationRefusal.CODE_TAKEN
    elif asked.code is None and asked.uses_code_stock and len(state.codes) < asked.quantity:
        refusal = RewardAllocationRefusal.OUT_OF_CODES
    limit = asked.grants_total_max
    if refusal is None and limit is not None and state.given + asked.quantity > limit:
        refusal = RewardAllocationRefusal.GRANTS_SPENT
    if refusal is not None:
        state.answers[key] = refusal.value
        return Decision(state, [_answer(asked, refusal.value)])
    codes: list[str] = []
    if asked.code is not None:  # an upstream system's choice: out of the stock if there
        codes, state.codes = [asked.code], [c for c in state.codes if c != asked.code]
    elif asked.uses_code_stock:
        codes, state.codes = state.codes[: asked.quantity], state.codes[asked.quantity :]
    state.given += asked.quantity
    state.answers[key] = codes
    return Decision(state, [_answer(asked, codes)])


def _release(state: RewardStock, released: RewardAllocationReleased) -> Decision:
    key = _key(released.member_id, released.command_id)
    if not isinstance(state.answers.get(key), list) or key in state.released:
        return Decision(state, note="nothing given to release")
    state.released.append(key)  # its answer stays: a redelivered request gets it again
    state.codes[:0] = released.codes
    state.given = max(0, state.given - released.quantity)
    return Decision(state)


def _answer(asked: RewardAllocationRequested, answer: list[str] | str) -> Event:
    """The allocation (`answer`: the codes given) or the refusal (`answer`: its reason)."""
    common: dict[str, Any] = {
        "occurred_at": asked.occurred_at,
        "member_id": asked.member_id,
        "reward_id": asked.reward_id,
        "command_id": asked.command_id,
        "allocation_event_id": asked.event_id,
    }
    if isinstance(answer, str):
        reason = RewardAllocationRefusal(answer)
        return RewardAllocationRefused(
            event_id=derived_id("RWD-REFUSED", asked.event_id), reason=reason, **common
        )
    return RewardAllocated(event_id=derived_id("RWD-GIVEN", asked.event_id), codes=answer, **common)


def _given(state: RewardStock) -> set[str]:
    """The codes granted and not given back."""
    given = {c for a in state.answers.values() if isinstance(a, list) for c in a}
    return given - set(state.codes)


def _key(member_id: str, command_id: str) -> str:
    return f"{member_id}|{command_id}"
