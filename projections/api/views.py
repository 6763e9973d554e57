"""The ledger view a request asks for: its filters, its default window and its page cursor.

Owns the meaning of the query parameters of `/ledger` and `/ledger/closing-balance`: strict
RFC 3339 instants, the default window (the 7 days ending `now`), `from` <= `to`, and the
opaque cursor. Pure: never touches the database, and never reads the clock (`now` is given).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from processors.contract.common import PointsCategory, Source
from processors.contract.ledger import EntryType
from projections.api.errors import BadParameterError

DEFAULT_WINDOW = timedelta(days=7)
PAGE_SIZE_MAX = 10

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})"
)
_CURSOR_PREFIX = "after:"
_SEQUENCE_MAX = 2**31 - 1  # ledger_events.sequence is a Postgres integer


@dataclass(frozen=True)
class LedgerView:
    """One member's ledger seen through the request's filters.

    `recorded_from` and `recorded_to` bound `recorded_at`, both included. The entry filters
    (`entry_type`, `category`, `program_id`) keep the events having at least one matching
    entry and show only those entries; `include_till_concept_events` widens `program_id` to
    the group redemptions that touch the programme (see `ledger_queries`).
    """

    recorded_from: datetime
    recorded_to: datetime
    source: Source | None = None
    till_id: str | None = None
    entry_type: EntryType | None = None
    category: PointsCategory | None = None
    program_id: str | None = None
    include_till_concept_events: bool = False
    is_unfiltered: bool = False
    """True when the request named no filter at all (the window is then the default one)."""

    @property
    def filters_entries(self) -> bool:
        """Whether some events or entries are hidden by an entry-level filter."""
        return any(f is not None for f in (self.entry_type, self.category, self.program_id))

    @property
    def widens_to_till_concept_events(self) -> bool:
        """Whether group redemptions at a till are shown whole (needs a programme filter)."""
        return self.include_till_concept_events and self.program_id is not None


def parse_instant(parameter: str, text: str) -> datetime:
    """An RFC 3339 date-time with an explicit offset, as an aware UTC datetime."""
    if not _RFC3339.fullmatch(text):
        hint = " (send a '+' offset as %2B)" if " " in text else ""
        raise BadParameterError(
            parameter,
            f"must be an RFC 3339 date-time with a time zone, e.g. 2026-11-02T14:31:08Z{hint}",
        )
    try:
        return datetime.fromisoformat(text.upper()).astimezone(UTC)
    except ValueError as error:
        raise BadParameterError(parameter, f"is not a valid date-time: {error}") from None
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00: before year 1 once in UTC
        raise BadParameterError(parameter, "must fall between years 1 and 9999 in UTC") from None


def ledger_view(
    *,
    now: datetime,
    source: Source | None = None,
    till_id: str | None = None,
    recorded_from: str | None = None,
    recorded_to: str | None = None,
    entry_type: EntryType | None = None,
    category: PointsCategory | None = None,
    program_id: str | None = None,
    include_till_concept_events: bool = False,
) -> LedgerView:
    """The view named by the query parameters.

    `to` defaults to `now`, `from` to 7 days before `to`; an explicit `from` after `to` is a
    bad request rather than an empty page, so a swapped pair is noticed.
    """
    end = parse_instant("to", recorded_to) if recorded_to is not None else now.astimezone(UTC)
    start = (
        parse_instant("from", recorded_from) if recorded_from is not None else end - DEFAULT_WINDOW
    )
    if start > end:
        raise BadParameterError(
            "from",
            f"must not be after 'to' ({_rfc3339(start)} > {_rfc3339(end)})",
        )
    given = (source, till_id, recorded_from, recorded_to, entry_type, category, program_id)
    return LedgerView(
        recorded_from=start,
        recorded_to=end,
        source=source,
        till_id=till_id,
        entry_type=entry_type,
        category=category,
        program_id=program_id,
        include_till_concept_events=include_till_concept_events,
        is_unfiltered=all(value is None for value in given),
    )


def encode_cursor(last_sequence: int) -> str:
    """The opaque cursor of the page after the event at `last_sequence`."""
    raw = f"{_CURSOR_PREFIX}{last_sequence}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The ledger sequence a cursor continues after; 400 for anything this API did not issue."""
    refusal = BadParameterError(
        "cursor", "is not a cursor returned by this API (use page.next_cursor)"
    )
    if not cursor or len(cursor) > 64:
        raise refusal
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise refusal from None
    number = raw.removeprefix(_CURSOR_PREFIX)
    if number == raw or not number.isascii() or not number.isdigit() or len(number) > 10:
        raise refusal
    sequence = int(number)
    if sequence > _SEQUENCE_MAX:
        raise refusal
    return sequence


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
