"""Uses of shared promo codes set aside for this API process, to answer tills' reservations
without waiting for the promotion's agent (docs/adr/0040-reservations-from-a-lease.md).

A reservation waits for four broker hops and a batch (the request written, the worker's
fetch, its answer written, the answer reader's fetch): p99 of 35–44 ms at 200 a second on a
quiet 2-core host, where `/healthz` alone is at 11–22 ms. For a code the process may judge
alone (`uses.leasable`: no per-member limit, not single-use, not unlocking an offer), the book
holds a lease of the code's uses granted by the promotion's agent, which counts them as taken:

- `take`: one of the lease's uses for a basket, while the lease lasts but its last
  `margin` (no use is assigned then: the request must reach the agent's partition before any
  request timed after the lease's end, whatever the processes' clocks disagree by);
- the reservation request carries the lease's id and is written; once the broker has
  acknowledged it, the till is told "reserved" (the agent will reserve it from the lease,
  never refusing it). An acknowledgement that comes after the margin began waits for the
  agent's answer instead, as any reservation;
- `wanted`: the next lease, asked in the background when the current one is half used or
  half over, so a busy code always has one; one request at a time per code, and after an
  answer of no uses (the promotion's last uses go one by one) or none at all, not again for
  a while.

A process that stops or crashes strands its lease's unassigned uses until the lease ends,
never longer. Holds no I/O itself: the route writes and waits (`code_checks`).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from processors.contract.internal import PromoCodeLeaseRequested, PromoCodeUseRequested
from processors.contract.offers import PromoCodeLeaseAnswered
from processors.rules.arithmetic import derived_id

LEASE_USES = 50
"""Uses asked for in one lease: about half a second of a busy code at 100 reservations a
second, and at most this many stranded by a process that crashes (the agent grants less near
the end of the promotion's uses)."""

LEASE_SECONDS = 20.0
"""How long a lease sets its uses aside."""

LEASE_MARGIN = timedelta(seconds=5)
"""No use is assigned in a lease's last five seconds: more than clocks and the write of a
reservation may take, so the agent has every use the process assigned before it counts the
lease's remaining uses free again (`uses.LEASE_KEPT`)."""

QUIET = timedelta(seconds=5)
"""How long a code is not leased again after an answer of no uses, or none in time."""


def holder_id() -> str:
    """This app among the API's: host, pid, start time and a random part (a restarted
    process, or a second app in one process, is a holder of its own)."""
    started = datetime.now().strftime("%Y%m%dT%H%M%S")
    return f"api-{socket.gethostname()[:60]}-{os.getpid()}-{started}-{uuid.uuid4().hex[:6]}"


@dataclass
class _Held:
    lease_id: str
    left: int
    until: datetime


class LeaseBook:
    """This process's leases, by promotion and code (see the module)."""

    def __init__(
        self,
        holder: str,
        *,
        uses: int = LEASE_USES,
        seconds: float = LEASE_SECONDS,
        margin: timedelta = LEASE_MARGIN,
    ) -> None:
        self.holder = holder
        self.uses = uses
        self.length = timedelta(seconds=seconds)
        self.margin = margin
        self._held: dict[tuple[str, str], list[_Held]] = {}
        self._asking: set[tuple[str, str]] = set()
        self._quiet: dict[tuple[str, str], datetime] = {}
        self._numbers = itertools.count(1)
        self.assigned = 0  # uses assigned to baskets, for the metrics and tests
        self.tasks: set[asyncio.Task[None]] = set()  # the lease requests under way

    def take(self, use: PromoCodeUseRequested, now: datetime) -> str | None:
        """A lease's use for `use`'s basket: the lease's id, or None (no lease with uses)."""
        for held in self._live((use.promotion_id, use.code), now):
            if held.left > 0:
                held.left -= 1
                self.assigned += 1
                return held.lease_id
        return None

    def in_time(self, lease_id: str, now: datetime) -> bool:
        """Whether a use of `lease_id` written by `now` may be answered from the lease."""
        return any(
            held.lease_id == lease_id and now < held.until - self.margin
            for leases in self._held.values()
            for held in leases
        )

    def wanted(self, use: PromoCodeUseRequested, now: datetime) -> PromoCodeLeaseRequested | None:
        """The next lease to ask for `use`'s code, or None (one is asked or not needed)."""
        key = (use.promotion_id, use.code)
        if key in self._asking or self._quiet.get(key, now) > now:
            return None
        live = self._live(key, now)
        left = sum(held.left for held in live)
        lasting = max((held.until - self.margin - now for held in live), default=timedelta(0))
        if left > self.uses // 2 and lasting > self.length / 2:
            return None
        self._asking.add(key)
        lease_id = derived_id("code-lease", self.holder, use.promotion_id, use.code,
                              str(next(self._numbers)))  # fmt: skip
        return PromoCodeLeaseRequested(
            event_id=lease_id, occurred_at=now, promotion_id=use.promotion_id, code=use.code,
            holder=self.holder, uses_wanted=self.uses, leased_until=now + self.length,
            redemptions_per_code_max=use.redemptions_per_code_max,
            redemptions_total_max=use.redemptions_total_max,
        )  # fmt: skip

    def answered(
        self, asked: PromoCodeLeaseRequested, answer: PromoCodeLeaseAnswered | None, now: datetime
    ) -> None:
        """The agent's answer to `asked` (None: none came in time, or it was not written)."""
        key = (asked.promotion_id, asked.code)
        self._asking.discard(key)
        if answer is None or answer.uses_granted == 0:
            self._quiet[key] = now + QUIET
            return
        self._quiet.pop(key, None)
        held = _Held(answer.lease_id, answer.uses_granted, answer.leased_until)
        self._held.setdefault(key, []).append(held)

    def _live(self, key: tuple[str, str], now: datetime) -> list[_Held]:
        """The leases of `key` still assignable at `now` (the others are forgotten)."""
        leases = self._held.get(key)
        if not leases:
            return []
        live = [held for held in leases if now < held.until - self.margin]
        if len(live) != len(leases):
            if live:
                self._held[key] = live
            else:
                del self._held[key]
        return live
