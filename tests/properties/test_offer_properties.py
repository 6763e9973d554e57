"""The offer evaluator over random offers and shopping histories: deterministic, independent of
the order offers were published in, never negative points, never a reversal of more than was
awarded, never a discount above its line or the cart."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, reject, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from processors.contract.config import OfferPublished
from processors.contract.offer_definition import (
    Behaviour,
    DiscountKind,
    OfferReward,
    ProductSelection,
)
from processors.contract.transactions import TransactionCompleted, TransactionReturned
from processors.rules.offers import retention
from processors.rules.offers.catalogue import Catalogue
from processors.rules.offers.evaluate import (
    Evaluation,
    enrol,
    evaluate_cart,
    on_return,
    on_transaction,
)
from tests.rules.given import T0, enrolled, program
from tests.rules.offers.given_offers import (
    discount,
    flat,
    give_back,
    item,
    multiplier,
    offer,
    purchase,
    quantity,
    spend,
    usage,
    visits,
)

SKUS = ["A", "B", "C"]
PROGRAMS = {"CA_MAIN": program(base_points_per_transaction_max=400)}


@st.composite
def behaviours(draw: st.DrawFn) -> Behaviour:
    products = draw(
        st.sampled_from(
            [None, ProductSelection(skus=draw(st.sets(st.sampled_from(SKUS), min_size=1)))]
        )
    )
    kind = draw(st.sampled_from(["spend", "quantity", "visits"]))
    accumulated = draw(st.booleans())
    if kind == "spend":
        return spend(draw(st.integers(100, 5000)), accumulated=accumulated, products=products)
    if kind == "quantity":
        return quantity(
            str(draw(st.integers(1, 5))),
            products or ProductSelection(skus=SKUS),
            accumulated=accumulated,
        )
    return visits(draw(st.integers(1, 3)), spend_min=draw(st.none() | st.integers(100, 2000)))


@st.composite
def rewards(draw: st.DrawFn) -> OfferReward:
    return draw(
        st.sampled_from(
            [
                flat(draw(st.integers(1, 500))),
                flat(draw(st.integers(1, 500)), for_every=True),
                multiplier(draw(st.sampled_from(["1.5", "2", "3"]))),
                discount(
                    DiscountKind.PERCENT_OFF_CART, percent_off=Decimal(draw(st.integers(1, 100)))
                ),
                discount(DiscountKind.AMOUNT_OFF_CART, amount_off_cents=draw(st.integers(1, 5000))),
                discount(
                    DiscountKind.AMOUNT_OFF_ITEMS,
                    amount_off_cents=draw(st.integers(1, 5000)),
                    products=ProductSelection(skus=["A"]),
                    for_every=draw(st.booleans()),
                ),
            ]
        )
    )


@st.composite
def offers(draw: st.DrawFn, n: int) -> OfferPublished:
    reward = draw(rewards())
    changes: dict[str, Any] = {
        "rank": draw(st.integers(1, 9)),
        "stacking_group": draw(st.sampled_from([None, "G"])),
    }
    if reward.kind.value != "DISCOUNT":
        changes["usage"] = usage(
            **draw(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "uses_per_member_max": st.integers(1, 3),
                        "points_per_member_max": st.integers(1, 1000),
                        "points_per_transaction_max": st.integers(1, 300),
                    },
                )
            )
        )
    try:
        return offer(f"OFFER_{n}", draw(behaviours()), reward=reward, **changes)
    except ValidationError:
        reject()


@st.composite
def histories(draw: st.DrawFn) -> list[TransactionCompleted | TransactionReturned]:
    events: list[TransactionCompleted | TransactionReturned] = []
    bought: list[TransactionCompleted] = []
    for n in range(draw(st.integers(1, 6))):
        if bought and draw(st.booleans()):
            tx = draw(st.sampled_from(bought))
            line = draw(st.sampled_from(tx.lines))
            cents = draw(st.integers(0, line.amount_cents))
            events.append(
                give_back(
                    tx.transaction_id,
                    f"R{n}",
                    (line.line_id, cents),
                    at=tx.occurred_at + timedelta(hours=1),
                )
            )
            continue
        lines = [
            item(
                str(i),
                draw(st.integers(0, 8000)),
                draw(st.sampled_from(SKUS)),
                quantity=str(draw(st.integers(1, 4))),
                discount_cents=draw(st.integers(0, 500)),
            )
            for i in range(draw(st.integers(1, 4)))
        ]
        tx = purchase(f"T{n}", *lines, at=T0 + timedelta(days=n))
        bought.append(tx)
        events.append(tx)
    return events


def ends_in(catalogue: Catalogue):  # type: ignore[no-untyped-def]
    return lambda offer_id: retention.end_of(catalogue.definition(offer_id), None)


def _run(
    catalogue_offers: list[OfferPublished], history: list[Any]
) -> list[tuple[Any, Evaluation]]:
    catalogue = Catalogue(catalogue_offers)
    state = enrol(None, enrolled("m1"))
    out = []
    for event in history:
        if isinstance(event, TransactionCompleted):
            cart = evaluate_cart(state, event, catalogue, PROGRAMS)
            out.append((event, cart))
            out.append(
                (event, on_transaction(state, event, catalogue, PROGRAMS, ends_in(catalogue)))
            )
        else:
            out.append((event, on_return(state, event, catalogue, PROGRAMS)))
    return out


def _dump(results: list[tuple[Any, Any]]) -> list[Any]:
    return [
        (
            [e.model_dump() for e in result.events],
            result.awards,
            getattr(result, "reversals", []),
            result.discounts,
        )
        for _, result in results
    ]


SETTINGS = settings(max_examples=150, deadline=None)


@SETTINGS
@given(
    st.lists(st.integers(0, 10**6), min_size=1, max_size=5, unique=True).flatmap(
        lambda ns: st.tuples(
            st.tuples(*(offers(n) for n in ns)), histories(), st.permutations(range(len(ns)))
        )
    )
)
def test_evaluation_is_deterministic_and_independent_of_publish_order(case: Any) -> None:
    published, history, order = case
    first = _run(list(published), history)
    again = _run(list(published), history)
    shuffled = _run([published[i] for i in order], history)
    assert _dump(first) == _dump(again) == _dump(shuffled)


@SETTINGS
@given(
    st.lists(st.integers(0, 10**6), min_size=1, max_size=5, unique=True).flatmap(
        lambda ns: st.tuples(st.tuples(*(offers(n) for n in ns)), histories())
    )
)
def test_points_never_go_negative_and_discounts_never_exceed_what_they_apply_to(case: Any) -> None:
    published, history = case
    awarded: dict[str, int] = defaultdict(int)
    for event, result in _run(list(published), history):
        for award in result.awards:
            assert award.points > 0
        if isinstance(result, Evaluation):
            for award in result.awards:
                awarded[award.completed_event_id] += award.points
            for reversal in result.reversals:
                assert reversal.points > 0
                awarded[reversal.completed_event_id] -= reversal.points
                assert awarded[reversal.completed_event_id] >= 0, "reversed more than awarded"
        if isinstance(event, TransactionCompleted):
            # At the till the discount was already taken: lines are priced before it. A cart's
            # lines are priced as the cart sends them.
            at_till = isinstance(result, Evaluation)
            gross = {
                line.line_id: line.amount_cents + (line.discount_cents if at_till else 0)
                for line in event.lines
            }
            per_line: dict[str, int] = defaultdict(int)
            for line_discount in result.discounts:
                assert line_discount.cents > 0
                per_line[line_discount.line_id] += line_discount.cents
            assert all(per_line[i] <= gross[i] for i in per_line)
            assert sum(per_line.values()) <= sum(gross.values())
    assert all(points >= 0 for points in awarded.values())
