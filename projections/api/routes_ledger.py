"""`/v1/members/{id}/ledger`, `/ledger/closing-balance` and `/balance`: a member's points.

Each handler: the caller is authorised for the member (`auth`), the query parameters become a
`LedgerView` (`views`), one pooled connection (one read-only snapshot) answers the queries
(`ledger_queries`), and the rows become a response body (`schemas`). Owns the endpoints'
behaviour (404 for an unknown member, what "no filter" means); never writes SQL itself.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from psycopg import AsyncConnection

from processors.contract.common import PointsCategory, Source
from processors.contract.ledger import EntryType
from projections.api import ledger_queries as queries
from projections.api.auth import MemberId
from projections.api.errors import NotFoundError, refusals
from projections.api.identifiers import ProgramIdQuery, TillIdQuery
from projections.api.schemas import (
    AccountBalance,
    AsOf,
    CategoryBalance,
    ClosingBalance,
    Customer,
    Entry,
    Filters,
    LedgerEvent,
    LedgerPage,
    Lot,
    MemberBalance,
    Page,
    ProgramBalance,
)
from projections.api.views import (
    PAGE_SIZE_MAX,
    LedgerView,
    decode_cursor,
    encode_cursor,
    ledger_view,
)

router = APIRouter(prefix="/v1/members/{member_id}", tags=["ledger"])

_REFUSALS = refusals(
    400,
    401,
    403,
    404,
    414,
    503,
    described={
        403: "forbidden: a member token on another member's path",
        404: "not_found: no such member",
        503: "database_unavailable: retry after `Retry-After`",
    },
)


def requested_view(
    request: Request,
    source: Annotated[Source | None, Query(description="Only events from this channel.")] = None,
    till_id: TillIdQuery = None,
    recorded_from: Annotated[
        str | None,
        Query(
            alias="from",
            description="RFC 3339; events recorded at or after it. Default: 7 days before `to`.",
        ),
    ] = None,
    recorded_to: Annotated[
        str | None,
        Query(alias="to", description="RFC 3339; events recorded at or before it. Default: now."),
    ] = None,
    entry_type: Annotated[
        EntryType | None, Query(description="Only events with such entries, and only those.")
    ] = None,
    category: Annotated[
        PointsCategory | None,
        Query(description="Only events touching this points category, and only its entries."),
    ] = None,
    program_id: ProgramIdQuery = None,
    include_till_concept_events: Annotated[
        bool,
        Query(
            alias="includeTillConceptEvents",
            description="With program_id: show group redemptions at a till that touch the "
            "programme whole, with every programme's entries.",
        ),
    ] = False,
) -> LedgerView:
    """The ledger view the query parameters name (shared by the ledger and its balance)."""
    now: datetime = request.app.state.clock()
    return ledger_view(
        now=now,
        source=source,
        till_id=till_id,
        recorded_from=recorded_from,
        recorded_to=recorded_to,
        entry_type=entry_type,
        category=category,
        program_id=program_id,
        include_till_concept_events=include_till_concept_events,
    )


View = Annotated[LedgerView, Depends(requested_view)]


def _connection(request: Request) -> AbstractAsyncContextManager[AsyncConnection[Any]]:
    # One connection per request: its one transaction is one consistent, read-only snapshot.
    pool = request.app.state.pool
    return pool.connection()  # type: ignore[no-any-return]


async def _known_member(conn: AsyncConnection[Any], member_id: str) -> queries.Member:
    member = await queries.find_member(conn, member_id)
    if not member.exists:
        raise NotFoundError(f"no member '{member_id}'")
    return member


def _filters(view: LedgerView) -> Filters:
    return Filters(
        source=view.source.value if view.source is not None else None,
        till_id=view.till_id,
        recorded_from=view.recorded_from,
        recorded_to=view.recorded_to,
        entry_type=view.entry_type.value if view.entry_type is not None else None,
        category=view.category.value if view.category is not None else None,
        program_id=view.program_id,
        include_till_concept_events=view.include_till_concept_events,
    )


def _customer(member: queries.Member) -> Customer:
    profile = member.profile or {}
    return Customer(
        member_id=member.member_id,
        first_name=profile.get("first_name"),
        last_name=profile.get("last_name"),
        market=profile.get("market"),
        status=profile.get("status"),
        merged_into=profile.get("merged_into"),
    )


@router.get(
    "/ledger", summary="Ledger events with their entries, chronological", responses=_REFUSALS
)
async def read_ledger(
    request: Request,
    member_id: MemberId,
    view: View,
    limit: Annotated[
        int, Query(ge=1, le=PAGE_SIZE_MAX, description="Events per page, at most 10.")
    ] = PAGE_SIZE_MAX,
    cursor: Annotated[
        str | None, Query(description="`page.next_cursor` of the previous page.")
    ] = None,
) -> LedgerPage:
    """One page of the member's ledger in ascending sequence (keyset pagination)."""
    after_sequence = decode_cursor(cursor) if cursor is not None else None
    async with _connection(request) as conn:
        member = await _known_member(conn, member_id)
        page = await queries.ledger_page(
            conn, member_id, view, after_sequence=after_sequence, limit=limit
        )
    events = [
        LedgerEvent(**{**event, "entries": [Entry(**entry) for entry in event["entries"]]})
        for event in page.events
    ]
    next_cursor = encode_cursor(events[-1].sequence) if page.has_more else None
    return LedgerPage(
        customer=_customer(member),
        page=Page(
            limit=limit, has_more=page.has_more, next_cursor=next_cursor, filters=_filters(view)
        ),
        events=events,
    )


