"""When an offer is live, and whether its end date may move (DESIGN.md §5.10, §5.11; seed 003,
"Offer end date extension (hold over)").

Pure: the time of a request is its event's business time, passed in, so a replay decides the
same way. This module never changes an offer; the catalogue applies an extension it allows.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from processors.contract.config import OfferPublished
from processors.contract.offer_definition import one_evergreen

LAST_MINUTE: Final = timedelta(hours=24)
"""Seed 003: "Last-minute changes (within 24 hours of the current offer end date) aren't
possible"."""


class ExtensionRefusal(StrEnum):
    """Why an end-date extension is refused: stable codes, in the order they are checked."""

    FEATURE_DISABLED = "FEATURE_DISABLED"
    OFFER_COMPLETED = "OFFER_COMPLETED"
    NOT_LIVE = "NOT_LIVE"
    START_DATE_IMMUTABLE = "START_DATE_IMMUTABLE"
    BEFORE_START = "BEFORE_START"
    NOT_LATER = "NOT_LATER"
    WITHIN_24_HOURS = "WITHIN_24_HOURS"

    @property
    def sentence(self) -> str:
        """What the refusal means, for a person."""
        return _SENTENCES[self]

    def explained(self) -> str:
        """The code and its sentence, e.g. `NOT_LATER: only extensions are allowed: ...`."""
        return f"{self.value}: {self.sentence}"


_SENTENCES: Final = {
    ExtensionRefusal.FEATURE_DISABLED: "offers can be extended only if the feature is enabled "
    "for the offer's programme; it is disabled by default",
    ExtensionRefusal.OFFER_COMPLETED: "the end date of a completed offer can't be changed",
    ExtensionRefusal.NOT_LIVE: "only a live offer's end date can be extended",
    ExtensionRefusal.START_DATE_IMMUTABLE: "the start date can't be edited",
    ExtensionRefusal.BEFORE_START: "the end date can't be changed to a date before the start date",
    ExtensionRefusal.NOT_LATER: "only extensions are allowed: the new end date must be later "
    "than the current end date",
    ExtensionRefusal.WITHIN_24_HOURS: "last-minute changes, within 24 hours of the current "
    "end date, aren't possible",
}


def is_live(offer: OfferPublished, at: datetime, *, ends_at: datetime | None = None) -> bool:
    """Whether behaviour at `at` counts: `starts_at <= at < ends_at` in business time.

    `ends_at` is the offer's current end when an extension has moved it; by default the
    published one.
    """
    end = offer.schedule.ends_at if ends_at is None else ends_at
    return offer.schedule.starts_at <= at < end


def extension_refusal(
    offer: OfferPublished,
    current_ends_at: datetime,
    new_ends_at: datetime,
    *,
    at: datetime,
    enabled: bool,
    completed: bool,
    starts_at: datetime | None = None,
) -> str | None:
    """Why moving the offer's end from `current_ends_at` to `new_ends_at`, asked at `at`, is
    refused (`"CODE: sentence"`, the code an `ExtensionRefusal`), or None when it is allowed.

    `enabled` is the programme's `offer_end_date_extension_enabled`; `completed` is the
    caller's fact that the offer has run its course (withdrawn, or its uses or budget spent).
    `starts_at`, when the request states a start, must be the published one. The first rule
    broken, in `ExtensionRefusal` order, is the reason. An end in or after 3001 is "does not
    expire"; an evergreen offer has no later end to move to.
    """
    refusal = _first_refusal(
        offer,
        current_ends_at,
        one_evergreen(new_ends_at),
        at=at,
        enabled=enabled,
        completed=completed,
        starts_at=starts_at,
    )
    return None if refusal is None else refusal.explained()


def _first_refusal(
    offer: OfferPublished,
    current_ends_at: datetime,
    new_ends_at: datetime,
    *,
    at: datetime,
    enabled: bool,
    completed: bool,
    starts_at: datetime | None,
) -> ExtensionRefusal | None:
    published_start = offer.schedule.starts_at
    if not enabled:
        return ExtensionRefusal.FEATURE_DISABLED
    if completed:
        return ExtensionRefusal.OFFER_COMPLETED
    if not is_live(offer, at, ends_at=current_ends_at):
        return ExtensionRefusal.NOT_LIVE
    if starts_at is not None and starts_at != published_start:
        return ExtensionRefusal.START_DATE_IMMUTABLE
    if new_ends_at <= published_start:
        return ExtensionRefusal.BEFORE_START
    if new_ends_at <= current_ends_at:
        return ExtensionRefusal.NOT_LATER
    # The last-minute window is half-open like every window: [end − 24 h, end).
    if at >= current_ends_at - LAST_MINUTE:
        return ExtensionRefusal.WITHIN_24_HOURS
    return None
