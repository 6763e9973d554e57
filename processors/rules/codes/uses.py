"""A promotion's code uses, counted in arrival order by the agent keyed by the promotion
(DESIGN.md §2; docs/adr/0023-promo-codes.md): "the first 1,000 users" is exact whatever
partition the purchases came from. Pure: the state and one request in, the next state and the
answer out.

- The limits judged are those the request carries: per code, per member (across the
  promotion's codes; an anonymous customer is not limited per customer: each basket is its
  own), and in total.
- A use is answered once per code and transaction: a redelivered request gets the same answer,
  same id and content, and counts nothing more.
- A use that carries an offer's use (a code that unlocks an offer,
  docs/adr/0037-codes-that-unlock-an-offer.md) is also answered to the member with the
  `OfferUseGranted` or `OfferUseDenied` the offer's agent would send (ADR 14), so the
  member's partition completes or drops the pending use; an anonymous customer has no
  pending use to answer.
- Reserve → commit (DESIGN.md §5.25): a till may reserve a use for its basket until a time;
  reservations count against the limits while they last. The purchase that carries the code
  commits its basket's reservation whatever the limits say by then (a till told yes is never
  overruled, even after the reservation lapsed or the promotion ended: a purchase after the
  end, `ended_at`, counts only so); a release gives it back at once (`PromoCodeUnreserved`,
  for the projections). A lapsed
  reservation no longer counts, and is forgotten a week after it lapsed.
- A member's reservation of a code that unlocks an offer also holds the offer's use for the
  basket in the member's partition (`OfferUseHeld`, extended when asked again;
  `OfferUseHoldReleased` when the reservation is released or asked again and refused), whose
  offer rules honour it (`offers.held_uses`, ADR 37).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field, PrivateAttr

from processors.contract.base import Event
from processors.contract.internal import (
    OfferUseDenial,
    OfferUseDenied,
    OfferUseGranted,
    OfferUseHeld,
    OfferUseHoldReleased,
    PromoCodeLeaseRequested,
    PromoCodeLinkAnswered,
    PromoCodeLinkClaimRequested,
    PromoCodeReservationReleased,
    PromoCodeReservationRequested,
    PromoCodeUseRequested,
)
from processors.contract.offers import (
    PromoCodeLeaseAnswered,
    PromoCodeRedeemed,
    PromoCodeRefusal,
    PromoCodeRefused,
    PromoCodeReserved,
    PromoCodeUnreserved,
)
from processors.contract.outcomes import RejectionReason
from processors.rules.arithmetic import derived_id
from processors.rules.holds import LiveHolds

FORGOTTEN_AFTER = timedelta(days=7)
"""How long a lapsed, uncommitted reservation is kept (a purchase landing late still commits)."""


class Reservation(BaseModel):
    """One use reserved for a basket."""

    code: str
    member_id: str | None
    until: datetime
    offer_id: str | None = None  # the offer the code unlocks: the member holds its use


class Lease(BaseModel):
    """Uses of a code set aside for one API process (docs/adr/0040-reservations-from-a-lease.md):
    counted as taken until it has ended, less those it assigned to baskets (each then a
    reservation of its own)."""

    code: str
    holder: str
    granted: int
    until: datetime
    spent: list[str] = Field(default_factory=list)
    """The requests (event ids) that spent its uses: a redelivered one spends nothing again,
    whatever became of its basket's reservation since (found in review)."""
    ended: bool = False
    """Once the agent has counted its unassigned uses free (`PromotionUses.leased`): no use
    is assigned from it after that."""

    @property
    def used(self) -> int:
        """The uses it assigned to baskets."""
        return len(self.spent)

    def left(self) -> int:
        """The uses it still sets aside."""
        return 0 if self.ended else self.granted - self.used


class _Unsaved:
    """What a promotion's state changed since its agent last stored it, and the entry it
    stored: bookkeeping, not state (two states are equal whatever it holds)."""

    def __init__(self) -> None:
        self.answered: dict[str, str | None] = {}  # key → the member the answer counted for
        self.linked: set[str] = set()
        self.leased: set[str] = set()
        self.entry: bytes | None = None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Unsaved)

    __hash__ = None  # type: ignore[assignment]