@router.get(
    "/ledger/closing-balance",
    summary="Balance as of the last event of a ledger view",
    responses=_REFUSALS,
)
async def read_closing_balance(request: Request, member_id: MemberId, view: View) -> ClosingBalance:
    """The balances as they stood after the view's last event.

    The view is the whole filtered ledger (no paging). Accounts are narrowed by `program_id`
    and `category`; the other filters only choose the last event. With no filter at all, the
    member's current balances.
    """
    async with _connection(request) as conn:
        await _known_member(conn, member_id)
        if view.is_unfiltered:
            as_of = await queries.last_event(conn, member_id)
            rows = await queries.current_balances(conn, member_id)
        else:
            as_of = await queries.last_event_of_view(conn, member_id, view)
            rows = (
                []
                if as_of is None
                else await queries.balances_as_of(
                    conn,
                    member_id,
                    as_of["sequence"],
                    program_id=view.program_id,
                    category=view.category.value if view.category is not None else None,
                )
            )
    balances = [AccountBalance(**row) for row in rows]
    return ClosingBalance(
        member_id=member_id,
        as_of=AsOf(**as_of) if as_of is not None else None,
        filters=None if view.is_unfiltered else _filters(view),
        balances=balances,
        total_points=sum(balance.balance for balance in balances),
    )


@router.get(
    "/balance", summary="Balances per programme and category, with lots", responses=_REFUSALS
)
async def read_balance(request: Request, member_id: MemberId) -> MemberBalance:
    """Current balances, each split into lots by expiry (earliest first, never-expiring last)."""
    async with _connection(request) as conn:
        await _known_member(conn, member_id)
        rows = await queries.balances_with_lots(conn, member_id)
    # Rows come ordered by programme, category, expiry: grouping keeps that order.
    balances: dict[tuple[str, str], int] = {}
    lots: dict[tuple[str, str], list[Lot]] = {}
    for row in rows:
        account = (row["program_id"], row["category"])
        balances[account] = row["balance"]
        lots.setdefault(account, [])
        if row["points"] is not None:
            lots[account].append(Lot(expires_at=row["expires_at"], points=row["points"]))
    categories: dict[str, list[CategoryBalance]] = {}
    for (program_id, category), balance in balances.items():
        categories.setdefault(program_id, []).append(
            CategoryBalance(category=category, balance=balance, lots=lots[(program_id, category)])
        )
    programs = [
        ProgramBalance(
            program_id=program_id,
            total_points=sum(account.balance for account in accounts),
            categories=accounts,
        )
        for program_id, accounts in categories.items()
    ]
    return MemberBalance(member_id=member_id, programs=programs)
