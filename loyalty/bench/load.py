"""The benchmarks' load: one programme, N members, and purchases spread over them, the same
records for every benchmark that measures the ledger (`ledger`, `pure`) and the chaos runs'
programme. Deterministic: a purchase's content follows from its number."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from processors.contract.common import PointsCategory, Source, Store
from processors.contract.config import ExpiryPolicy, ExpiryPolicyKind, ProgramConfigured
from processors.contract.enrolments import MemberEnrolled, MemberProfile
from processors.contract.transactions import TransactionCompleted, TransactionLine

START = datetime(2026, 1, 5, 14, 0, tzinfo=UTC)
PROGRAM_ID = "BENCH"


def program() -> ProgramConfigured:
    """1 point per dollar, points good for a year."""
    return ProgramConfigured(
        event_id="bench-program",
        occurred_at=START - timedelta(days=1),
        program_id=PROGRAM_ID,
        name="Bench",
        market="CA",
        currency="CAD",
        time_zone="America/Toronto",
        categories=[PointsCategory.REGULAR],
        points_per_currency_unit=Decimal("1"),
        expiry=ExpiryPolicy(kind=ExpiryPolicyKind.DAYS_AFTER_EARN, days=365),
    )


def member(m: int) -> str:
    return f"BM{m:06d}"


def enrolment(m: int) -> MemberEnrolled:
    return MemberEnrolled(
        event_id=f"bench-enrol-{m}", occurred_at=START, member_id=member(m), market="CA",
        program_ids=[PROGRAM_ID], source=Source.APP, profile=MemberProfile(first_name="Bench"),
    )  # fmt: skip


def purchase(n: int, members: int) -> TransactionCompleted:
    """Purchase number `n`, by member `n % members`: one line of $10.00 to $19.96."""
    line = TransactionLine(
        line_id="1",
        sku=f"SKU-{n % 50}",
        quantity=Decimal(1),
        unit_price_cents=1000 + n % 997,
        amount_cents=1000 + n % 997,
    )
    return TransactionCompleted(
        event_id=f"bench-tx-{n}",
        occurred_at=START + timedelta(seconds=n),
        transaction_id=f"BT{n}",
        member_id=member(n % members),
        market="CA",
        currency="CAD",
        source=Source.INSTORE,
        store=Store(store_id="S1", province="ON"),
        lines=[line],
    )
