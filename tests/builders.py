"""Builders for test data: small, readable "given" helpers shared by the suites."""

from datetime import UTC, datetime
from decimal import Decimal

from processors.contract.common import Source, Store
from processors.contract.transactions import Tender, TransactionCompleted, TransactionLine

T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def purchase(**changes) -> TransactionCompleted:
    """A member's one-line purchase of 2 × 5.15 at store S1 (QC); override any field."""
    fields = {
        "event_id": "e-1",
        "occurred_at": T0,
        "transaction_id": "T1",
        "member_id": "M1",
        "market": "CA",
        "currency": "CAD",
        "source": Source.INSTORE,
        "store": Store(store_id="S1", province="QC"),
        "lines": [
            TransactionLine(
                line_id="1",
                sku="SKU-1",
                quantity=Decimal("2"),
                unit_price_cents=515,
                amount_cents=1030,
            ),
        ],
        "tenders": [Tender(type="CARD", amount_cents=1030)],
    }
    return TransactionCompleted(**{**fields, **changes})