class PromotionUses(BaseModel):
    """What the agent keeps about one promotion."""

    promotion_id: str
    uses: int = 0
    per_code: dict[str, int] = Field(default_factory=dict)
    per_member: dict[str, int] = Field(default_factory=dict)
    answers: dict[str, int | str] = Field(default_factory=dict)
    """code|transaction → the use number given, or the refusal's reason."""
    reservations: dict[str, Reservation] = Field(default_factory=dict)  # code|transaction
    links: dict[str, str] = Field(default_factory=dict)  # single-use code → its member
    leases: dict[str, Lease] = Field(default_factory=dict)  # by lease id (its request's id)
    _held: LiveHolds[Reservation] | None = PrivateAttr(default=None)
    # The answers, links and leases changed since they were last stored (each is stored on
    # its own: a shared code used 100,000 times keeps 100,000 answers), and the entry.
    _unsaved: _Unsaved = PrivateAttr(default_factory=_Unsaved)

    @property
    def entry(self) -> bytes | None:
        """The promotion's entry as its agent stored it: the counts kept before answers were
        stored on their own, unchanged since (None: never stored)."""
        return self._unsaved.entry

    @entry.setter
    def entry(self, stored: bytes) -> None:
        self._unsaved.entry = stored

    def use(self, key: str, code: str, member_id: str | None) -> int:
        """Count one more use of `code` for `key` (code|transaction); its number."""
        self._count(code, member_id)
        self.answers[key] = self.uses
        self._unsaved.answered[key] = member_id
        return self.uses

    def _count(self, code: str, member_id: str | None) -> None:
        self.uses += 1
        self.per_code[code] = self.per_code.get(code, 0) + 1
        if member_id is not None:
            self.per_member[member_id] = self.per_member.get(member_id, 0) + 1

    def refuse(self, key: str, refusal: PromoCodeRefusal) -> None:
        """Answer `key` (code|transaction) with `refusal`, for good."""
        self.answers[key] = refusal.value
        self._unsaved.answered[key] = None

    def link(self, code: str, member_id: str) -> None:
        """Link single-use `code` to `member_id` for good."""
        self.links[code] = member_id
        self._unsaved.linked.add(code)

    def answered(self, key: str, answer: int | str, code: str, member_id: str | None) -> None:
        """An answer read back from where it was stored on its own: counted as it was given."""
        if key in self.answers:
            return  # also in the entry, as kept before answers were stored on their own
        self.answers[key] = answer
        if isinstance(answer, int):
            self._count(code, member_id)

    def unsaved(self) -> int:
        """How many parts changed since the agent last stored this state."""
        unsaved = self._unsaved
        held = 0 if self._held is None else self._held.unsaved()
        return len(unsaved.answered) + len(unsaved.linked) + len(unsaved.leased) + held

    def changed_answers(self) -> dict[str, tuple[int | str, str | None]]:
        """The answers given since the last call: key → (answer, the member it counted for)."""
        answered, self._unsaved.answered = self._unsaved.answered, {}
        return {key: (self.answers[key], member) for key, member in answered.items()}

    def lease(self, lease_id: str, lease: Lease) -> None:
        """Keep `lease` (granted, one of its uses assigned, or ended) under `lease_id`."""
        self.leases[lease_id] = lease
        self._unsaved.leased.add(lease_id)

    def leased(self, at: datetime, code: str, *, till: bool = False) -> tuple[int, int]:
        """Uses that leases still set aside at `at`: for `code`, in all. A lease counted at
        or after its end has ended for good (`Lease.ended`); at a till's time (a purchase's),
        only `TILL_SKEW` after its end, as tills' clocks are not the API's."""
        for_code = in_all = 0
        skew = TILL_SKEW if till else timedelta(0)
        for lease_id, lease in self.leases.items():
            if lease.ended:
                continue  # most of them: kept a while after their end (`LEASE_KEPT`)
            if at >= lease.until + skew:
                lease.ended = True
                self._unsaved.leased.add(lease_id)
                continue
            left = lease.left()
            in_all += left
            for_code += left if lease.code == code else 0
        return for_code, in_all

    def forget_leases(self, ended_before: datetime) -> None:
        """Stop keeping the leases that ended before `ended_before`."""
        for lease_id in [i for i, kept in self.leases.items() if kept.until < ended_before]:
            del self.leases[lease_id]
            self._unsaved.leased.add(lease_id)

    def changed_leases(self) -> dict[str, Lease | None]:
        """The leases granted, used, ended or forgotten since the last call (None: forgotten)."""
        leased, self._unsaved.leased = self._unsaved.leased, set()
        return {lease_id: self.leases.get(lease_id) for lease_id in sorted(leased)}

    def changed_links(self) -> dict[str, str]:
        """The links made since the last call: code → member."""
        linked, self._unsaved.linked = self._unsaved.linked, set()
        return {code: self.links[code] for code in sorted(linked)}

    def held(self) -> LiveHolds[Reservation]:
        """The reservations, counted (`holds.LiveHolds`): every change to them goes here."""
        if self._held is None or not self._held.over(self.reservations):
            self._held = LiveHolds(self.reservations, _labels)
        return self._held

    def taken(
        self, at: datetime, code: str, member_id: str | None, *, till: bool = False
    ) -> tuple[int, int, int]:
        """Uses given, reserved (still counting) and set aside by leases at `at`: for `code`,
        for `member_id` (leases name no member), in all; `till` as in `leased`."""
        for_code, for_member, in_all = self.reserved(at, code, member_id)
        leased_code, leased_all = self.leased(at, code, till=till)
        used_by_member = self.per_member.get(member_id, 0) if member_id is not None else 0
        return (
            self.per_code.get(code, 0) + for_code + leased_code,
            used_by_member + for_member,
            self.uses + in_all + leased_all,
        )

    def reserved(self, at: datetime, code: str, member_id: str | None) -> tuple[int, int, int]:
        """Reservations still counting at `at`: for `code`, for `member_id`, in all."""
        held = self.held()
        by_member = 0 if member_id is None else held.count(at, ("member", member_id))
        return held.count(at, ("code", code)), by_member, held.count(at)

    def changed_reservations(self) -> list[str]:
        """The reservations' keys held, dropped or extended since the last call (each is
        stored on its own: `agents.promotion_uses`)."""
        return [] if self._held is None else self._held.changed()


