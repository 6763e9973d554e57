"""An offer's total uses and points budget, decided in arrival order by the agent keyed by the
offer (DESIGN.md §2, §5.20; docs/adr/0014-offer-level-caps.md). Pure: the state and the
request in, the next state and the events to emit out; no clock, ids derived from the request.

Decisions:
- Requests are granted in the order they arrive on the offer's partition: "the first N" are
  the first N requests that partition holds, whatever member partition sent them.
- The limits judged are those the request carries (the offer's definition where the use
  completed), so the agent needs no catalogue; a republished offer with higher limits opens
  again for later requests.
- Caps clip: a request asking more than the budget has left is granted what is left (800
  asked, 300 left → 300); once the uses or the points are spent every request is denied.
- `OfferBudgetExhausted` is emitted once, with the grant that spends the offer, and with it
  `OfferClosed` on the config topic, which closes the offer in every copy of the
  configuration (docs/adr/0029-gaps-closed.md).
- Idempotent: each member's decided uses are kept (use number → points granted, 0 when denied),
  so a redelivered request is answered with its original decision, same id and content. The
  state grows with the members who asked, not with the requests: a member's uses are bounded
  by the offer's own limits, and a member whose use was denied asks no more.
- Discount-only uses (`points_requested` 0, docs/adr/0030-discount-offer-total-uses.md) are
  granted while the total uses last, and reserve → commit (DESIGN.md §5.25) makes the limit
  hold at the till: a till may reserve a use for its basket until a time; live reservations
  count against the total; the member's purchase that completes the use commits its basket's
  reservation whatever the limits say by then (a till told yes is never overruled, even after
  the reservation lapsed). A lapsed reservation no longer counts, and is forgotten a week
  after it lapsed; a release (the basket was cancelled) gives it back at once. Time is the
  request's, never a clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import BaseModel, Field, PrivateAttr

from processors.contract.base import Event
from processors.contract.config import OfferClosed, OfferClosure
from processors.contract.internal import (
    OfferUseDenial,
    OfferUseDenied,
    OfferUseGranted,
    OfferUseRequested,
    OfferUseReservationReleased,
    OfferUseReservationRequested,
)
from processors.contract.offers import (
    BudgetExhaustion,
    OfferBudgetExhausted,
    OfferUseReservationAnswered,
)
from processors.rules.arithmetic import derived_id
from processors.rules.holds import LiveHolds

FORGOTTEN_AFTER = timedelta(days=7)
"""How long a lapsed, uncommitted reservation is kept (a purchase landing late still commits)."""


class Reservation(BaseModel):
    """One use reserved for a member's basket."""

    member_id: str
    until: datetime


class _Changed:
    """The members whose answers changed since the offer's agent last stored the state:
    bookkeeping, not state (two states are equal whatever it holds)."""

    def __init__(self) -> None:
        self.members: set[str] = set()
        self.inline: set[str] = set()  # members still kept in an entry stored whole

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Changed)

    __hash__ = None  # type: ignore[assignment]


