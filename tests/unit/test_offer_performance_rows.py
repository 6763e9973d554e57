"""Test vs control before any database: what a batch becomes in the offer performance tables,
and the arithmetic of rates, per-member figures and uplifts (DESIGN.md §5.16)."""

from datetime import timedelta
from decimal import Decimal

from processors.contract.common import Source, Store
from processors.contract.offers import BudgetExhaustion, OfferBudgetExhausted, OfferTargeted
from processors.contract.transactions import ReturnedLine, TransactionReturned
from projections.api.routes_performance import compare, group
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

    assert list(rows.transactions.values()) == [("M1", "T1", "CA", T0, 1030)]


def test_an_anonymous_purchase_has_nobody_to_compare_and_is_left_out():
    rows = performance.rows_of([purchase(member_id=None)])

    assert rows.transactions == {}


def test_a_member_return_is_one_row_with_its_refund_as_the_sum_of_its_lines():
    later = returned(cents=(999,), at=T0 + timedelta(hours=1))

    rows = performance.rows_of([returned(), later, returned("R2", cents=(100,))])

    assert list(rows.returns.values()) == [
        ("R1", "T1", "M1", 500, T0),  # the first of the log holds: a redelivery is a no-op
        ("R2", "T1", "M1", 100, T0),  # a second return of the same purchase is its own row
    ]


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


def test_a_ratio_is_rounded_once_half_up_to_four_places_and_none_for_an_empty_group():
    assert performance.ratio(2, 8) == Decimal("0.2500")
    assert performance.ratio(2, 3) == Decimal("0.6667")
    assert performance.ratio(1, 16) == Decimal("0.0625")
    assert performance.ratio(1, 32) == Decimal("0.0313")  # 0.03125, half up
    assert performance.ratio(0, 0) is None


def test_uplift_is_the_relative_difference_of_per_member_figures():
    # Test: 6 of 8 qualify (0.75); control: 1 of 2 (0.5): (0.75 - 0.5) / 0.5.
    assert performance.uplift((6, 8), (1, 2)) == Decimal("0.5000")
    # Test spends less per member than control: 3000 / 8 = 375 against 1000 / 2 = 500.
    assert performance.uplift((3000, 8), (1000, 2)) == Decimal("-0.2500")
    # One division of integers: (7 * 3 - 2 * 9) / (2 * 9) = 3 / 18, not from rounded ratios.
    assert performance.uplift((7, 9), (2, 3)) == Decimal("0.1667")


def test_uplift_has_no_value_without_a_baseline():
    assert performance.uplift((6, 8), (0, 0)) is None  # empty control group
    assert performance.uplift((0, 0), (1, 2)) is None  # empty test group
    assert performance.uplift((6, 8), (0, 2)) is None  # control figure 0


def test_a_group_and_the_comparison_from_the_sums_the_api_reads():
    # members, qualifying, redemptions, visits, spend, points due, awarded, discount
    test = group((8, 3, 4, 10, 50_000, 400, 300, 0))
    control = group((2, 1, 1, 2, 9_000, 100, 0, 0))

    assert (test.qualifying_rate, test.redemptions_per_member) == (
        Decimal("0.3750"),
        Decimal("0.5000"),
    )
    assert (test.visits_per_member, test.spend_per_member_cents) == (
        Decimal("1.2500"),
        Decimal("6250.0000"),
    )
    uplift = compare(test, control)
    assert uplift.qualifying_rate == Decimal("-0.2500")  # 0.375 against 0.5
    assert uplift.redemptions_per_member == Decimal("0.0000")  # 0.5 against 0.5
    assert uplift.visits_per_member == Decimal("0.2500")  # 1.25 against 1
    assert uplift.spend_per_member == Decimal("0.3889")  # 6250 against 4500


def test_an_empty_control_group_gives_figures_for_test_and_no_uplift():
    test = group((8, 3, 4, 10, 50_000, 400, 300, 0))
    control = group((0, 0, 0, 0, 0, 0, 0, 0))

    assert control.qualifying_rate is None
    assert control.spend_per_member_cents is None
    assert compare(test, control).model_dump() == {
        "qualifying_rate": None,
        "redemptions_per_member": None,
        "visits_per_member": None,
        "spend_per_member": None,
    }


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
