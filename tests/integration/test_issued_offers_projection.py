"""The issued offers projection on real Postgres, through `projection.apply`: the worker's own
events for a reward-store purchase, a lock and the transaction that used it (from the
simulator) give one wallet row that ends USED, whichever topic the projector reads first, and
a redelivery changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from processors.base import topics
from processors.contract.base import Event
from processors.contract.offers import OfferCompleted
from processors.contract.outcomes import RequestAccepted
from tests.integration.test_projections_ledger import drop_schema, new_schema, select
from tests.integration.test_reward_projection import apply, hash_of
from tests.rules.given import T0
from tests.rules.test_reward_stores import MUFFIN, buy, engine, lock, paid_with, unlock

pytestmark = pytest.mark.integration

ROW = (
    "SELECT member_id, offer_id, reward_store_id, points_spent, status, transaction_id,"
    " locked_until, discount_cents FROM member_issued_offers"
)


@pytest.fixture
def schemas(database_url) -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    for name in made:
        drop_schema(database_url, name)


def bought_locked_used() -> tuple[list[Event], list[Event]]:
    """The outcomes (purchase, lock) and the offers topic's completion of one instance."""
    sim = engine()
    out = sim.feed(buy())
    (bought,) = [e for e in out if isinstance(e, RequestAccepted)]
    assert bought.issued_offer_id is not None
    out += sim.feed(lock(bought.issued_offer_id, "T-A"))
    out += sim.feed(paid_with("T-A", bought.issued_offer_id, at=T0 + timedelta(minutes=5)))
    outcomes = [e for e in out if isinstance(e, RequestAccepted)]
    completions = [e for e in out if isinstance(e, OfferCompleted)]
    return outcomes, completions


def test_purchase_lock_and_use_give_one_row_whatever_the_order(database_url, schemas):
    outcomes, completions = bought_locked_used()
    assert len(outcomes) == 2
    assert len(completions) == 1
    first, second = new_schema(database_url), new_schema(database_url)
    schemas += [first, second]
    apply(database_url, first, (topics.OUTCOMES.name, outcomes))
    apply(database_url, first, (topics.OFFERS.name, completions))
    apply(database_url, second, (topics.OFFERS.name, completions))
    apply(database_url, second, (topics.OUTCOMES.name, outcomes))

    rows = select(database_url, first, ROW)
    assert rows == [("m1", MUFFIN, "CAFE", 300, "USED", "T-A", None, 200)]
    assert select(database_url, second, ROW) == rows
    assert hash_of(database_url, first) == hash_of(database_url, second)


def test_an_instance_only_bought_is_issued(database_url, schemas):
    outcomes, _ = bought_locked_used()
    schema = new_schema(database_url)
    schemas.append(schema)
    apply(database_url, schema, (topics.OUTCOMES.name, outcomes[:1]))
    apply(database_url, schema, (topics.OUTCOMES.name, outcomes[:1]))  # redelivered elsewhere
    assert select(database_url, schema, "SELECT status, command_id FROM member_issued_offers") == [
        ("ISSUED", "p1")
    ]


def test_a_lock_released_by_its_cancelled_order_shows_the_instance_issued_again(
    database_url, schemas
):
    sim = engine()
    out = sim.feed(buy())
    (bought,) = [e for e in out if isinstance(e, RequestAccepted)]
    assert bought.issued_offer_id is not None
    out += sim.feed(lock(bought.issued_offer_id, "T-A", at=T0 + timedelta(minutes=1)))
    out += sim.feed(unlock(bought.issued_offer_id, "T-A", at=T0 + timedelta(minutes=2)))
    outcomes = [e for e in out if isinstance(e, RequestAccepted)]
    assert len(outcomes) == 3
    in_order, reversed_ = new_schema(database_url), new_schema(database_url)
    schemas += [in_order, reversed_]
    apply(database_url, in_order, (topics.OUTCOMES.name, outcomes))
    for n, outcome in enumerate(reversed(outcomes)):  # each its own batch, newest first
        apply(database_url, reversed_, (f"{topics.OUTCOMES.name}-{n}", [outcome]))

    rows = select(database_url, in_order, ROW)
    assert rows == [("m1", MUFFIN, "CAFE", 300, "ISSUED", None, None, None)]
    assert select(database_url, reversed_, ROW) == rows