def _labels(reservation: Reservation) -> tuple[tuple[str, str], ...]:
    """What a reservation is counted under: its code, and its member if it names one."""
    if reservation.member_id is None:
        return (("code", reservation.code),)
    return (("code", reservation.code), ("member", reservation.member_id))


@dataclass
class Decision:
    """The promotion's next state and the answer, in order."""

    state: PromotionUses
    emitted: list[Event] = field(default_factory=list)


UsesInput = (
    PromoCodeUseRequested | PromoCodeReservationRequested | PromoCodeReservationReleased
    | PromoCodeLinkClaimRequested | PromoCodeLeaseRequested
)  # fmt: skip

LEASE_FLOOR = 10
"""Below this many uses left (limits less uses, reservations and leases), no lease is granted:
the last uses go through the agent one by one, so no process is refused while another holds
uses it may not need (ADR 40)."""

TILL_SKEW = timedelta(minutes=10)
"""How far after a lease's end a purchase's time (its till's clock) must be to end the lease:
API processes' clocks agree within `code_leases.LEASE_MARGIN`, tills' may not (ADR 40)."""

LEASE_USES_MAX = 200
"""The most uses one lease sets aside, whatever is asked: its part lists the requests that
spent them, rewritten with each."""

LEASE_KEPT = timedelta(minutes=5)
"""How long after its end a lease is kept: its uses assigned by the API arrive before any
request timed after its end (the API assigns none in the last `LEASE_MARGIN` of it, more than
clocks disagree), and a redelivered lease request is answered alike meanwhile."""


