"""What a batch of offer events becomes in the offer tables, before any database is involved."""

from datetime import timedelta
from decimal import Decimal

from processors.contract.offers import BehaviourProgress, OfferCompleted, OfferProgressed
from projections.writers import offers
from tests.builders import T0


def completed(event_id: str = "c1", **changes) -> OfferCompleted:
    fields = {
        "event_id": event_id, "occurred_at": T0, "member_id": "M1", "offer_id": "OFFER_1",
        "in_control_group": False, "cause_event_id": "tx-1", "transaction_id": "T1",
        "use_number": 1, "program_id": "MAIN", "points_due": 100, "points_awarded": 100,
    }  # fmt: skip
    return OfferCompleted(**{**fields, **changes})


def progressed(event_id: str, cents: int, **changes) -> OfferProgressed:
    fields = {
        "event_id": event_id, "occurred_at": T0, "member_id": "M1", "offer_id": "OFFER_1",
        "in_control_group": False, "cause_event_id": f"cause-{event_id}", "use_number": 1,
        "progress": [BehaviourProgress(behaviour_index=0, metric="SPEND_CENTS",
                                       progress=Decimal(cents), threshold=Decimal(10000))],
    }  # fmt: skip
    return OfferProgressed(**{**fields, **changes})


def test_a_completion_becomes_one_row_with_every_field_of_the_event():
    rows = offers.rows_of([completed(tier=2, multiples=3, discount_cents=25)])
    assert rows.completions == [
        ("c1", "M1", "OFFER_1", 1, 3, 2, "MAIN", 100, 100, 25, False, "T1", "tx-1", T0)
    ]


def test_a_completion_seen_twice_in_a_batch_is_one_row():
    rows = offers.rows_of([completed(), completed()])
    assert len(rows.completions) == 1


def test_the_newest_progress_of_an_offer_wins_whatever_the_order_in_the_batch():
    later = T0 + timedelta(hours=1)
    rows = offers.rows_of([progressed("p2", 700, occurred_at=later), progressed("p1", 300)])
    [(member, offer, use, progress, at)] = rows.progress.values()
    assert (member, offer, use, at) == ("M1", "OFFER_1", 1, later)
    assert progress.obj == [
        {"behaviour_index": 0, "metric": "SPEND_CENTS", "progress": "700.000",
         "threshold": "10000.000"}
    ]  # fmt: skip


def test_at_one_time_the_later_use_then_the_later_event_wins():
    given = [
        progressed("p2", 100, use_number=2),
        progressed("p1", 900),
        progressed("p3", 200, use_number=2),
    ]
    rows = offers.rows_of(given)
    [(_, _, use, progress, _)] = rows.progress.values()
    assert (use, progress.obj[0]["progress"]) == (2, "200.000")


def test_loaded_offers_are_passed_over_and_targeting_and_budgets_go_to_performance():
    from processors.contract.offers import OfferBudgetExhausted, OfferLoaded, OfferTargeted
    from projections.writers import performance

    assert OfferLoaded in offers.PASSED_OVER
    assert {OfferTargeted, OfferBudgetExhausted} <= set(performance.EVENTS)
