"""Holds that count until a time: the one home of "how many reservations still count at `at`"
(DESIGN.md §5.25). A promotion's code reservations (`codes.uses`) and an offer's reserved uses
(`offers.budget`) are both kept as key → hold with an `until`; a request asks how many of them
count at its time, by label (a code, a member) or in all.

Counting them by scanning every hold made each request cost as much as the holds kept: a
shared code reserved 100 times a second with a 15-minute time-to-live keeps tens of thousands,
and each request scanned them all (measured: a third of the worker's time at 200
reservations a second, docs/performance.md). `LiveHolds` keeps the counts instead, derived
from the state's own mapping and never stored: a hold is counted when it is added, uncounted
when it is dropped or lapses (a heap by time). Times come from requests, so they may go back a
little: a request up to `STEP_BACK` earlier than the latest adds the holds that lapsed since
its time (kept aside as they lapse); only one earlier still rebuilds the counts by one scan
(found in review: with two API processes the times interleave, and a rebuild on every step
back cost a scan again). Lapsed holds are forgotten in one sweep once the oldest is due, not on
every request. Pure, like the rules that use it: no clock, times are the requests'.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter, deque
from collections.abc import Callable, Hashable, Iterable
from datetime import datetime, timedelta
from typing import Generic, Protocol, TypeVar


class Hold(Protocol):
    """Anything kept until a time."""

    until: datetime


H = TypeVar("H", bound=Hold)

STEP_BACK = timedelta(minutes=5)
"""How far before the latest time asked a request's time may be and still be counted without
a rebuild (the tills' and API processes' requests arrive a little out of time order)."""


FORGOTTEN_AT_ONCE = 1_000
"""The most lapsed holds one sweep forgets (the rest on the next ones): a state quiet for a
week after a rush of abandoned baskets would otherwise forget tens of thousands in one batch,
one journal record past the broker's record size limit (docs/adr/0017-worker-runtime.md)."""