def leasable(use: PromoCodeUseRequested) -> bool:
    """Whether a use of `use`'s code may be reserved from a lease (ADR 40): a shared code whose
    every limit the agent can set aside in bulk. A per-member limit needs the member's count, a
    single-use code its one use (and its link), an offer the member's hold: the agent's."""
    return (
        use.redemptions_per_member_max is None
        and use.redemptions_per_code_max != 1
        and use.offer_use is None
        and use.ended_at is None
    )


def decide(state: PromotionUses | None, asked: UsesInput) -> Decision:
    """One use, reservation or release (see the module). Takes ownership of `state`."""
    state = state or PromotionUses(promotion_id=asked.promotion_id)
    if isinstance(asked, PromoCodeLinkClaimRequested):
        return _link(state, asked)
    if isinstance(asked, PromoCodeLeaseRequested):
        return _grant(state, asked)
    key = f"{asked.code}|{asked.transaction_id}"
    match asked:
        case PromoCodeReservationReleased():
            dropped = state.held().drop(key)
            return Decision(state, _unreserved(dropped, asked) + _released(dropped, asked))
        case PromoCodeReservationRequested():
            return _reserve(state, key, asked)
    if key in state.answers:
        return Decision(state, _answer(asked, state.answers[key]))
    told_yes = state.held().drop(key) is not None
    refusal = None if told_yes else _refusal(state, asked, asked.occurred_at)
    if not told_yes and asked.ended_at is not None:
        refusal = PromoCodeRefusal.code_expired  # after the end, only a till's yes holds
    if refusal is not None:
        state.refuse(key, refusal)
        return Decision(state, _answer(asked, refusal.value))
    number = state.use(key, asked.code, asked.member_id)
    _forget_lapsed(state, asked.occurred_at)
    return Decision(state, _answer(asked, number))


def _reserve(state: PromotionUses, key: str, asked: PromoCodeReservationRequested) -> Decision:
    kept = state.reservations.get(key)
    if isinstance(state.answers.get(key), int):
        # Already committed: a lease's use the API took for it stays set aside until the
        # lease ends (this may be the redelivery of the request that spent it).
        return Decision(state, [_reserved(asked, asked.reserved_until)])
    live = kept is not None and kept.until > asked.occurred_at
    if kept is not None and live and kept.member_id == asked.member_id:
        _from_lease(state, asked)  # asked again: the API's lease use goes back
        state.held().extend(key, max(kept.until, asked.reserved_until))  # asked again
        return Decision(state, [*_held(asked, kept.until), _reserved(asked, kept.until)])
    # Lapsed, then asked again: asked anew (its use may have gone to another basket), and the
    # till's latest answer is the one its purchase holds it to. Held for another customer
    # (the till names a member now, or another one): asked anew for this one, so their own
    # limit is judged; refused, the basket keeps what it held.
    dropped = state.held().drop(key)
    from_lease = _from_lease(state, asked)
    refusal = None if from_lease else _refusal(state, asked, asked.occurred_at)
    if refusal is not None:
        if dropped is not None and live:
            state.held().hold(key, dropped)
            return Decision(state, [_reservation_refused(asked, refusal)])
        return Decision(state, [*_released(dropped, asked), _reservation_refused(asked, refusal)])
    given_back = _released(dropped, asked) if live else []  # the other member's hold ends
    state.held().hold(
        key,
        Reservation(
            code=asked.code, member_id=asked.member_id, until=asked.reserved_until,
            offer_id=asked.offer_id,
        ),
    )  # fmt: skip
    _forget_lapsed(state, asked.occurred_at)
    return Decision(
        state,
        [*given_back, *_held(asked, asked.reserved_until), _reserved(asked, asked.reserved_until)],
    )


def _from_lease(state: PromotionUses, asked: PromoCodeReservationRequested) -> bool:
    """Whether the API assigned `asked` a use of a lease that still has one (or spent it
    already: a redelivery): the use is spent from the lease (ADR 40). It becomes the basket's
    reservation; for a basket that holds one already (asked again) it goes back to the
    promotion. Stored after the reservation taken from it (`agents.promotion_uses`)."""
    lease = state.leases.get(asked.lease_id) if asked.lease_id is not None else None
    if lease is None or lease.code != asked.code:
        return False
    if asked.event_id in lease.spent:
        return True  # redelivered: spent already
    if asked.occurred_at >= lease.until:
        return False
    state.leased(asked.occurred_at, asked.code)  # ends it, if it has ended
    if lease.left() <= 0:
        return False
    lease.spent.append(asked.event_id)
    state.lease(asked.lease_id or "", lease)
    return True


