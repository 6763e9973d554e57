"""Readable builders for ledger rule tests: programmes, members and what they do."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from processors.contract.activities import ActivityKind, ActivityRecorded
from processors.contract.base import Event
from processors.contract.clock import DayStarted
from processors.contract.common import PointsCategory, Source, Store
from processors.contract.config import (
    ExpiryPolicy,
    ExpiryPolicyKind,
    GlobalExclusion,
    PointsRedemptionRule,
    ProgramConfigured,
    PromisedPointsPolicy,
    PromisedPointsRelease,
)
from processors.contract.enrolments import (
    ImportedBalance,
    MemberEnrolled,
    MemberProfile,
    MembersMerged,
)
from processors.contract.ledger import LedgerEventRecorded
from processors.contract.redemptions import (
    PointsRedemptionRequested,
    PointsTransferRequested,
    ProgramAllocation,
)
from processors.contract.transactions import (
    ReturnedLine,
    TransactionCompleted,
    TransactionLine,
    TransactionReturned,
)
from processors.rules.ledger.handle import Programs, handle
from processors.rules.ledger.state import MemberLedger

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # 10:00 in Toronto
PROGRAM = "CA_MAIN"


def program(program_id: str = PROGRAM, **changes: Any) -> ProgramConfigured:
    """1 point per dollar, no expiry, REGULAR only, 100 points buy $1."""
    fields: dict[str, Any] = {
        "event_id": f"cfg-{program_id}",
        "occurred_at": T0 - timedelta(days=30),
        "program_id": program_id,
        "name": program_id,
        "market": "CA",
        "currency": "CAD",
        "time_zone": "America/Toronto",
        "categories": [PointsCategory.REGULAR],
        "points_per_currency_unit": Decimal("1"),
        "expiry": ExpiryPolicy(kind=ExpiryPolicyKind.NONE),
        "global_exclusions": [GlobalExclusion(province="QC", skus=["LOTTO"])],
        "points_redemption": PointsRedemptionRule(points_per_block=100, cents_per_block=100),
    }
    return ProgramConfigured(**{**fields, **changes})


def expiring_after(days: int) -> ExpiryPolicy:
    return ExpiryPolicy(kind=ExpiryPolicyKind.DAYS_AFTER_EARN, days=days)


def promised_for(days: int) -> PromisedPointsPolicy:
    return PromisedPointsPolicy(release=PromisedPointsRelease.AFTER_DAYS, hold_days=days)


def promised_until(kind: ActivityKind) -> PromisedPointsPolicy:
    return PromisedPointsPolicy(release=PromisedPointsRelease.ON_ACTIVITY, activity_kind=kind)


def programs(*configs: ProgramConfigured) -> Programs:
    return {config.program_id: config for config in (configs or (program(),))}


def enrolled(
    member: str,
    *,
    programs: Iterable[str] = (PROGRAM,),
    at: datetime = T0,
    imported: Iterable[ImportedBalance] = (),
) -> MemberEnrolled:
    return MemberEnrolled(
        event_id=f"enrol-{member}",
        occurred_at=at,
        member_id=member,
        market="CA",
        program_ids=list(programs),
        source=Source.APP,
        profile=MemberProfile(first_name=member),
        imported_balances=list(imported),
    )


def line(line_id: str, cents: int, sku: str = "SKU", quantity: str = "1") -> TransactionLine:
    return TransactionLine(
        line_id=line_id,
        sku=sku,
        quantity=Decimal(quantity),
        unit_price_cents=cents,
        amount_cents=cents,
    )


def bought(
    member: str,
    tx: str,
    *lines: TransactionLine,
    cents: int = 0,
    at: datetime = T0,
    province: str = "ON",
) -> TransactionCompleted:
    return TransactionCompleted(
        event_id=f"tx-{tx}",
        occurred_at=at,
        transaction_id=tx,
        transaction_number=f"N{tx}",
        member_id=member,
        market="CA",
        currency="CAD",
        source=Source.INSTORE,
        store=Store(store_id="S1", province=province),
        till_id="T1",
        lines=list(lines) or [line("1", cents)],
    )


def returned(
    member: str, tx: str, return_id: str, *lines: tuple[str, int], at: datetime = T0
) -> TransactionReturned:
    return TransactionReturned(
        event_id=f"ret-{return_id}",
        occurred_at=at,
        return_id=return_id,
        transaction_id=tx,
        member_id=member,
        market="CA",
        currency="CAD",
        source=Source.INSTORE,
        store=Store(store_id="S1", province="ON"),
        lines=[ReturnedLine(line_id=i, quantity=Decimal(1), amount_cents=c) for i, c in lines],
    )


def redeem(
    member: str,
    points: int,
    command: str = "c1",
    *,
    tx: str | None = None,
    at: datetime = T0,
    **per_program: int,
) -> PointsRedemptionRequested:
    allocations = per_program or {PROGRAM: points}
    return PointsRedemptionRequested(
        event_id=f"req-{command}",
        occurred_at=at,
        command_id=command,
        member_id=member,
        allocations=[ProgramAllocation(program_id=p, points=n) for p, n in allocations.items()],
        source=Source.APP,
        transaction_id=tx,
        till_id="T9",
    )


def transfer(
    sender: str, recipient: str, points: int, command: str = "t1", at: datetime = T0
) -> PointsTransferRequested:
    return PointsTransferRequested(
        event_id=f"req-{command}",
        occurred_at=at,
        command_id=command,
        member_id=sender,
        recipient_member_id=recipient,
        program_id=PROGRAM,
        points=points,
        source=Source.APP,
    )


def merged(victim: str, survivor: str, at: datetime = T0) -> MembersMerged:
    return MembersMerged(
        event_id=f"merge-{victim}",
        occurred_at=at,
        victim_member_id=victim,
        survivor_member_id=survivor,
        source=Source.BACK_OFFICE,
    )


def day(on: date, ran_at: datetime | None = None) -> DayStarted:
    """The Toronto day `on` started (05:00 UTC in winter, 04:00 in summer)."""
    from zoneinfo import ZoneInfo

    started = datetime(on.year, on.month, on.day, tzinfo=ZoneInfo("America/Toronto")).astimezone(
        UTC
    )
    return DayStarted(
        event_id=f"day-{on}",
        occurred_at=ran_at or started + timedelta(hours=2),
        market="CA",
        business_date=on,
        started_at=started,
    )


def activity(member: str, kind: ActivityKind, at: datetime = T0) -> ActivityRecorded:
    return ActivityRecorded(
        event_id=f"act-{member}-{kind.value}",
        occurred_at=at,
        member_id=member,
        kind=kind,
        source=Source.APP,
    )


class Ledgers:
    """Several members' states, with cross-member steps delivered like the processor does."""

    def __init__(self, configs: Programs | None = None):
        self.programs = configs or programs()
        self.states: dict[str, MemberLedger] = {}
        self.emitted: list[Event] = []

    def apply(self, *messages: Event) -> list[Event]:
        """Apply messages, deliver internal steps to their member, return everything emitted."""
        out: list[Event] = []
        queue = list(messages)
        while queue:
            message = queue.pop(0)
            # The clock is keyed by market; the processor fans each day out to every member.
            members = (
                list(self.states) if isinstance(message, DayStarted) else [message.partition_key()]
            )
            for member in members:
                result = handle(self.states.get(member), message, self.programs)  # type: ignore[arg-type]
                if result.state is not None:
                    self.states[member] = result.state
                for event in result.emitted:
                    out.append(event)
                    if event.topic == "loyalty.internal.ledger-steps.v1":
                        queue.append(event)
        self.emitted += out
        return out

    def ledger(self, member: str) -> list[LedgerEventRecorded]:
        return [
            e for e in self.emitted if isinstance(e, LedgerEventRecorded) and e.member_id == member
        ]

    def balance(
        self,
        member: str,
        category: PointsCategory = PointsCategory.REGULAR,
        program_id: str = PROGRAM,
    ) -> int:
        return self.states[member].balance(program_id, category)


def only(events: list[Event], kind: type) -> Any:
    matching = [e for e in events if isinstance(e, kind)]
    assert len(matching) == 1, f"expected one {kind.__name__}, got {matching}"
    return matching[0]