class OfferUses(BaseModel):
    """What the agent keeps about one offer: what it granted, and every member's answers."""

    offer_id: str
    uses_granted: int = 0
    points_granted: int = 0
    exhausted_by: str | None = None  # the request whose grant spent the offer, once spent
    decided: dict[str, dict[int, int]] = Field(default_factory=dict)
    """member id → use number → points granted (0: denied, unless in `discounts_granted`)."""
    discounts_granted: set[str] = Field(default_factory=set)
    """member|use of the discount-only uses granted (they grant 0 points)."""
    reservations: dict[str, Reservation] = Field(default_factory=dict)  # by transaction
    _held: LiveHolds[Reservation] | None = PrivateAttr(default=None)
    # Each member's answers are stored on their own (`agents.offer_uses`): an offer used by
    # 100,000 members keeps as many.
    _changed: _Changed = PrivateAttr(default_factory=_Changed)

    def held(self) -> LiveHolds[Reservation]:
        """The reservations, counted (`holds.LiveHolds`): every change to them goes here."""
        if self._held is None or not self._held.over(self.reservations):
            self._held = LiveHolds(self.reservations, lambda _: ())
        return self._held

    def answer(self, member_id: str, use_number: int, points: int, *, discount: bool) -> None:
        """Keep the answer to `member_id`'s use `use_number`: `points` granted (0: denied,
        unless `discount`, a discount-only use granted)."""
        self.decided.setdefault(member_id, {})[use_number] = points
        if discount:
            self.discounts_granted.add(_key(member_id, use_number))
        self._changed.members.add(member_id)

    def answers_of(self, member_id: str) -> tuple[dict[int, int], list[int]]:
        """`member_id`'s answers as stored on their own: use → points granted, and the
        discount-only uses granted."""
        uses = self.decided.get(member_id, {})
        return uses, [n for n in uses if _key(member_id, n) in self.discounts_granted]

    def read_answers(self, member_id: str, uses: dict[int, int], discounts: list[int]) -> None:
        """`member_id`'s answers read back from where they were stored on their own."""
        self.decided[member_id] = uses
        self.discounts_granted.update(_key(member_id, n) for n in discounts)

    def kept_inline(self, members: set[str]) -> None:
        """`members`' answers were read from an entry stored whole: they move to their own
        parts a few thousand a save (`changed_members`), and stay in the entry until then."""
        self._changed.inline = set(members)

    def inline(self) -> OfferUses | None:
        """The entry as it still holds members' answers (an entry stored whole whose members
        have not all moved to parts yet); None once it holds none."""
        inline = self._changed.inline
        if not inline:
            return None
        return self.model_copy(update={
            "decided": {m: self.decided[m] for m in inline},
            "discounts_granted": {k for k in self.discounts_granted
                                  if k.partition("|")[0] in inline},
        })  # fmt: skip

    def changed_members(self, moved_most: int = 0) -> list[str]:
        """The members whose answers changed since the last call, and up to `moved_most` of
        those the entry still holds: each is stored on its own from now on."""
        changed = self._changed
        moving = sorted(changed.inline - changed.members)[:moved_most]
        members = sorted(changed.members.union(moving))
        changed.members = set()
        changed.inline.difference_update(members)
        return members

    def changed_reservations(self) -> list[str]:
        """The reservations held, dropped or extended since the last call."""
        return [] if self._held is None else self._held.changed()

    def unsaved(self) -> int:
        """How many stored items changed since the agent last stored this state."""
        return len(self._changed.members) + (0 if self._held is None else self._held.unsaved())

    def live_reservations(self, at: datetime) -> int:
        return self.held().count(at)


@dataclass
class Decision:
    """The offer's next state and what to emit, in order."""

    state: OfferUses
    emitted: list[Event] = field(default_factory=list)


UsesInput = OfferUseRequested | OfferUseReservationRequested | OfferUseReservationReleased


def decide(state: OfferUses | None, request: UsesInput) -> Decision:
    """Grant, clip or deny one requested use, or answer a reservation (see the module's
    decisions).

    Takes ownership of `state` and changes it in place, like the member rules.
    """
    if state is None:
        state = OfferUses(offer_id=request.offer_id)
    if isinstance(request, OfferUseReservationReleased):
        state.held().drop(request.transaction_id)  # committed or lapsed: no-op
        return Decision(state)
    if isinstance(request, OfferUseReservationRequested):
        return _reserve(state, request)
    decision = Decision(state)
    known = state.decided.get(request.member_id, {}).get(request.use_number)
    if known is not None:
        granted = (
            known > 0 or _key(request.member_id, request.use_number) in state.discounts_granted
        )
        decision.emitted.append(_answer(state, request, known, granted=granted))
        return decision
    told_yes = (
        request.transaction_id is not None and state.held().drop(request.transaction_id) is not None
    )
    points = min(request.points_requested, _points_left(state, request))
    discount_only = request.points_requested == 0
    granted = told_yes or (
        _uses_left(state, request, request.occurred_at) > 0 and (points > 0 or discount_only)
    )
    if not granted:
        points = 0
    else:
        points = max(points, 0)
        state.uses_granted += 1
        state.points_granted += points
    state.answer(request.member_id, request.use_number, points, discount=granted and discount_only)
    _forget_lapsed(state, request.occurred_at)
    decision.emitted.append(_answer(state, request, points, granted=granted))
    spent = _spent(state, request)
    # Once, with the grant that spends the offer (not again for a till's commit past it).
    if granted and spent is not None and not (told_yes and state.exhausted_by is not None):
        state.exhausted_by = request.event_id
        exhausted = OfferBudgetExhausted(
            event_id=derived_id("offer-budget-exhausted", request.event_id),
            occurred_at=request.occurred_at,
            offer_id=request.offer_id,
            reason=spent,
            uses_granted=state.uses_granted,
            points_granted=state.points_granted,
            uses_total_max=request.uses_total_max,
            budget_points_max=request.budget_points_max,
            last_member_id=request.member_id,
            request_event_id=request.event_id,
        )
        decision.emitted += [exhausted, closed(exhausted)]
    return decision


def closed(exhausted: OfferBudgetExhausted) -> OfferClosed:
    """The offer closed by its exhaustion, on the config topic: every copy of the
    configuration stops offering it from the exhausting request's time on."""
    return OfferClosed(
        event_id=derived_id("offer-closed", exhausted.event_id),
        occurred_at=exhausted.occurred_at,
        offer_id=exhausted.offer_id,
        reason=OfferClosure.BUDGET_EXHAUSTED,
        cause_event_id=exhausted.event_id,
    )


