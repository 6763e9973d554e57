"""The member agent: every member-keyed input (enrolments, transactions, activities,
redemptions, the internal ledger steps, clock ticks and targeting ticks) through the member
rules (`processors.rules.member`: ledger and offers), one member's state at a time.

A clock or targeting tick reaches every member the partition holds: it is decided once per
member of the table's partition it arrived on.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from processors.base.logs import get_logger
from processors.config_feed import ConfigFeed
from processors.contract.base import Event
from processors.contract.clock import DayStarted
from processors.contract.deadletter import DeadLetterReason
from processors.contract.targeting import OfferTargetingTick
from processors.frontdoor import Delivered
from processors.rules import identity
from processors.rules import member as rules
from processors.rules.member import Config, MemberState
from processors.rules.refusals import InputRefused
from processors.runtime.batch import Decision, Refused
from processors.runtime.table import Table

log = get_logger(__name__)


class Members:
    """Decides member inputs on `config` (programmes and offers), which `feed` keeps current;
    without a feed the configuration is fixed (benchmarks, tests)."""

    name = "members"

    def __init__(self, config: Config, feed: ConfigFeed | None = None, *fresh_config_topics: str):
        self.config = config
        self.feed = feed
        self.fresh_config_topics = frozenset(fresh_config_topics)

    async def prepare(self, records: Sequence[Delivered]) -> None:
        if self.feed is None:
            return
        await self.feed.ready.wait()
        # A targeting tick names an offer published a moment ago, an enrolment a programme
        # configured a moment ago (and is refused if the programme is unknown): the feed must
        # know them first.
        fresh = any(record.topic in self.fresh_config_topics for record in records)
        started = time.perf_counter()
        if fresh and not await self.feed.catch_up():
            log.warning("members.config_behind", reason="an input before its configuration")
        if fresh:
            log.debug("members.config_caught_up", seconds=round(time.perf_counter() - started, 3))

    def keys(self, event: Event, delivered: Delivered, table: Table | None) -> Iterable[str]:
        if isinstance(event, DayStarted | OfferTargetingTick):
            assert table is not None
            return table.keys_in(delivered.partition)
        return (event.partition_key(),)

    def decide(self, key: str, state: MemberState | None, event: Event) -> Decision[MemberState]:
        try:
            outcome = rules.handle(state or MemberState(key), event, self.config)  # type: ignore[arg-type]
        except identity.ConflictError as conflict:
            raise Refused(DeadLetterReason.CONFLICT, str(conflict), conflict.kind) from None
        except InputRefused as refused:
            raise Refused(DeadLetterReason.REFUSED, str(refused), refused.reason) from None
        return Decision(outcome.state, outcome.emitted, outcome.notes)

    def load(self, key: str, raw: bytes) -> MemberState:
        return rules.load_state(key, raw)

    def dump(self, state: MemberState) -> bytes | None:
        return None if rules.is_empty(state) else rules.dump_state(state)
