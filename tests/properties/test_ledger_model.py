"""The ledger against a tiny reference model, over random sequences of operations.

The model knows only this: points are whole; earned points are held (PROMISED) for 3 days and
then convert to REGULAR (released on the 4th local day after the earn date); a lot expires 31
local days after its earn date; debits take earliest expiry first; a deficit (after returns)
is repaid by the next credit; redemptions and transfers never overdraw; a return takes back
points still held from the hold, else from REGULAR; a back-office bulk award credits REGULAR at
once (expiring like earned points) and an imported debit is recorded whole, even below zero;
a merge moves lots and holds; duplicates change nothing.
"""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from processors.contract.common import PointsCategory, Source
from processors.contract.ledger import EntryType, LedgerEventRecorded
from processors.contract.redemptions import PointsAdjustmentKind, PointsAdjustmentRequested
from tests.rules.given import (
    T0,
    Ledgers,
    bought,
    day,
    enrolled,
    expiring_after,
    merged,
    program,
    programs,
    promised_for,
    redeem,
    returned,
    transfer,
)

MEMBERS = ["a", "b", "c"]
TORONTO = ZoneInfo("America/Toronto")


class Model:
    """Reference ledger: per member, lots by expiry date, and a never-expiring deficit."""

    def __init__(self) -> None:
        self.lots: dict[str, dict[date, int]] = {m: {} for m in MEMBERS}
        self.deficit: dict[str, int] = dict.fromkeys(MEMBERS, 0)
        # member → transaction → (release date, expiry date, points still held)
        self.held: dict[str, dict[str, tuple[date, date, int]]] = {m: {} for m in MEMBERS}
        # member → expiry date → points that expired that no return has set against (ADR 43)
        self.expired: dict[str, dict[date, int]] = {m: {} for m in MEMBERS}

    def expire(self, member: str, today: date) -> None:
        for expires in [d for d in self.lots[member] if d <= today]:
            gone = self.lots[member].pop(expires)
            self.expired[member][expires] = self.expired[member].get(expires, 0) + gone

    def take_back(self, member: str, points: int, expires: date) -> None:
        """A return: the purchase's points less those of its lot that expired (used up)."""
        gone = min(points, self.expired[member].get(expires, 0))
        self.expired[member][expires] = self.expired[member].get(expires, 0) - gone
        self.debit(member, points - gone)

    def held_points(self, member: str) -> int:
        return sum(points for _, _, points in self.held[member].values())

    def balance(self, member: str) -> int:
        return sum(self.lots[member].values()) - self.deficit[member]

    def credit(self, member: str, points: int, expires: date) -> None:
        repay = min(points, self.deficit[member])
        self.deficit[member] -= repay
        if points - repay:
            self.lots[member][expires] = self.lots[member].get(expires, 0) + points - repay

    def debit(self, member: str, points: int) -> list[tuple[date, int]]:
        taken = []
        for expires in sorted(self.lots[member]):
            if points == 0:
                break
            take = min(points, self.lots[member][expires])
            self.lots[member][expires] -= take
            taken.append((expires, take))
            points -= take
        self.lots[member] = {d: p for d, p in self.lots[member].items() if p}
        self.deficit[member] += points
        return taken


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ledgers = Ledgers(
            programs(
                program(
                    expiry=expiring_after(30),
                    categories=[PointsCategory.REGULAR, PointsCategory.PROMISED],
                    promised_points=promised_for(3),
                )
            )
        )
        self.model = Model()
        self.now = T0
        self.today = T0.astimezone(TORONTO).date()
        self.purchases: list[tuple[str, str, int, date]] = []  # (member, tx, points, day)
        self.returned: set[str] = set()
        self.merged: set[str] = set()
        self.last = None
        self.counter = 0

    def next_id(self) -> str:
        self.counter += 1
        return str(self.counter)

    @initialize()
    def enrol_everyone(self) -> None:
        for member in MEMBERS:
            self.ledgers.apply(enrolled(member, at=self.now))

    def active(self) -> list[str]:
        return [m for m in MEMBERS if m not in self.merged]

    @rule(days=st.integers(0, 20))
    def time_passes(self, days: int) -> None:
        for _ in range(days):
            self.now += timedelta(days=1)
            self.today += timedelta(days=1)
            self.last = day(self.today)
            self.ledgers.apply(self.last)
            for member in MEMBERS:
                if member in self.merged:
                    continue
                for tx, (release, expires, points) in list(self.model.held[member].items()):
                    if release <= self.today:
                        del self.model.held[member][tx]
                        self.model.credit(member, points, expires)
                self.model.expire(member, self.today)

    @rule(data=st.data(), cents=st.integers(0, 50_000))
    def earn(self, data: st.DataObject, cents: int) -> None:
        member = data.draw(st.sampled_from(self.active()))
        tx = f"T{self.next_id()}"
        self.last = bought(member, tx, cents=cents, at=self.now)
        self.ledgers.apply(self.last)
        points = (cents + 50) // 100
        self.purchases.append((member, tx, points, self.today))
        if points:
            release, expires = self.today + timedelta(days=4), self.today + timedelta(days=31)
            self.model.held[member][tx] = (release, expires, points)

    @rule(data=st.data(), blocks=st.integers(1, 5))
    def redeem_points(self, data: st.DataObject, blocks: int) -> None:
        member = data.draw(st.sampled_from(self.active()))
        self.last = redeem(member, blocks * 100, f"R{self.next_id()}", at=self.now)
        self.ledgers.apply(self.last)
        if self.model.balance(member) >= blocks * 100:
            self.model.debit(member, blocks * 100)

    @rule(data=st.data(), points=st.integers(1, 3000))
    def transfer_points(self, data: st.DataObject, points: int) -> None:
        sender, recipient = (
            data.draw(st.permutations(self.active()))[:2]
            if len(self.active()) > 1
            else (None, None)
        )
        if sender is None:
            return
        self.last = transfer(sender, recipient, points, f"X{self.next_id()}", at=self.now)
        self.ledgers.apply(self.last)
        if self.model.balance(sender) >= points:
            for expires, taken in self.model.debit(sender, points):
                self.model.credit(recipient, taken, expires)

    @precondition(lambda self: any(p[1] not in self.returned for p in self.purchases))
    @rule(data=st.data())
    def return_a_purchase(self, data: st.DataObject) -> None:
        member, tx, points, bought_on = data.draw(
            st.sampled_from([p for p in self.purchases if p[1] not in self.returned])
        )
        self.returned.add(tx)
        if member in self.merged:
            return
        if self.today > T0.date() and bought_on < self.today - timedelta(days=365):
            # Past the returns window: the purchase is forgotten and the return changes nothing.
            self.last = returned(member, tx, f"RET{tx}", ("1", 10**9), at=self.now)
            self.ledgers.apply(self.last)
            return
        self.last = returned(member, tx, f"RET{tx}", ("1", 10**9), at=self.now)
        self.ledgers.apply(self.last)
        if tx in self.model.held[member]:
            del self.model.held[member][tx]  # still held: taken back from the hold
        else:
            self.model.take_back(member, points, bought_on + timedelta(days=31))

    @rule(
        data=st.data(),
        points=st.integers(1, 3000),
        kind=st.sampled_from(
            [
                PointsAdjustmentKind.BULK_AWARD,
                PointsAdjustmentKind.IMPORTED_POINTS,
                PointsAdjustmentKind.IMPORTED_REDEMPTION,
                PointsAdjustmentKind.IMPORTED_EXPIRY,
            ]
        ),
    )
    def back_office_adjusts(
        self, data: st.DataObject, points: int, kind: PointsAdjustmentKind
    ) -> None:
        member = data.draw(st.sampled_from(MEMBERS))  # a merged member's is rejected
        self.last = PointsAdjustmentRequested(
            event_id=f"adj-{self.next_id()}",
            occurred_at=self.now,
            command_id=f"A{self.counter}",
            member_id=member,
            program_id="CA_MAIN",
            kind=kind,
            points=points,
            source=Source.BACK_OFFICE,
        )
        self.ledgers.apply(self.last)
        if member in self.merged:
            return
        if kind.is_credit:
            self.model.credit(member, points, self.today + timedelta(days=31))
        else:
            self.model.debit(member, points)

    @precondition(lambda self: len(self.active()) > 1)
    @rule(data=st.data())
    def merge_two(self, data: st.DataObject) -> None:
        victim, survivor = data.draw(st.permutations(self.active()))[:2]
        self.last = merged(victim, survivor, at=self.now)
        self.ledgers.apply(self.last)
        self.merged.add(victim)
        for expires, points in sorted(self.model.lots[victim].items()):
            self.model.credit(survivor, points, expires)
        for tx, hold in self.model.held[victim].items():
            self.model.held[survivor][f"{victim}/{tx}"] = hold
        self.model.held[victim] = {}
        deficit = self.model.deficit[victim]
        if deficit:
            self.model.debit(survivor, deficit)
        self.model.lots[victim] = {}
        self.model.deficit[victim] = 0

    @precondition(lambda self: self.last is not None)
    @rule()
    def the_last_input_is_delivered_again(self) -> None:
        before = {m: s.model_dump() for m, s in self.ledgers.states.items()}
        emitted = self.ledgers.apply(self.last)
        after = {m: s.model_dump() for m, s in self.ledgers.states.items()}
        assert after == before
        assert not [e for e in emitted if isinstance(e, LedgerEventRecorded)]

    @invariant()
    def balances_agree_with_the_model(self) -> None:
        for member in MEMBERS:
            assert self.ledgers.balance(member) == self.model.balance(member), member

    @invariant()
    def held_points_agree_with_the_model(self) -> None:
        for member in MEMBERS:
            assert self.ledgers.balance(member, PointsCategory.PROMISED) == self.model.held_points(
                member
            )

    @invariant()
    def lots_agree_with_the_model(self) -> None:
        for member in MEMBERS:
            lots = self.ledgers.states[member].lots("CA_MAIN", PointsCategory.REGULAR)
            positive = {
                lot.expires_at.astimezone(TORONTO).date(): lot.points
                for lot in lots
                if lot.expires_at is not None and lot.points > 0
            }
            assert positive == self.model.lots[member], member

    @invariant()
    def the_sum_of_entries_is_the_balance(self) -> None:
        for member in MEMBERS:
            net = sum(
                e.points if e.entry_type is EntryType.CREDIT else -e.points
                for event in self.ledgers.ledger(member)
                for e in event.entries
            )
            promised = self.ledgers.balance(member, PointsCategory.PROMISED)
            assert net == self.ledgers.balance(member) + promised
            assert all(
                event.points_on_event
                == sum(
                    e.points if e.entry_type is EntryType.CREDIT else -e.points
                    for e in event.entries
                )
                for event in self.ledgers.ledger(member)
            )

    @invariant()
    def sequences_count_up_without_gaps(self) -> None:
        for member in MEMBERS:
            assert [e.sequence for e in self.ledgers.ledger(member)] == list(
                range(1, len(self.ledgers.ledger(member)) + 1)
            )


LedgerMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=30, deadline=None)
TestLedgerAgainstModel = LedgerMachine.TestCase