def _link(state: PromotionUses, asked: PromoCodeLinkClaimRequested) -> Decision:
    """Link a code to a member: a single-use code to one member only, and no code the next
    purchase would be refused (its uses, the promotion's or the member's spent or reserved)."""
    refusal = None
    if linked_elsewhere(asked, state.links.get(asked.code), asked.member_id):
        refusal = RejectionReason.code_already_linked
    else:
        spent = spent_limit(asked, *state.taken(asked.occurred_at, asked.code, asked.member_id))
        if spent == "member":
            refusal = RejectionReason.limit_reached
        elif spent is not None:
            refusal = RejectionReason.code_exhausted
    if refusal is None and asked.redemptions_per_code_max == 1:
        state.link(asked.code, asked.member_id)
    answer = PromoCodeLinkAnswered(
        event_id=derived_id("CODE-LINKED", asked.event_id),
        occurred_at=asked.occurred_at, member_id=asked.member_id,
        promotion_id=asked.promotion_id, code=asked.code, command_id=asked.command_id,
        linked=refusal is None, refusal=refusal,
    )  # fmt: skip
    return Decision(state, [answer])


def _grant(state: PromotionUses, asked: PromoCodeLeaseRequested) -> Decision:
    """Set aside uses of a code for an API process (ADR 40): at most half of what the limits
    leave, shared between the processes holding leases, none below `LEASE_FLOOR`; counted as
    taken until the lease ends. A redelivered request gets the same answer."""
    at = asked.occurred_at
    state.forget_leases(at - LEASE_KEPT)
    kept = state.leases.get(asked.event_id)
    if kept is None:
        left = _left(state, asked, at)
        holders = {lease.holder for lease in state.leases.values() if lease.left() > 0}
        share = left // (2 * len(holders | {asked.holder})) if left is not None else None
        if left is not None and left < LEASE_FLOOR:
            share = 0
        wanted = min(asked.uses_wanted, LEASE_USES_MAX)
        granted = wanted if share is None else min(wanted, share)
        kept = Lease(
            code=asked.code, holder=asked.holder, granted=granted, until=asked.leased_until
        )
        state.lease(asked.event_id, kept)
    return Decision(state, [PromoCodeLeaseAnswered(
        event_id=derived_id("CODE-LEASED", asked.event_id), occurred_at=at,
        promotion_id=asked.promotion_id, code=asked.code, holder=asked.holder,
        lease_id=asked.event_id, uses_granted=kept.granted, leased_until=kept.until,
    )])  # fmt: skip


def _left(state: PromotionUses, asked: PromoCodeLeaseRequested, at: datetime) -> int | None:
    """The uses the limits leave at `at` for `asked`'s code, once uses, live reservations and
    leases are counted; None: unlimited."""
    for_code, _, in_all = state.taken(at, asked.code, None)
    return uses_left(asked, for_code, in_all)


class Limits(Protocol):
    """A promotion's limits, as its issue and every request about its codes carry them."""

    @property
    def redemptions_per_code_max(self) -> int | None: ...
    @property
    def redemptions_total_max(self) -> int | None: ...


class MemberLimits(Limits, Protocol):
    @property
    def redemptions_per_member_max(self) -> int | None: ...


SpentLimit = Literal["code", "total", "member"]
"""Which limit one more use would pass: the code's, the promotion's total, the member's."""


def uses_left(limits: Limits, for_code: int, in_all: int) -> int | None:
    """The uses of a code its promotion's limits leave, given those taken (used, reserved,
    leased) of the code (`for_code`) and of the promotion (`in_all`); None: unlimited. The one
    home of the arithmetic: the agent's leases and the status member care reads."""
    left = [
        limit - taken
        for limit, taken in ((limits.redemptions_per_code_max, for_code),
                             (limits.redemptions_total_max, in_all))
        if limit is not None
    ]  # fmt: skip
    return max(min(left), 0) if left else None


