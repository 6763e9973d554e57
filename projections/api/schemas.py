"""Response bodies of the ledger and balance endpoints (also their OpenAPI description).

Field names follow the contract's JSON form (DESIGN.md §6): the same names as
`LedgerEventRecorded`, timestamps RFC 3339 in UTC, points as integers. Owns shapes only;
never queries nor filters.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _utc(value: datetime) -> datetime:
    # Postgres hands timestamptz back in the session's time zone; the contract speaks UTC.
    return value.astimezone(UTC)


Instant = Annotated[datetime, AfterValidator(_utc)]


class Body(BaseModel):
    """A response body: read-only once built."""

    model_config = ConfigDict(frozen=True)


class Customer(Body):
    """Basic details of the member whose ledger this is (null where no profile is known)."""

    member_id: str
    first_name: str | None
    last_name: str | None
    market: str | None
    status: str | None = Field(description="ACTIVE or MERGED; null when no profile is known.")
    merged_into: str | None = Field(description="The survivor, for a merged (victim) member.")


class Entry(Body):
    """One credit or debit of one points account."""

    entry_id: str
    program_id: str
    category: str
    entry_type: str = Field(description="CREDIT adds points, DEBIT takes them.")
    kind: str
    points: int = Field(description="Points moved, always >= 0; entry_type gives the sign.")
    expires_at: Instant | None = Field(description="The lot's expiry (null: never expires).")
    offer_id: str | None


class LedgerEvent(Body):
    """One business event's effect on the member's accounts, with the entries in view."""

    event_log_id: str
    sequence: int = Field(description="Chronological position in the member's ledger.")
    event_type: str
    occurred_at: Instant
    recorded_at: Instant
    source: str
    store_id: str | None
    till_id: str | None
    transaction_id: str | None
    transaction_number: str | None
    related_member_id: str | None
    points_on_event: int = Field(description="Net of all the event's entries, shown or not.")
    entries: list[Entry]


class Filters(Body):
    """The filters applied, with the defaults filled in (the window actually used)."""

    source: str | None
    till_id: str | None
    recorded_from: Instant = Field(serialization_alias="from")
    recorded_to: Instant = Field(serialization_alias="to")
    entry_type: str | None
    category: str | None
    program_id: str | None
    include_till_concept_events: bool = Field(serialization_alias="includeTillConceptEvents")


class Page(Body):
    """Where this page sits: pass `next_cursor` as `cursor` for the next one."""

    limit: int
    has_more: bool
    next_cursor: str | None
    filters: Filters


class LedgerPage(Body):
    """`GET /v1/members/{id}/ledger`."""

    customer: Customer
    page: Page
    events: list[LedgerEvent] = Field(description="Chronological: ascending sequence.")


class AsOf(Body):
    """The ledger event a balance stands after."""

    event_log_id: str
    sequence: int
    recorded_at: Instant


class AccountBalance(Body):
    """One points account's balance."""

    program_id: str
    category: str
    balance: int


class ClosingBalance(Body):
    """`GET /v1/members/{id}/ledger/closing-balance`."""

    member_id: str
    as_of: AsOf | None = Field(
        description="The last event of the view; null when the view holds no event."
    )
    filters: Filters | None = Field(description="Null when no filter was given: current balance.")
    balances: list[AccountBalance]
    total_points: int


class Lot(Body):
    """Points of one account that expire together."""

    expires_at: Instant | None = Field(description="Null: these points never expire.")
    points: int


class CategoryBalance(Body):
    """One points account of a programme, split into lots, earliest expiry first."""

    category: str
    balance: int
    lots: list[Lot]


class ProgramBalance(Body):
    """A programme's accounts and their total."""

    program_id: str
    total_points: int
    categories: list[CategoryBalance]


class MemberBalance(Body):
    """`GET /v1/members/{id}/balance`."""

    member_id: str
    programs: list[ProgramBalance]
