"""Test vs control before any database: what a batch becomes in the offer performance tables,
(the rates, per-member figures and uplifts are computed in SQL, by `offer_performance_rows()`,
and checked on real Postgres by tests/integration/test_offer_performance.py)."""

from datetime import timedelta
from decimal import Decimal

from processors.contract.common import Source, Store
from processors.contract.offers import BudgetExhaustion, OfferBudgetExhausted, OfferTargeted
from processors.contract.transactions import ReturnedLine, TransactionReturned
from projections.writers import performance
from tests.builders import T0, purchase
from tests.cart_given import offers, program


def targeted(member: str, *, control: bool = False, at=T0, event_id=None) -> OfferTargeted:
    return OfferTargeted(
        event_id=event_id or f"targeted-{member}", occurred_at=at, member_id=member,
        offer_id="TVC", in_control_group=control, cause_event_id="published-TVC",
    )  # fmt: skip


def returned(return_id="R1", *, member_id="M1", cents=(300, 200), at=T0) -> TransactionReturned:
    lines = [
        ReturnedLine(line_id=str(n), quantity=Decimal(1), amount_cents=amount)
        for n, amount in enumerate(cents, start=1)
    ]
    return TransactionReturned(
        event_id=f"returned-{return_id}", occurred_at=at, return_id=return_id,
        transaction_id="T1", member_id=member_id, market="CA", currency="CAD",
        source=Source.INSTORE, store=Store(store_id="S1", province="QC"), lines=lines,
    )  # fmt: skip


def test_a_targeting_becomes_one_audience_row_and_the_first_of_the_log_holds():
    later = targeted("M1", control=True, at=T0 + timedelta(days=1), event_id="again")

    rows = performance.rows_of([targeted("M1"), later, targeted("M1")])

    assert list(rows.audience.values()) == [("TVC", "M1", False, T0)]


def test_a_member_purchase_is_one_row_with_its_spend_as_the_sum_of_its_lines():
    rows = performance.rows_of([purchase(), purchase(occurred_at=T0 + timedelta(hours=1))])

    assert [row[:5] for row in rows.transactions.values()] == [("M1", "T1", "CA", T0, 1030)]
    assert [row[5].obj for row in rows.transactions.values()] == [{"1": 1030}]  # by line


def test_an_anonymous_purchase_has_nobody_to_compare_and_is_left_out():
    rows = performance.rows_of([purchase(member_id=None)])

    assert rows.transactions == {}


def test_a_member_return_is_one_row_with_its_refund_as_the_sum_of_its_lines():
    later = returned(cents=(999,), at=T0 + timedelta(hours=1))

    rows = performance.rows_of([returned(), later, returned("R2", cents=(100,))])

    assert [row[:5] for row in rows.returns.values()] == [
        ("R1", "T1", "M1", 500, T0),  # the first of the log holds: a redelivery is a no-op
        ("R2", "T1", "M1", 100, T0),  # a second return of the same purchase is its own row
    ]
    assert [row[5].obj for row in rows.returns.values()] == [{"1": 300, "2": 200}, {"1": 100}]


def test_a_return_is_kept_even_before_its_purchase_and_an_anonymous_one_is_left_out():
    rows = performance.rows_of([returned(), returned("R2", member_id=None), purchase()])

    assert list(rows.returns) == ["R1"]
    assert list(rows.transactions) == [("M1", "T1")]


def test_returns_are_written_by_this_projection_and_stored_as_a_table():
    assert TransactionReturned in performance.EVENTS
    assert TransactionReturned not in performance.PASSED_OVER
    assert "member_returns" in performance.TABLES


def test_config_events_are_kept_in_log_order_to_be_folded_one_by_one():
    events = [program(), *offers()]

    rows = performance.rows_of(events)

    assert rows.config == events


def test_a_spent_budget_is_kept_once_per_event_for_analysts():
    spent = OfferBudgetExhausted(
        event_id="OBE-1", occurred_at=T0, offer_id="OFFER_X", reason=BudgetExhaustion.USES_SPENT,
        uses_granted=1000, points_granted=100_000, uses_total_max=1000, last_member_id="M9",
        request_event_id="REQ-9",
    )  # fmt: skip
    rows = performance.rows_of([spent, spent])
    assert list(rows.exhaustions.values()) == [
        ("OBE-1", "OFFER_X", "USES_SPENT", 1000, 100_000, 1000, None, T0)
    ]
    assert "offer_budget_exhaustions" in performance.TABLES