def spent_limit(
    limits: MemberLimits, for_code: int, for_member: int, in_all: int
) -> SpentLimit | None:
    """The limit one more use would pass, in the order the agent judges them, given what is
    taken of the code, by the member (0 for an anonymous customer) and of the promotion; None:
    it may be given. The agent judges its own counts with it, the till's preview the
    projections'."""
    if limits.redemptions_per_code_max is not None and for_code >= limits.redemptions_per_code_max:
        return "code"
    if limits.redemptions_total_max is not None and in_all >= limits.redemptions_total_max:
        return "total"
    per_member = limits.redemptions_per_member_max
    if per_member is not None and for_member >= per_member:
        return "member"
    return None


def linked_elsewhere(limits: Limits, holder: str | None, member_id: str | None) -> bool:
    """A single-use code linked to another member than `member_id` (`holder`): spent for
    anyone else."""
    return limits.redemptions_per_code_max == 1 and holder not in (None, member_id)


_REFUSAL_OF: dict[SpentLimit, PromoCodeRefusal] = {
    "code": PromoCodeRefusal.code_exhausted,
    "total": PromoCodeRefusal.code_exhausted,
    "member": PromoCodeRefusal.code_limit_per_customer,
}


def _refusal(
    state: PromotionUses,
    asked: PromoCodeUseRequested | PromoCodeReservationRequested,
    at: datetime,
) -> PromoCodeRefusal | None:
    """Why one more use may not be given at `at`, counting live reservations and leases."""
    if linked_elsewhere(asked, state.links.get(asked.code), asked.member_id):
        return PromoCodeRefusal.code_exhausted
    till = isinstance(asked, PromoCodeUseRequested)  # a purchase: timed by its till's clock
    spent = spent_limit(asked, *state.taken(at, asked.code, asked.member_id, till=till))
    return _REFUSAL_OF[spent] if spent is not None else None


def _forget_lapsed(state: PromotionUses, at: datetime) -> None:
    state.held().forget(at, FORGOTTEN_AFTER)


def settled(state: PromotionUses) -> PromotionUses:
    """`state` without the reservations of uses it already committed. A commit saves the
    promotion's counts before it drops the reservation (each reservation is stored on its
    own): a process that died between the two left a reservation that would count twice."""
    for key in [k for k in state.reservations if isinstance(state.answers.get(k), int)]:
        state.held().drop(key)
    return state


def _about(asked: PromoCodeUseRequested | PromoCodeReservationRequested) -> dict[str, Any]:
    """What every answer repeats of the request it answers."""
    return {
        "occurred_at": asked.occurred_at, "code": asked.code, "promotion_id": asked.promotion_id,
        "member_id": asked.member_id, "transaction_id": asked.transaction_id,
    }  # fmt: skip


def _refused(
    asked: PromoCodeUseRequested | PromoCodeReservationRequested,
    event_id: str,
    reason: PromoCodeRefusal,
    cause_event_id: str,
) -> Event:
    return PromoCodeRefused(
        event_id=event_id, reason=reason, detail=_DETAIL.get(reason.value, reason.value),
        cause_event_id=cause_event_id, **_about(asked),
    )  # fmt: skip


def _reserved(asked: PromoCodeReservationRequested, until: datetime) -> Event:
    return PromoCodeReserved(
        event_id=derived_id("CODE-RESERVED", asked.transaction_id, asked.code, until.isoformat()),
        reserved_until=until, discount_cents=asked.discount_cents, **_about(asked),
    )  # fmt: skip


def _held(asked: PromoCodeReservationRequested, until: datetime) -> list[Event]:
    """The use of the offer the code unlocks, held for the member's basket until `until`: sent
    before the till's answer, so the member's partition hears it no later than the till."""
    if asked.offer_id is None or asked.member_id is None:
        return []  # a cart discount's, or an anonymous basket's: no member's offer to hold
    return [
        OfferUseHeld(
            event_id=derived_id("OFFER-HELD", asked.transaction_id, asked.code, until.isoformat()),
            occurred_at=asked.occurred_at, member_id=asked.member_id, offer_id=asked.offer_id,
            transaction_id=asked.transaction_id, promotion_id=asked.promotion_id,
            code=asked.code, held_until=until,
        )
    ]  # fmt: skip


