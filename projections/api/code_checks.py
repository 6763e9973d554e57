"""A cart's promo codes at the till (docs/adr/0026-promo-code-api.md): checked against the
configuration by the worker's own rule, and, when the till asks, reserved by the promotion's
agent (DESIGN.md §5.25), the answer awaited in the projection.

1. `check`: each code as `processors.rules.codes.checkout` judged the cart, the same way the
   worker judges the purchase (unknown code, window, least spend, the discount on this basket,
   the offer a code unlocks: ADR 37): no rule is repeated here. Nothing is counted.
2. `reserve`: each code that applies becomes a `PromoCodeReservationRequested` (until now +
   the app's time-to-live), written through the command sink; then the agent's answer is
   awaited until the wait runs out: heard from Kafka (`PromoCodeReserved` for the basket and
   code, or the `PromoCodeRefused` of the request) or found in the projection
   (`promo_code_reservations`, `promo_code_refusals`), whichever comes first (`wakeups`, ADR
   34). A code without an answer by then is `pending`, and asking again extends the same
   reservation.
Owns no SQL (the `CodeStore` does) and reads no clock (times are given).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from processors.base.logs import get_logger
from processors.contract.base import Event
from processors.contract.internal import (
    PromoCodeLeaseRequested,
    PromoCodeReservationRequested,
    PromoCodeUseRequested,
)
from processors.contract.offers import (
    OfferCompleted,
    PromoCodeLeaseAnswered,
    PromoCodeRefusal,
    PromoCodeRefused,
    PromoCodeReserved,
)
from processors.rules.arithmetic import derived_id
from processors.rules.codes import uses as uses_rule
from projections.api.answers import code_reserved_key, lease_key, refused_key
from projections.api.code_leases import LeaseBook
from projections.api.code_schemas import CodeCheck
from projections.api.code_store import CodeActivity, CodeStore
from projections.api.commands import CommandSink, CommandUnavailableError
from projections.api.wakeups import Asked, Wakeups, code_key

log = get_logger(__name__)

INVALID_CODE = frozenset({
    PromoCodeRefusal.code_unknown.value,
    PromoCodeRefusal.code_not_yet_valid.value,
    PromoCodeRefusal.code_expired.value,
})  # fmt: skip
"""Refusals that say the code itself is not valid now: what the guessing throttle counts
(limits and least spend are the customer's or the basket's, not a wrong guess)."""


def check(judged: Iterable[Event]) -> list[PromoCodeUseRequested | CodeCheck]:
    """Per distinct code of the cart, in its order (`checkout.outcomes`): the use it would ask
    for (it applies), or its refusal."""
    out: list[PromoCodeUseRequested | CodeCheck] = []
    for event in judged:
        if isinstance(event, PromoCodeUseRequested) and event.ended_at is not None:
            # After its promotion's end a code counts only for a basket reserved before (the
            # worker asks the agent); a till asking now is told so, never promised it.
            ended = f"{event.promotion_id} ended at {event.ended_at.isoformat()}"
            out.append(refused(event.code, event.promotion_id, "code_expired", ended))
        elif isinstance(event, PromoCodeUseRequested):
            out.append(event)
        elif isinstance(event, PromoCodeRefused):
            out.append(refused(event.code, event.promotion_id, event.reason.value, event.detail))
    return out


async def reserved_before_the_end(
    store: CodeStore, judged: Sequence[Event], checked: list[PromoCodeUseRequested | CodeCheck]
) -> list[PromoCodeUseRequested | CodeCheck]:
    """`checked`, where a code refused only because its promotion ended (`check`) was reserved
    for this very basket before the end: `reserved`, as the till was told then; its purchase
    counts (the promotion's agent holds the reservation: ADR 37)."""
    ended = {
        e.code: e for e in judged if isinstance(e, PromoCodeUseRequested) and e.ended_at is not None
    }
    out: list[PromoCodeUseRequested | CodeCheck] = []
    for found in checked:
        use = ended.get(found.code) if isinstance(found, CodeCheck) else None
        kept = await store.reservation(use.code, use.transaction_id) if use is not None else None
        if use is not None and kept is not None:
            found = CodeCheck(
                code=use.code, status="reserved", promotion_id=use.promotion_id,
                discount_cents=use.discount_cents, reserved_until=kept.reserved_until,
                reason=None, detail=None,
            )  # fmt: skip
        out.append(found)
    return out


def coupons(
    coupon_offers: Mapping[str, Sequence[str]], emitted: Iterable[Event]
) -> list[CodeCheck]:
    """The cart's offers' own coupon codes (`checkout.Judged.coupons`): `applies`, with the
    offer it activated and what that offer takes off, when one of its offers completed on
    this cart (its points and discount are already in the cart's totals), else refused
    `code_not_applicable`. Never a guess: the code is a live offer's."""
    completed = {e.offer_id: e for e in emitted if isinstance(e, OfferCompleted)}
    out = []
    for code, offer_ids in coupon_offers.items():
        applied = [completed[o] for o in offer_ids if o in completed]
        if applied:
            out.append(CodeCheck(
                code=code, status="applies", promotion_id=None, offer_id=applied[0].offer_id,
                discount_cents=sum(e.discount_cents for e in applied), reserved_until=None,
                reason=None, detail=None,
            ))  # fmt: skip
        else:
            detail = f"the offer this coupon activates ({', '.join(offer_ids)}) gives nothing here"
            out.append(refused(code, None, PromoCodeRefusal.code_not_applicable.value, detail))
    return out


async def spent_already(
    store: CodeStore, checked: Sequence[PromoCodeUseRequested | CodeCheck], now: datetime
) -> list[PromoCodeUseRequested | CodeCheck]:
    """Without a reservation nothing is counted, but a till is not told a cart discount code
    `applies` when the projections already hold all of its uses, of its promotion's or of the
    member's, used or reserved by other baskets (a user's trial was told so of a spent
    single-use code): `code_exhausted` or `code_limit_per_customer`; nor when a single-use code
    waits for another member it was linked to. A basket that holds its own reservation of the
    code (reserved earlier, evaluated again) is told `reserved`, as asking again would.
    Conservative: uses leased to an API process (ADR 40) are not projected, so what this sees
    spent is spent; a reservation released counts no more (`PromoCodeUnreserved`). Codes
    that unlock an offer are left to the reservation's answer."""
    out: list[PromoCodeUseRequested | CodeCheck] = []
    for check in checked:
        if isinstance(check, PromoCodeUseRequested) and check.offer_use is None:
            activity = await store.activity(
                check.code, check.promotion_id, now,
                member_id=check.member_id, transaction_id=check.transaction_id,
            )  # fmt: skip
            if activity.basket_reserved_until is not None:
                out.append(CodeCheck(
                    code=check.code, status="reserved", promotion_id=check.promotion_id,
                    discount_cents=check.discount_cents,
                    reserved_until=activity.basket_reserved_until, reason=None, detail=None,
                ))  # fmt: skip
                continue
            spent = _spent(check, activity)
            if spent is not None:
                out.append(refused(check.code, check.promotion_id, *spent))
                continue
        out.append(check)
    return out


def _spent(use: PromoCodeUseRequested, activity: CodeActivity) -> tuple[str, str] | None:
    """Why no further use of `use`'s code can be given, judged by the promotion's agent's own
    rule (`uses.spent_limit`) on the projections' counts, or None."""
    if uses_rule.linked_elsewhere(use, activity.linked_member_id, use.member_id):
        return PromoCodeRefusal.code_exhausted.value, f"code {use.code} is linked to another member"
    taken = (activity.code_taken, activity.member_taken, activity.promotion_taken)
    match uses_rule.spent_limit(use, *taken):
        case "code":
            return PromoCodeRefusal.code_exhausted.value, (
                f"code {use.code}: {activity.code_taken} of {use.redemptions_per_code_max} used "
                "or reserved"
            )
        case "total":
            return PromoCodeRefusal.code_exhausted.value, (
                f"promotion {use.promotion_id}: {activity.promotion_taken} of "
                f"{use.redemptions_total_max} uses used or reserved"
            )
        case "member":
            return PromoCodeRefusal.code_limit_per_customer.value, (
                f"member {use.member_id}: {activity.member_taken} of "
                f"{use.redemptions_per_member_max} uses of promotion {use.promotion_id} used or "
                "reserved"
            )
    return None


def refused(code: str, promotion_id: str | None, reason: str, detail: str) -> CodeCheck:
    return CodeCheck(
        code=code, status="refused", promotion_id=promotion_id, discount_cents=0,
        reserved_until=None, reason=reason, detail=detail,
    )  # fmt: skip


def applies(use: PromoCodeUseRequested) -> CodeCheck:
    return CodeCheck(
        code=use.code, status="applies", promotion_id=use.promotion_id,
        discount_cents=use.discount_cents, reserved_until=None, reason=None, detail=None,
    )  # fmt: skip


def reservation_request(
    use: PromoCodeUseRequested, *, now: datetime, ttl: timedelta
) -> PromoCodeReservationRequested:
    """The reservation of `use`'s code for its basket, until `now + ttl`; the id names the
    basket, the code and the time, so a retry of one evaluation is one request."""
    until = now + ttl
    return PromoCodeReservationRequested(
        event_id=derived_id("code-reservation-requested", use.transaction_id, use.code,
                            now.isoformat()),
        occurred_at=now, promotion_id=use.promotion_id, code=use.code,
        member_id=use.member_id, transaction_id=use.transaction_id, reserved_until=until,
        discount_cents=use.discount_cents,
        redemptions_per_code_max=use.redemptions_per_code_max,
        redemptions_per_member_max=use.redemptions_per_member_max,
        redemptions_total_max=use.redemptions_total_max,
        offer_id=use.offer_use.offer_id if use.offer_use is not None else None,
    )  # fmt: skip


async def answer(store: CodeStore, asked: PromoCodeReservationRequested) -> CodeCheck | None:
    """The agent's answer to `asked` as projected: reserved (until then or later: asking
    again extends), or refused; None while neither is there."""
    refusal = await store.refusal(asked.event_id)
    if refusal is not None:
        return refused(asked.code, asked.promotion_id, refusal.reason, refusal.detail)
    kept = await store.reservation(asked.code, asked.transaction_id)
    if kept is not None and kept.reserved_until >= asked.reserved_until:
        return _reserved(asked, kept.reserved_until)
    return None


def heard(asked: PromoCodeReservationRequested, events: Sequence[Event]) -> CodeCheck | None:
    """The agent's answer to `asked` as heard on Kafka, the same as `answer` reads it."""
    for event in events:
        if isinstance(event, PromoCodeRefused) and event.cause_event_id == asked.event_id:
            return refused(asked.code, asked.promotion_id, event.reason.value, event.detail)
        if isinstance(event, PromoCodeReserved) and event.reserved_until >= asked.reserved_until:
            return _reserved(asked, event.reserved_until)
    return None


def _reserved(asked: PromoCodeReservationRequested, until: datetime) -> CodeCheck:
    return CodeCheck(
        code=asked.code, status="reserved", promotion_id=asked.promotion_id,
        discount_cents=asked.discount_cents, reserved_until=until, reason=None, detail=None,
    )  # fmt: skip


async def reserve(
    store: CodeStore,
    sink: CommandSink,
    uses: list[PromoCodeUseRequested],
    *,
    now: datetime,
    ttl: timedelta,
    wait: float,
    wakeups: Wakeups,
    leases: LeaseBook | None = None,
    clock: Callable[[], datetime] | None = None,
) -> dict[str, CodeCheck]:
    """Reserve every use's code (see the module); code → its answer, `pending` without one.
    With `leases` (and the `clock` that times their acknowledgements), a shared code's use is
    reserved from this process's lease when it holds one (`code_leases`)."""
    asked = [reservation_request(use, now=now, ttl=ttl) for use in uses]
    found: dict[str, CodeCheck] = {}
    sent: set[str] = set()
    if leases is not None and clock is not None:
        asked = _from_leases(leases, uses, asked, now=now, sink=sink, wakeups=wakeups,
                             clock=clock, wait=wait)  # fmt: skip
        from_lease = [r for r in asked if r.lease_id is not None]
        for r in from_lease:  # CommandUnavailableError: 503, retry with the same cart
            await sink.send(r)
            sent.add(r.event_id)
        written = clock()
        for r in from_lease:
            if r.lease_id is not None and leases.in_time(r.lease_id, written):
                found[r.code] = _reserved(r, r.reserved_until)  # the agent reserves it: ADR 40
    waiting = [r for r in asked if r.code not in found]

    async def send(request: Event) -> None:
        if request.event_id not in sent:  # a lease's use acknowledged late: written already
            await sink.send(request)

    heard_all = await wakeups.ask(
        [
            Asked(r, (code_reserved_key(r.code, r.transaction_id), refused_key(r.event_id)),
                  code_key(r.code), functools.partial(answer, store, r),
                  functools.partial(heard, r))
            for r in waiting
        ],
        send,
        wait=wait,
    ) if waiting else []  # fmt: skip
    found.update({r.code: a for r, a in zip(waiting, heard_all, strict=True) if a is not None})
    return {
        r.code: found.get(r.code) or CodeCheck(
            code=r.code, status="pending", promotion_id=r.promotion_id,
            discount_cents=r.discount_cents, reserved_until=None, reason=None,
            detail="the reservation was asked; its answer did not come in time: evaluate "
            "again with the same transaction_id",
        )
        for r in asked
    }  # fmt: skip


def _from_leases(
    leases: LeaseBook,
    uses: list[PromoCodeUseRequested],
    asked: list[PromoCodeReservationRequested],
    *,
    now: datetime,
    sink: CommandSink,
    wakeups: Wakeups,
    clock: Callable[[], datetime],
    wait: float,
) -> list[PromoCodeReservationRequested]:
    """`asked`, each shared code's request taking a use of this process's lease when it holds
    one; the next lease of each such code asked in the background when it is due."""
    out = []
    for use, request in zip(uses, asked, strict=True):
        if uses_rule.leasable(use):
            lease_id = leases.take(use, now)
            if lease_id is not None:
                request = request.model_copy(update={"lease_id": lease_id})
            wanted = leases.wanted(use, now)
            if wanted is not None:
                task = asyncio.create_task(_lease(leases, wanted, sink, wakeups, clock, wait))
                leases.tasks.add(task)
                task.add_done_callback(leases.tasks.discard)
        out.append(request)
    return out


async def _lease(
    leases: LeaseBook,
    asked: PromoCodeLeaseRequested,
    sink: CommandSink,
    wakeups: Wakeups,
    clock: Callable[[], datetime],
    wait: float,
) -> None:
    """Ask the promotion's agent for `asked`'s lease and give the book its answer."""
    answer: PromoCodeLeaseAnswered | None = None
    try:
        (answer,) = await wakeups.ask(
            [Asked(asked, (lease_key(asked.event_id),), f"code-lease:{asked.event_id}",
                   _no_row, functools.partial(_granted, asked))],
            sink.send,
            wait=wait,
        )  # fmt: skip
    except CommandUnavailableError as error:
        log.warning("code lease not asked", code=asked.code, reason=str(error))
    finally:
        leases.answered(asked, answer, clock())


async def _no_row() -> None:
    return None  # a lease has no row in the projection: its answer is heard or not at all


def _granted(
    asked: PromoCodeLeaseRequested, events: Sequence[Event]
) -> PromoCodeLeaseAnswered | None:
    for event in events:
        if isinstance(event, PromoCodeLeaseAnswered) and event.lease_id == asked.event_id:
            return event
    return None
