"""The batch protocol, the one every agent runs: what happens to a batch of consumed records,
in which order, and what a failure leaves behind. Agents say only which topics they read,
which state an input touches and what the rules decide (`Agent`); this module does the rest.

Steps of `run_batch` (the caller commits, step 5, only after it returned):
1. admit: decode and validate every record at the front door; refusals become dead letters;
2. decide: input by input in record order, each key's state through the agent's pure
   `decide`, which returns the events and the next state; the events are encoded at once. An
   input the rules refuse (`Refused`: a conflict), a rule that raises, or an output that does
   not encode dead-letters its input, and the key's state is rebuilt from the stored bytes by
   deciding again the inputs of this batch that came before it: no snapshot, no undo, the
   rules being deterministic;
3. send the outputs and the dead letters, and wait until the broker acknowledged all of them;
4. save the changed states to the table (its changelog first), and wait for those acks;
5. (the runner) commit the offsets of every record of the batch.
A crash anywhere before 5 redelivers the batch against the states as step 4 left them: the
same outputs with the same ids, or nothing for inputs the state already holds.

A batch whose inputs touch more states than memory should hold at once (a day's tick reaches
every member of a partition: 125,000 of them at a million members, ~1.6 GB decoded) runs
steps 3 and 4 for what it decided so far whenever its working set passes `keys_max` keys or
`held_bytes_max` stored bytes, then goes on deciding; a failure after such a flush reruns
the batch against the states saved so far, as a crash would (ADR 24). It does the same once
it has decided for `decide_seconds` without a pause: deciding never awaits, and the
process's consumer groups keep their membership by heartbeats that run on the same event
loop, and a batch of 2,000 purchases of members with a history (~7 ms each on a slow host)
would hold it past the groups' 10 s session (under a profiler's pauses, every group of the
worker rebalanced mid-batch and ran it again).

A state that keeps large maps (a promotion's reservations, answers, links and leases: up to
hundreds of thousands) may store them as parts (`Stored`, `Table.parts`): its entry, and one
table entry per item, written only when that item changed, in the entry's partition;
rewriting the whole state on each batch had made each batch cost as much as the maps (ADR 17,
addendum). Such an agent is `parted` and loads with its parts (`load_parted`). Its batch's
writes are bracketed by a journal (`table.JOURNAL`): the whole change set in one record first,
deleted last, so a crash after any prefix of them leaves the state as before the batch or, the
journal applied, as after it, and the next batch on it writes the journal's changes again.
With its changes it stores the offset of the last input it decided per topic-partition
(`table.APPLIED`): a redelivered input at or before it is not decided again (its outputs were
acknowledged before the state was saved), so a batch that reserved and released the same
basket is not answered anew against the released state.

Decoded states are kept between batches (`StateCache`): parsing a member's state on every
batch cost more than the rules. An entry is used only while the table still holds the very
bytes it was decoded from, and it leaves the cache while a batch works on it (decide may
reuse its parts), so a batch that fails before step 4 leaves no changed state behind.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from aiokafka import AIOKafkaProducer
from prometheus_client import Counter

from processors.base.logs import get_logger
from processors.base.tuning import BETWEEN_BATCHES
from processors.codec.avro import AvroCodec
from processors.contract.base import Event
from processors.contract.deadletter import DeadLettered, DeadLetterReason
from processors.frontdoor import Delivered, FrontDoor, Tombstone, refuse
from processors.runtime.table import APPLIED, JOURNAL, Table, journal, part_key

log = get_logger(__name__)
OUTPUTS = Counter("loyalty_outputs_total", "Events emitted by the agents.", ["agent", "type"])
NOTES = Counter(
    "loyalty_noops_total", "Inputs the rules left without effect, by note.", ["agent", "note"]
)
FAILURES = Counter(
    "loyalty_rule_failures_total", "Inputs whose rules raised (dead-lettered).", ["agent"]
)

REFUSALS = Counter(
    "loyalty_refusals_total",
    "Inputs the rules refused as a whole (dead-lettered), by reason and kind.",
    ["agent", "reason", "kind"],
)

S = TypeVar("S")


class Refused(Exception):  # noqa: N818 - a decision, not an error
    """Raised by an agent's `decide` for an input the rules refuse as a whole (e.g. a
    conflict: an id already taken by another body): dead-lettered with `reason`, nothing of it
    applied. Unlike any other exception it is not a bug, and logged as a warning."""

    def __init__(self, reason: DeadLetterReason, detail: str, kind: str = ""):
        super().__init__(reason, detail, kind)
        self.reason = reason
        self.detail = detail
        self.kind = kind


@dataclass(frozen=True)
class Output:
    """An event sent to another topic than its own, or to a given partition (a fan-out)."""

    topic: str  # the contract topic
    event: Event
    partition: int | None = None


@dataclass(frozen=True)
class Stored:
    """What a `parted` agent stores for a state: its entry, and the parts that changed since
    it was loaded or last dumped (name → bytes; None: the part is gone)."""

    entry: bytes
    parts: Mapping[str, bytes | None] = field(default_factory=dict)


@dataclass
class Decision(Generic[S]):
    """What the rules decided for one input and one key: events in order, the next state."""

    state: S | None
    emitted: Sequence[Event | Output] = ()
    notes: Sequence[str] = ()


class Agent(Protocol[S]):
    """One stream processor: its inputs, its state, its rules. Holds no Kafka code."""

    name: str

    async def prepare(self, records: Sequence[Delivered]) -> None:
        """Called before a batch is admitted: wait for what its inputs need (configuration)."""
        ...

    def keys(self, event: Event, delivered: Delivered, table: Table | None) -> Iterable[str]:
        """The keys whose state `event` is decided on (none: nothing to do)."""
        ...

    def decide(self, key: str, state: S | None, event: Event) -> Decision[S]:
        """The rules for one input on one key's state (None: unknown yet)."""
        ...

    def load(self, key: str, raw: bytes) -> S:
        """A state from its stored bytes."""
        ...

    def dump(self, state: S) -> bytes | Stored | None:
        """The bytes to store for `state` (with its changed parts, for a `parted` agent, which
        also has `load_parted(key, raw, parts)` and `unsaved(state)`, the count of its parts
        changed since); None when there is nothing worth keeping."""
        ...


