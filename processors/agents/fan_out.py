"""The fan-out agents: events that every member partition must see, copied to each partition
of an internal topic the member agent reads. They only route; the rules decide.

- `Days`: each `DayStarted` (loyalty.clock.v1, one partition) to every partition of the
  clock-ticks topic, so the daily run reaches every member;
- `ConfigFanOut`: from the config topic, each publication with a static audience to every
  partition of the offer-targeting topic, as an `OfferTargetingTick` keyed by the offer, so
  members who never act are decided too (ADR 13); and each batch of reward codes to its
  reward's partition of the reward-stock topic (ADR 20).
Both admit their records at the front door first: a bad record is dead-lettered once, with
its own topic, partition and offset, never copied.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from processors.base.topics import CLOCK_TICKS, OFFER_TARGETING
from processors.config_feed import ConfigFeed
from processors.contract.base import Event
from processors.contract.clock import DayStarted
from processors.contract.config import OfferPublished, RewardCodesAdded
from processors.frontdoor import Delivered
from processors.rules.offers.targeting import targeting_tick
from processors.rules.rewards import stock
from processors.runtime.batch import Decision, Output
from processors.runtime.table import Table


class Days:
    """`DayStarted` → every partition of the clock ticks (its key stays the market)."""

    name = "days"

    def __init__(self, partitions: int):
        self.partitions = partitions

    async def prepare(self, records: Sequence[Delivered]) -> None:
        return None

    def keys(self, event: Event, delivered: Delivered, table: Table | None) -> Iterable[str]:
        return ("",) if isinstance(event, DayStarted) else ()

    def decide(self, key: str, state: None, event: Event) -> Decision[None]:
        copies = [Output(CLOCK_TICKS.name, event, p) for p in range(self.partitions)]
        return Decision(None, copies)

    def load(self, key: str, raw: bytes) -> None:
        return None

    def dump(self, state: None) -> bytes | None:
        return None


class ConfigFanOut:
    """A publication with a static audience → an `OfferTargetingTick` on every partition; a
    batch of reward codes → `RewardCodesStocked` for the reward's agent."""

    name = "config-fan-out"

    def __init__(self, feed: ConfigFeed, partitions: int):
        self.feed = feed
        self.partitions = partitions

    async def prepare(self, records: Sequence[Delivered]) -> None:
        # The members' partitions judge the offer from their process's copy of the catalogue,
        # which reads the same topic: let this copy catch up first. A member that misses it
        # is decided at its first behaviour.
        await self.feed.ready.wait()
        await self.feed.catch_up(timeout=5.0)

    def keys(self, event: Event, delivered: Delivered, table: Table | None) -> Iterable[str]:
        # Other config events are the config feed's.
        return ("",) if isinstance(event, OfferPublished | RewardCodesAdded) else ()

    def decide(self, key: str, state: None, event: Event) -> Decision[None]:
        if isinstance(event, RewardCodesAdded):
            return Decision(None, [stock.stocked(event)])
        assert isinstance(event, OfferPublished)
        tick = targeting_tick(event)
        if tick is None:
            return Decision(None)  # no static audience to decide
        copies = [Output(OFFER_TARGETING.name, tick, p) for p in range(self.partitions)]
        return Decision(None, copies)

    def load(self, key: str, raw: bytes) -> None:
        return None

    def dump(self, state: None) -> bytes | None:
        return None
