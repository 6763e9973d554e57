"""Topic `loyalty.clock.v1`: the business calendar, one tick per market and day, keyed by market.

Time-based work (expiry, birthdays, promised-points conversion, delayed targeting, offer start
and end) runs on these ticks, never on the wall clock, so a replay from offset 0 decides the
same way (DESIGN.md §2)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import ClassVar, Self

from pydantic import Field, model_validator

from processors.base import topics
from processors.contract.base import Event, Market, UtcDatetime

TOPIC = topics.CLOCK.name

# Local midnight is at most 14 hours from UTC midnight (UTC-12 to UTC+14).
_MAX_UTC_OFFSET = timedelta(hours=14)


class DayStarted(Event):
    """A new business day started in a market."""

    topic: ClassVar[str] = TOPIC
    key_field: ClassVar[str] = "market"

    market: Market = Field(description="The market whose day started (the record key).")
    business_date: date = Field(description="The market's local calendar date that started.")
    started_at: UtcDatetime = Field(
        description="The instant the day started: local midnight of business_date, in UTC. "
        "occurred_at is when the tick was emitted, which may be later (a catch-up)."
    )

    @model_validator(mode="after")
    def _check_start_matches_date(self) -> Self:
        utc_midnight = datetime(
            self.business_date.year, self.business_date.month, self.business_date.day, tzinfo=UTC
        )
        if abs(self.started_at - utc_midnight) > _MAX_UTC_OFFSET:
            raise ValueError("started_at must be local midnight of business_date (within 14 h)")
        if self.started_at > self.occurred_at:
            raise ValueError("a day's tick cannot be emitted before the day started")
        return self