def _unreserved(dropped: Reservation | None, asked: PromoCodeReservationReleased) -> list[Event]:
    """The reservation `dropped` by a release ended, if it still counted: the projections stop
    counting it at once rather than when it would have lapsed."""
    if dropped is None or dropped.until <= asked.occurred_at:
        return []
    return [
        PromoCodeUnreserved(
            event_id=derived_id("CODE-UNRESERVED", asked.event_id),
            occurred_at=asked.occurred_at, code=asked.code, promotion_id=asked.promotion_id,
            member_id=dropped.member_id, transaction_id=asked.transaction_id,
        )
    ]  # fmt: skip


def _released(
    dropped: Reservation | None,
    asked: PromoCodeReservationReleased | PromoCodeReservationRequested,
) -> list[Event]:
    """The member's hold given back with the reservation `dropped`, if it held an offer's use."""
    if dropped is None or dropped.offer_id is None or dropped.member_id is None:
        return []
    return [
        OfferUseHoldReleased(
            event_id=derived_id("OFFER-HOLD-RELEASED", asked.event_id),
            occurred_at=asked.occurred_at, member_id=dropped.member_id,
            offer_id=dropped.offer_id, transaction_id=asked.transaction_id,
            promotion_id=asked.promotion_id, code=asked.code,
        )
    ]  # fmt: skip


def _reservation_refused(asked: PromoCodeReservationRequested, refusal: PromoCodeRefusal) -> Event:
    event_id = derived_id("CODE-RESERVE-REFUSED", asked.event_id)
    return _refused(asked, event_id, refusal, asked.event_id)


_DETAIL = {
    PromoCodeRefusal.code_expired.value: "the promotion had ended and no till had reserved "
    "this code for the basket",
    PromoCodeRefusal.code_exhausted.value: "the code's or the promotion's uses are spent",
    PromoCodeRefusal.code_limit_per_customer.value: "this member's uses of the promotion are spent",
}


def _answer(asked: PromoCodeUseRequested, answer: int | str) -> list[Event]:
    """The use's answer: its number (`answer` an int), or the refusal's reason; and the
    offer's use it carries granted or denied, to the member."""
    code = _code_answer(asked, answer)
    offer_use = asked.offer_use
    if offer_use is None or asked.member_id is None:
        return [code]
    common: dict[str, Any] = {
        "occurred_at": asked.occurred_at, "member_id": asked.member_id,
        "offer_id": offer_use.offer_id, "use_number": offer_use.use_number,
        "request_event_id": asked.event_id,
    }  # fmt: skip
    if isinstance(answer, str):
        denied = OfferUseDenied(
            event_id=derived_id("offer-use-denied", asked.event_id),
            reason=OfferUseDenial.CODE_REFUSED, **common,
        )  # fmt: skip
        return [code, denied]
    granted = OfferUseGranted(
        event_id=derived_id("offer-use-granted", asked.event_id),
        points_requested=offer_use.points_requested,
        points_granted=offer_use.points_requested, **common,
    )  # fmt: skip
    return [code, granted]


def _code_answer(asked: PromoCodeUseRequested, answer: int | str) -> Event:
    if isinstance(answer, str):
        event_id = derived_id("CODE-REFUSED", asked.transaction_id, asked.code)
        return _refused(asked, event_id, PromoCodeRefusal(answer), asked.cause_event_id)
    return PromoCodeRedeemed(
        event_id=derived_id("CODE-REDEEMED", asked.transaction_id, asked.code),
        transaction_number=asked.transaction_number, store_id=asked.store_id,
        discount_cents=asked.discount_cents, use_number=answer,
        cause_event_id=asked.cause_event_id, spend_cents=asked.spend_cents,
        issuer=asked.issuer, **_about(asked),
    )  # fmt: skip