class StateCache:
    """Decoded states, each with the stored bytes it equals; least recently used first out
    once more than `max_entries` are kept or their stored bytes add up to more than
    `max_bytes`.

    Bounded by bytes, not only by count: a decoded state takes ~8-9 times its stored JSON in
    Python objects (12.8 KB for a member with one purchase, ~400 KB for one with ten baskets
    and 200 live offers; docs/performance.md), so a count alone let the cache grow with the
    size of the states. The default keeps ~16 MiB of stored bytes, ~150 MiB decoded (a
    member's state also keeps its purchase records' stored lines: about its stored bytes
    again, ADR 24 addendum; a purchase's lines loaded from storage stay bytes until a rule
    reads them, ADR 24 second addendum, so a loaded state weighs less). A state stored in
    parts (a promotion's reservations, ADR 17 addendum) weighs its entry and its parts
    (`put`'s `weight`).
    """

    def __init__(self, max_entries: int = 50_000, max_bytes: int = 16 << 20):
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: dict[str, tuple[bytes, Any, int]] = {}
        self._bytes = 0  # stored bytes of the kept entries (with their parts)
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def stored_bytes(self) -> int:
        """The stored bytes of the states kept (their decoded size is ~8-9 times more)."""
        return self._bytes

    def take(self, key: str, raw: bytes) -> Any | None:
        """The state decoded from `raw`, if kept; the entry leaves the cache either way."""
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry[2]
            if entry[0] is raw or entry[0] == raw:
                self.hits += 1
                return entry[1]
        self.misses += 1
        return None

    def put(self, key: str, raw: bytes, state: Any, weight: int | None = None) -> None:
        """Keep `state`, which `raw` (the bytes now stored for `key`) decodes to; `weight`:
        the stored bytes it stands for, when more than `raw` (its parts too)."""
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old[2]
        weighs = len(raw) if weight is None else weight
        self._entries[key] = (raw, state, weighs)
        self._bytes += weighs
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            oldest = next(iter(self._entries))
            self._bytes -= self._entries.pop(oldest)[2]

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0


@dataclass
class BatchReport:
    """What one batch did."""

    admitted: int = 0
    dead_lettered: int = 0
    emitted: int = 0
    saved: int = 0


