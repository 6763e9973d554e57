"""One batch of member-keyed records through the member rules (ledger and offers): the
adapter between Kafka records and `processors.rules.member.handle`, independent of Faust so it
can be tested alone.

Order of effects, per batch (DESIGN.md §7, and `handle`'s contract):
1. admit every record (refusals go to the dead-letter topic);
2. run the rules member by member, in record order;
3. send every output and wait until the broker acknowledged all of them;
4. only then hand back the changed states, for the caller to save.
A crash before 4 redelivers the batch against the old states: the same outputs, same ids.

Decoded states are kept between batches (`StateCache`): parsing a member's JSON state on every
batch cost more than the rules. An entry is used only while the table still holds the very
bytes it was decoded from, so a rebalance, a changelog recovery or a save that never happened
simply makes it miss; an entry is taken out while a batch works on its state (the rules change
it in place) and put back only once the batch has finished without error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter

from loyalty.logs import get_logger
from processors.codec.avro import AvroCodec
from processors.contract.base import Event
from processors.contract.clock import DayStarted
from processors.contract.deadletter import DeadLetterReason
from processors.contract.targeting import OfferTargetingTick
from processors.frontdoor import Delivered, FrontDoor, Tombstone
from processors.rules import member as rules
from processors.rules.member import Config, MemberState

log = get_logger(__name__)
OUTPUTS = Counter("loyalty_ledger_outputs_total", "Events emitted by the ledger rules.", ["type"])
NOTES = Counter(
    "loyalty_ledger_noops_total", "Inputs the ledger rules left without effect.", ["note"]
)

Send = Callable[[str, bytes, bytes], Awaitable[Awaitable[object]]]


class StateCache:
    """Decoded member states, each with the saved bytes it equals; least recently used first
    out once more than `max_members` are kept."""

    def __init__(self, max_members: int = 50_000):
        self.max_members = max_members
        self._entries: dict[str, tuple[bytes, MemberState]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def take(self, member: str, raw: bytes) -> MemberState | None:
        """The state decoded from `raw`, if kept; the entry leaves the cache either way."""
        entry = self._entries.pop(member, None)
        if entry is not None and (entry[0] is raw or entry[0] == raw):
            return entry[1]
        return None

    def put(self, member: str, raw: bytes, state: MemberState) -> None:
        """Keep `state`, which `raw` (the bytes now saved for `member`) decodes to."""
        self._entries.pop(member, None)
        self._entries[member] = (raw, state)
        while len(self._entries) > self.max_members:
            del self._entries[next(iter(self._entries))]

    def clear(self) -> None:
        self._entries.clear()


@dataclass
class BatchResult:
    """What the caller must save: member id → new state."""

    states: dict[str, bytes] = field(default_factory=dict)  # rules.dump_state
    emitted: int = 0
    dead_lettered: int = 0


class LedgerBatch:
    """Runs batches of records for the members of the partitions a worker owns."""

    def __init__(self, codec: AvroCodec, door: FrontDoor, send: Send,
                 config: Config, cache: StateCache | None = None):  # fmt: skip
        self.codec = codec
        self.door = door
        self.send = send
        self.config = config
        self.cache = cache if cache is not None else StateCache()
        self._outputs: dict[type, Any] = {}  # labelled counters, looked up once

    async def run(
        self,
        records: Iterable[Delivered],
        load: Callable[[str], bytes | None],
        members_of_partition: Callable[[int], Iterable[str]],
    ) -> BatchResult:
        """Process `records`; `load` reads a saved state, `members_of_partition` lists the
        members a clock tick on that partition must reach."""
        result = BatchResult()
        working: dict[str, MemberState] = {}
        loaded: dict[str, bytes | None] = {}
        changed: set[str] = set()  # members whose state a rule has changed in this batch
        pending: list[Awaitable[object]] = []

        def state_of(member: str) -> MemberState:
            if member not in working:
                raw = load(member)
                loaded[member] = raw
                state = self.cache.take(member, raw) if raw else None
                if state is None:
                    state = rules.load_state(member, raw) if raw else MemberState(member)
                working[member] = state
            return working[member]

        async def apply(admitted: Event | Tombstone, delivered: Delivered) -> None:
            if isinstance(admitted, Tombstone):
                return
            if isinstance(admitted, DayStarted | OfferTargetingTick):
                members = list(members_of_partition(delivered.partition))
            else:
                members = [admitted.partition_key()]
            for member in members:
                before = state_of(member)
                # The rules change the state in place; keep its bytes to undo a failed run
                # (before its first input of the batch, those are the bytes it was loaded from).
                snapshot = rules.dump_state(before) if member in changed else loaded[member]
                try:
                    outcome = rules.handle(before, admitted, self.config)  # type: ignore[arg-type]
                except Exception as error:
                    # Kept whole on the dead-letter topic, to be replayed once fixed; the
                    # member's state is put back as it was before this input.
                    working[member] = (
                        rules.load_state(member, snapshot) if snapshot else MemberState(member)
                    )
                    log.exception("ledger.rules_failed", member=member, offset=delivered.offset)
                    pending.append(
                        await self.door.dead_letter(
                            delivered, DeadLetterReason.PROCESSING_FAILED,
                            f"{type(error).__name__}: {error}"[:4000], type(admitted).__name__,
                        )
                    )  # fmt: skip
                    continue
                for note in outcome.notes:
                    NOTES.labels(note.split(" ")[0]).inc()
                working[member] = outcome.state
                changed.add(member)
                for event in outcome.emitted:
                    counter = self._outputs.get(type(event))
                    if counter is None:
                        counter = self._outputs[type(event)] = OUTPUTS.labels(type(event).__name__)
                    counter.inc()
                    pending.append(
                        await self.send(
                            event.topic, self.codec.encode(event), event.partition_key().encode()
                        )
                    )
                    result.emitted += 1

        result.dead_lettered = await self.door.process(records, apply)
        await asyncio.gather(*pending)
        # Save only what changed: the rules mutate states in place, so compare the bytes.
        for member, state in working.items():
            if rules.is_empty(state):
                continue  # nothing known of this member (e.g. a step for a stranger)
            before = loaded.get(member)
            if member not in changed and before is not None:
                self.cache.put(member, before, state)  # no rule ran on it: as it was loaded
                continue
            raw = rules.dump_state(state)
            if raw != before:
                result.states[member] = raw
            elif before is not None:
                raw = before  # the table's own object: the next lookup matches by identity
            self.cache.put(member, raw, state)
        return result