def _reserve(state: OfferUses, asked: OfferUseReservationRequested) -> Decision:
    """Reserve a use for the basket while the total uses (live reservations counted) last;
    asking again before it lapsed extends it; after, it is asked anew (the uses it held may
    have gone to others meanwhile)."""
    kept = state.reservations.get(asked.transaction_id)
    if kept is not None and kept.until > asked.occurred_at:
        state.held().extend(asked.transaction_id, max(kept.until, asked.reserved_until))
        return Decision(state, [_reservation_answer(asked, kept.until, None)])
    # Lapsed, then asked again: asked anew, and the till's latest answer is the one it keeps.
    state.held().drop(asked.transaction_id)
    if asked.uses_total_max - state.uses_granted - state.live_reservations(asked.occurred_at) <= 0:
        refusal = _denial(state, asked.uses_total_max, None, asked.occurred_at)
        return Decision(state, [_reservation_answer(asked, None, refusal)])
    state.held().hold(
        asked.transaction_id, Reservation(member_id=asked.member_id, until=asked.reserved_until)
    )
    _forget_lapsed(state, asked.occurred_at)
    return Decision(state, [_reservation_answer(asked, asked.reserved_until, None)])


def _reservation_answer(
    asked: OfferUseReservationRequested, until: datetime | None, refusal: OfferUseDenial | None
) -> OfferUseReservationAnswered:
    """Reserved until `until`, or refused (None) for `refusal`."""
    return OfferUseReservationAnswered(
        event_id=derived_id("offer-use-reservation-answered", asked.event_id),
        occurred_at=asked.occurred_at,
        member_id=asked.member_id,
        offer_id=asked.offer_id,
        transaction_id=asked.transaction_id,
        request_event_id=asked.event_id,
        reserved=until is not None,
        reserved_until=until,
        discount_cents=asked.discount_cents,
        reason=refusal,
    )


def _forget_lapsed(state: OfferUses, at: datetime) -> None:
    state.held().forget(at, FORGOTTEN_AFTER)


def _denial(
    state: OfferUses, uses_total_max: int | None, budget_points_max: int | None, at: datetime
) -> OfferUseDenial:
    """Why no use is left at `at`: the total or the budget is spent for good, or tills' live
    reservations hold the uses left (they may lapse or be released: the offer is not spent)."""
    if uses_total_max is not None and state.uses_granted >= uses_total_max:
        return OfferUseDenial.USES_SPENT
    if budget_points_max is not None and state.points_granted >= budget_points_max:
        return OfferUseDenial.BUDGET_SPENT
    return OfferUseDenial.USES_RESERVED


def _key(member_id: str, use_number: int) -> str:
    """A discount-only use granted, in `OfferUses.discounts_granted`."""
    return f"{member_id}|{use_number}"


def _uses_left(state: OfferUses, request: OfferUseRequested, at: datetime) -> int:
    if request.uses_total_max is None:
        return 1
    return request.uses_total_max - state.uses_granted - state.live_reservations(at)


def _points_left(state: OfferUses, request: OfferUseRequested) -> int:
    if request.budget_points_max is None:
        return request.points_requested
    return request.budget_points_max - state.points_granted


def _spent(state: OfferUses, request: OfferUseRequested) -> BudgetExhaustion | None:
    """Which limit is spent now, if one is (uses first: they are what "the first N" names)."""
    if request.uses_total_max is not None and state.uses_granted >= request.uses_total_max:
        return BudgetExhaustion.USES_SPENT
    if request.budget_points_max is not None and state.points_granted >= request.budget_points_max:
        return BudgetExhaustion.BUDGET_SPENT
    return None


def _answer(state: OfferUses, request: OfferUseRequested, points: int, *, granted: bool) -> Event:
    if granted:
        return OfferUseGranted(
            event_id=derived_id("offer-use-granted", request.event_id),
            occurred_at=request.occurred_at,
            member_id=request.member_id,
            offer_id=request.offer_id,
            use_number=request.use_number,
            request_event_id=request.event_id,
            points_requested=request.points_requested,
            points_granted=points,
        )
    return OfferUseDenied(
        event_id=derived_id("offer-use-denied", request.event_id),
        occurred_at=request.occurred_at,
        member_id=request.member_id,
        offer_id=request.offer_id,
        use_number=request.use_number,
        request_event_id=request.event_id,
        reason=_denial(
            state, request.uses_total_max, request.budget_points_max, request.occurred_at
        ),
    )