class LiveHolds(Generic[H]):
    """The holds of `holds` that count at the latest time asked, by label (see the module).

    Every change to `holds` goes through `hold`, `drop`, `extend` and `forget`; `holds` is the
    state's own mapping, changed in place, so the state serialises as before. Derived data:
    two states are equal whatever their counts' cache holds (`__eq__`).
    """

    def __init__(self, holds: dict[str, H], labels: Callable[[H], Iterable[Hashable]]) -> None:
        self.holds = holds
        self._labels = labels
        self._at: datetime | None = None  # None: not counted yet (built at the first `count`)
        self._counted: dict[str, H] = {}
        self._counts: Counter[Hashable] = Counter()
        self._lapses: list[tuple[datetime, int, str]] = []
        self._order = itertools.count()
        # The holds uncounted as time passed, oldest first, back to `_back_to`: a request whose
        # time is a little earlier than the last one adds those still counting at its time
        # instead of rebuilding every count.
        self._lapsed: deque[tuple[datetime, str, H]] = deque()
        self._back_to: datetime | None = None
        self._earliest: datetime | None = min((h.until for h in holds.values()), default=None)
        self._changed: set[str] = set()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LiveHolds)

    __hash__ = None  # type: ignore[assignment]

    def over(self, holds: dict[str, H]) -> bool:
        """Whether these are the counts of `holds` (the very mapping, not an equal one)."""
        return self.holds is holds

    def changed(self) -> list[str]:
        """The keys held, dropped or extended since the last call, in order: what a state
        that stores each hold on its own writes (`runtime.batch.Stored`)."""
        keys, self._changed = sorted(self._changed), set()
        return keys

    def unsaved(self) -> int:
        """How many keys `changed` would return now."""
        return len(self._changed)

    def count(self, at: datetime, label: Hashable | None = None) -> int:
        """The holds counting at `at` (`until` after it) with `label`, or in all (None)."""
        counted = self._counts
        if self._at is not None and self._back_to is not None and self._back_to <= at < self._at:
            return counted[(None,) if label is None else label] + self._lapsed_since(at, label)
        self._advance(at)
        return counted[(None,) if label is None else label]

    def hold(self, key: str, hold: H) -> None:
        """Keep `hold` under `key` (replacing what was there)."""
        self._uncount(key)
        self.holds[key] = hold
        self._changed.add(key)
        if self._earliest is None or hold.until < self._earliest:
            self._earliest = hold.until
        if self._at is not None and hold.until > self._at:
            self._count(key, hold)
        elif self._back_to is not None and hold.until > self._back_to:
            self._back_to = hold.until  # not among the lapsed: earlier times count afresh

    def drop(self, key: str) -> H | None:
        """Stop keeping the hold under `key` (committed or released); the hold, if any."""
        self._uncount(key)
        dropped = self.holds.pop(key, None)
        if dropped is not None:
            self._changed.add(key)
        return dropped

    def extend(self, key: str, until: datetime) -> None:
        """Keep the hold under `key` until `until` (later than its own time)."""
        hold = self.holds[key]
        counted = key in self._counted
        self._uncount(key)
        hold.until = until
        self._changed.add(key)
        if counted or (self._at is not None and until > self._at):
            self._count(key, hold)
        elif self._back_to is not None and until > self._back_to:
            self._back_to = until  # not among the lapsed as it now stands

    def forget(self, at: datetime, after: timedelta, most: int = FORGOTTEN_AT_ONCE) -> None:
        """Drop the holds that lapsed more than `after` before `at`: one sweep, once the
        earliest of them is due; at most `most` of them, the earliest (the rest stay due)."""
        if self._earliest is None or self._earliest + after > at:
            return
        due = [k for k, h in self.holds.items() if h.until + after <= at]
        if len(due) > most:
            due = heapq.nsmallest(most, due, key=lambda k: (self.holds[k].until, k))
        for key in due:
            self.drop(key)
        self._earliest = min((h.until for h in self.holds.values()), default=None)

    def _advance(self, at: datetime) -> None:
        if self._at is None or at < self._at:
            self._rebuild(at)
            return
        self._at = at
        while self._lapses and self._lapses[0][0] <= at:
            until, _, key = heapq.heappop(self._lapses)
            counted = self._counted.get(key)
            if counted is not None and counted.until == until:  # else replaced or extended
                self._uncount(key)
                self._lapsed.append((until, key, counted))
        horizon = at - STEP_BACK
        while self._lapsed and self._lapsed[0][0] <= horizon:
            self._lapsed.popleft()
        if self._back_to is not None and self._back_to < horizon:
            self._back_to = horizon

    def _lapsed_since(self, at: datetime, label: Hashable | None) -> int:
        """The holds uncounted since `at` that still count at it (held, unchanged, not
        counted again), with `label` (None: all)."""
        found = 0
        for until, key, hold in reversed(self._lapsed):
            if until <= at:
                break
            if (
                self.holds.get(key) is hold
                and hold.until == until
                and key not in self._counted
                and (label is None or label in self._labels(hold))
            ):
                found += 1
        return found

    def _rebuild(self, at: datetime) -> None:
        self._at = at
        self._back_to = at
        self._lapsed.clear()
        self._counted.clear()
        self._counts.clear()
        self._lapses.clear()
        for key, hold in self.holds.items():
            if hold.until > at:
                self._count(key, hold)

    def _count(self, key: str, hold: H) -> None:
        self._counted[key] = hold
        self._counts[(None,)] += 1
        for label in self._labels(hold):
            self._counts[label] += 1
        heapq.heappush(self._lapses, (hold.until, next(self._order), key))

    def _uncount(self, key: str) -> None:
        hold = self._counted.pop(key, None)
        if hold is None:
            return
        self._counts[(None,)] -= 1
        for label in self._labels(hold):
            self._counts[label] -= 1
