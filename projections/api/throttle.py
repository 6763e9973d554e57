"""A throttle against guessing promo codes (issue #13; docs/adr/0026-promo-code-api.md): more
than `failures_max` failed code validations in a minute from one member, client (the token's
subject) or address answer 429 with `Retry-After` on the code endpoints, counted in metrics.

In-process: a sliding window of failure times per key, in this API process's memory. N API
processes let a guesser N times as many tries; the window is lost at a restart. Both are
accepted for now (the keyspace is 100× the codes issued, ADR 23); a shared counter (Postgres
or Redis) is the follow-up when the API runs wide. Owns the windows and the 429; never decides
what a failure is (the routes do) and reads time only through the clock it is given.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from datetime import datetime, timedelta

from prometheus_client import Counter

from projections.api.errors import ApiError

WINDOW = timedelta(minutes=1)
FAILURES_MAX_DEFAULT = 10
KEYS_MAX = 100_000
"""Keys kept at most: past it, the keys whose last failure is oldest are forgotten first."""

FAILURES = Counter(
    "loyalty_api_code_validation_failures_total",
    "Promo codes that failed validation on the code endpoints (unknown, not yet valid, expired).",
    ["route"],
)
THROTTLED = Counter(
    "loyalty_api_code_requests_throttled_total",
    "Requests to the code endpoints answered 429: too many failed code validations in a minute.",
    ["route", "by"],
)


class TooManyFailuresError(ApiError):
    """429: too many failed code validations from this caller in the last minute."""

    def __init__(self, by: str, retry_after: int) -> None:
        super().__init__(
            429,
            "too_many_requests",
            f"too many failed code validations from this {by} in the last minute: try again "
            f"in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )


class CodeThrottle:
    """Failure times per key ("member:M1", "client:alice", "address:10.0.0.1")."""

    def __init__(self, failures_max: int = FAILURES_MAX_DEFAULT, window: timedelta = WINDOW):
        self.failures_max = failures_max
        self.window = window
        self._failures: dict[str, deque[datetime]] = {}

    def _recent(self, key: str, now: datetime) -> deque[datetime]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def check(self, keys: Iterable[str], now: datetime, *, route: str) -> None:
        """429 when any key already has `failures_max` failures in the window."""
        for key in keys:
            times = self._recent(key, now)
            if len(times) >= self.failures_max:
                left = times[-self.failures_max] + self.window - now
                by = key.partition(":")[0]
                THROTTLED.labels(route, by).inc()
                raise TooManyFailuresError(by, max(1, math.ceil(left.total_seconds())))

    def failed(self, keys: Iterable[str], now: datetime, *, route: str, count: int = 1) -> None:
        """Record `count` failed validations at `now` under every key."""
        if count <= 0:
            return
        FAILURES.labels(route).inc(count)
        for key in keys:
            times = self._recent(key, now)
            times.extend([now] * count)
            self._failures[key] = times
        while len(self._failures) > KEYS_MAX:
            oldest = min(self._failures, key=lambda k: self._failures[k][-1])
            del self._failures[oldest]


def caller_keys(*, member_id: str | None, subject: str | None, address: str | None) -> list[str]:
    """The keys a request is counted under: its member, its token's subject, its address."""
    keys = []
    if member_id is not None:
        keys.append(f"member:{member_id}")
    if subject is not None:
        keys.append(f"client:{subject}")
    if address is not None:
        keys.append(f"address:{address}")
    return keys
