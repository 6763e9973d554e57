"""A cart's capped discount offers at the till (docs/adr/0030-discount-offer-total-uses.md):
when the till asks (`reserve`), each use of a discount offer with a total-uses limit that the
cart would complete is reserved by the offer's agent (DESIGN.md §5.25), the answer awaited in
the projection (`offer_use_reservations`), as promo codes are (`code_checks`).

1. `request`: the cart evaluation names the uses its offers' agents would decide
   (`CartEvaluation.waiting`); each that gives a discount becomes an
   `OfferUseReservationRequested` until now + the app's time-to-live, written through the
   command sink. Its id names the basket, the offer and the time, so a retry of one evaluation
   is one request, and asking again extends the same reservation.
2. `reserve`: the answers are awaited until the wait runs out: heard from Kafka
   (`OfferUseReservationAnswered` naming the request) or found in the `CodeStore` when the
   projector commits one for the member, whichever comes first (`wakeups`, ADR 34): an offer
   without an answer by then is `pending`.
3. The route evaluates the cart again with every offer not reserved closed for this member,
   as a denial closes it in the worker (`OfferProgress.closed`): the till is never told a
   discount the offer's agent did not reserve.
4. `releases`: a cancelled basket gives its reserved offers back
   (`OfferUseReservationReleased`), beside its codes.
Owns no SQL (the `CodeStore` does) and reads no clock (times are given).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime, timedelta

from processors.contract.base import Event
from processors.contract.internal import (
    OfferUseRequested,
    OfferUseReservationReleased,
    OfferUseReservationRequested,
)
from processors.contract.offers import OfferUseReservationAnswered
from processors.rules.arithmetic import derived_id
from processors.rules.offers.state import MemberOffers, OfferProgress
from projections.api.answers import offer_reservation_key
from projections.api.cart_schemas import OfferReservation
from projections.api.code_store import CodeStore, OfferReservationAnswer
from projections.api.commands import CommandSink
from projections.api.wakeups import Asked, Wakeups, member_key


def request(
    use: OfferUseRequested, *, transaction_id: str, now: datetime, ttl: timedelta
) -> OfferUseReservationRequested:
    """The reservation of `use`'s offer for the basket, until `now + ttl`."""
    assert use.uses_total_max is not None  # waiting with a discount: a total-uses limit
    return OfferUseReservationRequested(
        event_id=derived_id("offer-use-reservation-requested", transaction_id, use.offer_id,
                            now.isoformat()),
        occurred_at=now, offer_id=use.offer_id, member_id=use.member_id,
        transaction_id=transaction_id, reserved_until=now + ttl,
        discount_cents=use.discount_cents, uses_total_max=use.uses_total_max,
    )  # fmt: skip


async def answer(store: CodeStore, asked: OfferUseReservationRequested) -> OfferReservation | None:
    """The agent's answer to `asked` as projected; None while it is not there."""
    found = await store.offer_reservation(asked.event_id)
    return None if found is None else _shown(asked, found)


def heard(asked: OfferUseReservationRequested, events: Sequence[Event]) -> OfferReservation | None:
    """The agent's answer to `asked` as heard on Kafka, the same as `answer` reads it."""
    for e in events:
        if isinstance(e, OfferUseReservationAnswered) and e.request_event_id == asked.event_id:
            found = OfferReservationAnswer(
                request_event_id=e.request_event_id, offer_id=e.offer_id,
                transaction_id=e.transaction_id, reserved=e.reserved,
                reserved_until=e.reserved_until, reason=e.reason.value if e.reason else None,
            )  # fmt: skip
            return _shown(asked, found)
    return None


def _shown(asked: OfferUseReservationRequested, found: OfferReservationAnswer) -> OfferReservation:
    return OfferReservation(
        offer_id=asked.offer_id, status="reserved" if found.reserved else "refused",
        discount_cents=asked.discount_cents if found.reserved else 0,
        reserved_until=found.reserved_until, reason=found.reason,
    )  # fmt: skip


async def reserve(
    store: CodeStore,
    sink: CommandSink,
    waiting: list[OfferUseRequested],
    *,
    transaction_id: str,
    now: datetime,
    ttl: timedelta,
    wait: float,
    wakeups: Wakeups,
) -> list[OfferReservation]:
    """Reserve every waiting discount use (see the module): each offer's answer, in order,
    `pending` without one."""
    asked = [
        request(use, transaction_id=transaction_id, now=now, ttl=ttl)
        for use in waiting
        if use.discount_cents > 0
    ]
    found = await wakeups.ask(
        [
            Asked(r, (offer_reservation_key(r.event_id),), member_key(r.member_id),
                  functools.partial(answer, store, r), functools.partial(heard, r))
            for r in asked
        ],
        sink.send,  # CommandUnavailableError: 503, retry with the same cart
        wait=wait,
    )  # fmt: skip
    return [
        a if a is not None else OfferReservation(
            offer_id=r.offer_id, status="pending", discount_cents=0, reserved_until=None,
            reason="the reservation was asked; its answer did not come in time: evaluate "
            "again with the same transaction_id",
        )
        for r, a in zip(asked, found, strict=True)
    ]  # fmt: skip


def without_unreserved(state: MemberOffers, reservations: list[OfferReservation]) -> bool:
    """Close, on the member's state for this evaluation only, every offer not reserved (step
    3); True when one was."""
    closed = False
    for reservation in reservations:
        if reservation.status != "reserved":
            state.offers.setdefault(reservation.offer_id, OfferProgress()).closed = True
            closed = True
    return closed


def releases(
    held: list[OfferReservationAnswer], *, now: datetime
) -> list[OfferUseReservationReleased]:
    """The releases of a cancelled basket's reserved offers (step 4); ids name the basket,
    the offer and the time."""
    return [
        OfferUseReservationReleased(
            event_id=derived_id(
                "offer-use-reservation-released",
                kept.transaction_id,
                kept.offer_id,
                now.isoformat(),
            ),
            occurred_at=now,
            offer_id=kept.offer_id,
            transaction_id=kept.transaction_id,
        )
        for kept in held
    ]
