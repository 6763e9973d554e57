"""Throttles answering 429 with `Retry-After`: one sliding window of counted times per key.

- Against guessing promo codes (issue #13; docs/adr/0026-promo-code-api.md): more than
  `failures_max` failed code validations in a minute from one member, client (the token's
  subject) or address answer 429 on the code endpoints.
- Against flooding the analysts' table (issue #14; docs/adr/0025-offer-feeds.md): more than
  `events_max` app events a minute from one member or address answer 429 on
  `POST /v1/offer-feed/events`, which anyone may call without a token.

In-process: the windows live in this API process's memory. N API processes let a caller N
times as many; the windows are lost at a restart. Both are accepted for now (the keyspace is
100× the codes issued, ADR 23; an app event costs one row); a shared counter (Postgres or
Redis) is the follow-up when the API runs wide. Owns the windows and the 429; never decides
what is counted (the routes do) and reads time only through the clock it is given.
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
FEED_EVENTS_MAX_DEFAULT = 120
"""App events a minute per member or address: an offers page shown and clicked twice a
second, far above what a person does, far below a flood."""
KEYS_MAX = 100_000
"""Keys kept at most: past it, the keys last counted longest ago are forgotten first."""

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


FEED_EVENTS_THROTTLED = Counter(
    "loyalty_api_feed_events_throttled_total",
    "App events answered 429 on POST /v1/offer-feed/events: too many in a minute.",
    ["route", "by"],
)


class TooManyRequestsError(ApiError):
    """429: too many of what the throttle counts from this caller in the last minute."""

    def __init__(self, what: str, by: str, retry_after: int) -> None:
        super().__init__(
            429,
            "too_many_requests",
            f"too many {what} from this {by} in the last minute: try again in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )


class Throttle:
    """Counted times per key ("member:M1", "client:alice", "address:10.0.0.1"): 429 once a key
    has `limit` of them in `window`. `what` names them in the 429; `counted` (by route)
    and `throttled` (by route and key kind) are its metrics."""

    def __init__(
        self,
        limit: int = FAILURES_MAX_DEFAULT,
        window: timedelta = WINDOW,
        *,
        what: str = "failed code validations",
        counted: Counter | None = FAILURES,
        throttled: Counter = THROTTLED,
    ) -> None:
        self.limit = limit
        self.window = window
        self.what = what
        self._counted = counted
        self._throttled = throttled
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

    def check(self, keys: Iterable[str], now: datetime, *, route: str, asking: int = 1) -> None:
        """429 when any key has fewer than `asking` tries left in the window (a cart's codes are
        as many tries: one request must not make more guesses than the limit allows)."""
        for key in keys:
            times = self._recent(key, now)
            if len(times) + asking > self.limit:
                # Retry when enough of the counted tries have left the window.
                freed = min(len(times) + asking - self.limit, len(times))
                left = (times[freed - 1] if freed else now) + self.window - now
                by = key.partition(":")[0]
                self._throttled.labels(route, by).inc()
                raise TooManyRequestsError(self.what, by, max(1, math.ceil(left.total_seconds())))

    def count(self, keys: Iterable[str], now: datetime, *, route: str, count: int = 1) -> None:
        """Count `count` at `now` under every key (failed validations, app events)."""
        if count <= 0:
            return
        if self._counted is not None:
            self._counted.labels(route).inc(count)
        for key in keys:
            times = self._recent(key, now)
            times.extend([now] * count)
            # Re-inserted: the dict stays ordered by last count, so the first key is the
            # oldest and forgetting it costs nothing, however many keys a flood brings.
            self._failures.pop(key, None)
            self._failures[key] = times
        while len(self._failures) > KEYS_MAX:
            del self._failures[next(iter(self._failures))]


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