@dataclass(frozen=True)
class _Record:
    """An output ready to send."""

    topic: str
    key: bytes
    value: bytes
    partition: int | None


@dataclass
class _Key(Generic[S]):
    """One key's state while a batch works on it."""

    stored: bytes | None  # what the table holds: the state before this batch
    state: S | None
    decided: list[Event] = field(default_factory=list)  # this batch's inputs, decided
    pending: dict[str, bytes | None] = field(default_factory=dict)
    """A parted state's changes that a batch cut short left in its journal, to write again."""
    applied: dict[str, int] | None = None
    """A parted state's last input decided per topic-partition (`table.APPLIED`)."""

    def fresh(self, delivered: Delivered) -> bool:
        """Whether `delivered` comes after the last input this parted state decided on its
        topic-partition (not a redelivery of one its saved state holds)."""
        assert self.applied is not None
        return delivered.offset > self.applied.get(f"{delivered.topic}:{delivered.partition}", -1)


class Batches(Generic[S]):
    """Runs batches for one agent: its table, its cache, the producer and the front door."""

    def __init__(
        self,
        agent: Agent[S],
        *,
        codec: AvroCodec,
        door: FrontDoor,
        producer: AIOKafkaProducer,
        topic_name: Callable[[str], str],
        table: Table | None = None,
        cache: StateCache | None = None,
        keys_max: int = 5_000,
        held_bytes_max: int = 16 << 20,
        journal_inputs_max: int = 1_000,
        journal_parts_max: int = 2_000,
        decide_seconds: float = 1.0,
    ):
        self.agent = agent
        self.codec = codec
        self.door = door
        self.producer = producer
        self.topic_name = topic_name
        self.table = table
        self.cache = cache if cache is not None else StateCache()
        self.keys_max = keys_max
        self.held_bytes_max = held_bytes_max
        # A parted state's journal holds its batch's whole change set in one record: steps 3
        # and 4 run once a key has decided this many inputs, so it stays far below the
        # broker's record size limit (~250 bytes an input: ~250 KB; found in review).
        self.journal_inputs_max = journal_inputs_max
        # ... and once this many of its parts changed (~170 bytes each in the journal, so
        # ~340 KB, plus one input's own: an input changes a bounded number of parts, e.g. at
        # most `rules.holds.FORGOTTEN_AT_ONCE` lapsed reservations forgotten).
        self.journal_parts_max = journal_parts_max
        # Deciding runs without awaiting: steps 3 and 4 (which await the broker) come at least
        # this often, so the event loop's other tasks (heartbeats, other agents) run.
        self.decide_seconds = decide_seconds
        self._outputs: dict[type, Any] = {}  # labelled counters, looked up once
        # A state stored in parts is loaded with them and weighed with them in the cache.
        self._parted = table if table is not None and getattr(agent, "parted", False) else None

    async def run_batch(self, records: Sequence[Delivered]) -> BatchReport:
        """Steps 1 to 4 of the protocol (see the module); the caller commits after it. The
        cyclic collector stays out of it in a process that opted in (`BETWEEN_BATCHES`)."""
        with BETWEEN_BATCHES.batch():
            return await self._run_batch(records)

    async def _run_batch(self, records: Sequence[Delivered]) -> BatchReport:
        report = BatchReport()
        await self.agent.prepare(records)
        # 1. Admit.
        admitted, dead = self.door.admit_all(records)
        report.admitted = len(admitted)
        # 2. Decide.
        keys: dict[str, _Key[S]] = {}
        held = 0  # stored bytes of the states in `keys`
        outputs: list[_Record] = []
        pause_at = time.monotonic() + self.decide_seconds
        for delivered, event in admitted:
            if isinstance(event, Tombstone):
                continue
            if keys and time.monotonic() >= pause_at:
                await self._send_and_save(keys, outputs, dead, report)  # steps 3, 4
                keys, outputs, dead, held = {}, [], [], 0
                pause_at = time.monotonic() + self.decide_seconds
            failed = False
            for key in self.agent.keys(event, delivered, self.table):
                entry = keys.get(key)
                if entry is None:
                    if len(keys) >= self.keys_max or held >= self.held_bytes_max:
                        await self._send_and_save(keys, outputs, dead, report)  # steps 3, 4
                        keys, outputs, dead, held = {}, [], [], 0
                    entry = keys[key] = self._load(key)
                    held += len(entry.stored or b"")
                if entry.applied is not None and not entry.fresh(delivered):
                    NOTES.labels(self.agent.name, "already_applied").inc()
                    continue  # redelivered after its state was saved: its outputs were sent
                try:
                    decision = self.agent.decide(key, entry.state, event)
                    # Encoded here: an output that breaks the contract is the input's failure.
                    encoded = [self._encode(output) for output in decision.emitted]
                except Refused as refusal:
                    log.warning("batch.refused", agent=self.agent.name, key=key,
                                topic=delivered.topic, offset=delivered.offset,
                                reason=refusal.reason.value, detail=refusal.detail)  # fmt: skip
                    entry.state = self._replay(key, entry)
                    if not failed:
                        failed = True
                        REFUSALS.labels(self.agent.name, refusal.reason.value, refusal.kind).inc()
                        dead.append(refuse(delivered, refusal.reason, refusal.detail,
                                           type(event).__name__))  # fmt: skip
                    continue
                except Exception as error:
                    log.exception("batch.rules_failed", agent=self.agent.name, key=key,
                                  topic=delivered.topic, offset=delivered.offset)  # fmt: skip
                    entry.state = self._replay(key, entry)
                    if not failed:
                        failed = True
                        FAILURES.labels(self.agent.name).inc()
                        detail = f"{type(error).__name__}: {error}"
                        dead.append(refuse(delivered, DeadLetterReason.PROCESSING_FAILED,
                                           detail, type(event).__name__))  # fmt: skip
                    continue
                entry.state = decision.state
                entry.decided.append(event)
                if entry.applied is not None:
                    entry.applied[f"{delivered.topic}:{delivered.partition}"] = delivered.offset
                outputs.extend(encoded)
                for note in decision.notes:
                    NOTES.labels(self.agent.name, note.split(" ")[0]).inc()
                if self._parted is not None and self._journal_full(entry):
                    await self._send_and_save(keys, outputs, dead, report)  # steps 3, 4
                    keys, outputs, dead, held = {}, [], [], 0
        await self._send_and_save(keys, outputs, dead, report)  # steps 3, 4
        return report

    def _journal_full(self, entry: _Key[S]) -> bool:
        """Whether a parted key's changes so far make a journal to write now (see above)."""
        if len(entry.decided) >= self.journal_inputs_max:
            return True
        if entry.state is None:
            return False
        unsaved: int = self.agent.unsaved(entry.state)  # type: ignore[attr-defined]
        return unsaved >= self.journal_parts_max

    async def _send_and_save(
        self,
        keys: dict[str, _Key[S]],
        outputs: list[_Record],
        dead: list[DeadLettered],
        report: BatchReport,
    ) -> None:
        """Steps 3 and 4 for the keys decided so far."""
        # 3. Send outputs and dead letters; wait for every acknowledgement.
        report.dead_lettered += len(dead)
        report.emitted += len(outputs)
        acks: list[Awaitable[object]] = [await self.door.send_dead(d) for d in dead]
        for out in outputs:
            acks.append(
                await self.producer.send(out.topic, out.value, key=out.key, partition=out.partition)
            )
        await asyncio.gather(*acks)
        # 4. Save what changed; wait for those acknowledgements.
        writes, keep = self._changes(keys)
        if writes:
            assert self.table is not None
            await self.table.save(writes, self.producer)
        report.saved += len(writes)
        parted = self._parted
        for key, (stored, state) in keep.items():
            weight = None if parted is None else len(stored) + parted.parts_bytes(key)
            self.cache.put(key, stored, state, weight)

    def _load(self, key: str) -> _Key[S]:
        raw = self.table.get(key) if self.table is not None else None
        parted = self._parted
        if raw is None and parted is not None:
            raw, _, _ = parted.parted(key)  # its first batch's journal, cut short
        if raw is None:
            return _Key(None, None, applied=None if parted is None else {})
        state = self.cache.take(key, raw)
        if state is not None:  # cached once its batch's writes were all acknowledged
            applied = None if parted is None else _offsets(parted.get(part_key(key, APPLIED)))
            return _Key(raw, state, applied=applied)
        pending: dict[str, bytes | None] = {}
        state = self._decode(key, raw, pending)
        if parted is None:
            return _Key(raw, state)
        written = pending[APPLIED] if APPLIED in pending else parted.get(part_key(key, APPLIED))
        return _Key(raw, state, pending=pending, applied=_offsets(written))

    def _decode(self, key: str, raw: bytes, pending: dict[str, bytes | None] | None = None) -> S:
        """The state stored as `raw`; a parted one as its last batch left it, journal applied
        (its changes still to write added to `pending`)."""
        if self._parted is not None:
            entry, parts, unwritten = self._parted.parted(key)
            parts.pop(APPLIED, None)  # the batch's own, not the agent's
            if pending is not None:
                pending.update(unwritten)
            loaded: S = self.agent.load_parted(key, entry or raw, parts)  # type: ignore[attr-defined]
            return loaded
        return self.agent.load(key, raw)

    def _replay(self, key: str, entry: _Key[S]) -> S | None:
        """The key's state after this batch's inputs decided so far, from the stored bytes."""
        state = self._decode(key, entry.stored) if entry.stored is not None else None
        for event in entry.decided:
            state = self.agent.decide(key, state, event).state
        return state

    def _changes(
        self, keys: dict[str, _Key[S]]
    ) -> tuple[list[tuple[str, bytes | None]], dict[str, tuple[bytes, S]]]:
        """The changelog writes that save what changed, in order (for a parted state: its
        journal, its parts kept, its entry, its parts gone, the journal deleted), and what
        the cache keeps once they are acknowledged."""
        writes: list[tuple[str, bytes | None]] = []
        keep: dict[str, tuple[bytes, S]] = {}
        for key, entry in keys.items():
            if entry.state is None or self.table is None:
                continue
            if not entry.decided and entry.stored is not None and not entry.pending:
                keep[key] = (entry.stored, entry.state)  # nothing decided: as it was loaded
                continue
            dumped = self.agent.dump(entry.state)
            if dumped is None:
                continue  # nothing known worth keeping (e.g. a step for a stranger)
            raw, parts = (
                (dumped.entry, dumped.parts) if isinstance(dumped, Stored) else (dumped, {})
            )
            # A parted state read from its first batch's journal alone has no entry stored yet.
            missing = isinstance(dumped, Stored) and self.table.get(key) is None
            if isinstance(dumped, Stored):
                # A batch cut short left its journal: its changes are written again with ours.
                parts = {**entry.pending, **parts}
                if (parts or raw != entry.stored) and entry.applied is not None:
                    # With what its inputs changed (an input that changed nothing decides
                    # alike when redelivered).
                    parts[APPLIED] = json.dumps(entry.applied, sort_keys=True).encode()
            journaled = isinstance(dumped, Stored) and (parts or raw != entry.stored or missing)
            if journaled:
                # The journal first: one record with the whole change set, so a process that
                # dies after any prefix of these writes leaves the state as before the batch
                # (no journal) or, read with the journal, as after it; deleted last (ADR 17,
                # addendum). Between them, parts kept before the entry and parts gone after it.
                writes.append((part_key(key, JOURNAL), journal(raw, parts)))
                writes += [(part_key(key, n), v) for n, v in parts.items() if v is not None]
            if raw != entry.stored or missing:
                writes.append((key, raw))
            else:
                raw = entry.stored  # the table's own object: the next lookup matches by identity
            if journaled:
                writes += [(part_key(key, n), v) for n, v in parts.items() if v is None]
                writes.append((part_key(key, JOURNAL), None))
            keep[key] = (raw, entry.state)
        return writes, keep

    def _encode(self, output: Event | Output) -> _Record:
        """The bytes an output is sent as, where to."""
        if isinstance(output, Output):
            event, topic, partition = output.event, output.topic, output.partition
        else:
            event, topic, partition = output, output.topic, None
            counter = self._outputs.get(type(output))
            if counter is None:
                counter = self._outputs[type(output)] = OUTPUTS.labels(
                    self.agent.name, type(output).__name__
                )
            counter.inc()
        return _Record(self.topic_name(topic), event.partition_key().encode(),
                       self.codec.encode(event), partition)  # fmt: skip


def _offsets(stored: bytes | None) -> dict[str, int]:
    """A parted state's `table.APPLIED` part: topic:partition → the last offset decided."""
    return {} if stored is None else dict(json.loads(stored))
