"""Assembling one ledger event: entries applied to the member's lots as they are added, then
sealed with its sequence number and the balances it leaves behind."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from processors.contract.common import PointsCategory, Source
from processors.contract.ledger import (
    AccountBalance,
    EntryKind,
    EntryType,
    LedgerEntry,
    LedgerEventRecorded,
    LedgerEventType,
)
from processors.contract.ledger import Lot as LotOut
from processors.rules.arithmetic import derived_id
from processors.rules.ledger import lots
from processors.rules.ledger.lots import Move
from processors.rules.ledger.state import MemberLedger, account_key


class Draft:
    """A ledger event under construction for `state` (mutated in place as entries are added)."""

    def __init__(
        self,
        state: MemberLedger,
        event_type: LedgerEventType,
        *,
        cause_event_id: str,
        occurred_at: datetime,
        source: Source,
        discriminator: str = "",
        recorded_at: datetime | None = None,
        store_id: str | None = None,
        till_id: str | None = None,
        transaction_id: str | None = None,
        transaction_number: str | None = None,
        related_member_id: str | None = None,
    ):
        self.state = state
        self.event_log_id = derived_id(
            "LE", state.member_id, cause_event_id, event_type.value, discriminator
        )
        self.header: dict[str, Any] = {
            "event_type": event_type,
            "cause_event_id": cause_event_id,
            "occurred_at": occurred_at,
            "recorded_at": recorded_at or occurred_at,
            "source": source,
            "store_id": store_id,
            "till_id": till_id,
            "transaction_id": transaction_id,
            "transaction_number": transaction_number,
            "related_member_id": related_member_id,
        }
        self.entries: list[LedgerEntry] = []
        self.touched: list[tuple[str, PointsCategory]] = []

    def _entry(
        self,
        program_id: str,
        category: PointsCategory,
        entry_type: EntryType,
        kind: EntryKind,
        move: Move,
        offer_id: str | None,
    ) -> None:
        self.entries.append(
            LedgerEntry(
                entry_id=f"{self.event_log_id}-{len(self.entries) + 1}",
                program_id=program_id,
                category=category,
                entry_type=entry_type,
                kind=kind,
                points=move.points,
                expires_at=move.expires_at,
                offer_id=offer_id,
            )
        )
        if (program_id, category) not in self.touched:
            self.touched.append((program_id, category))

    def open_account(
        self,
        program_id: str,
        category: PointsCategory,
        points: int = 0,
        expires_at: datetime | None = None,
    ) -> None:
        """The opening-balance entry that starts an account (0, or an imported balance)."""
        key = account_key(program_id, category)
        assert key not in self.state.accounts, f"account {key} is already open"
        self.state.accounts[key] = ()
        if points >= 0:
            self.state.accounts[key], _ = lots.credit((), points, expires_at)
            entry_type = EntryType.CREDIT
        else:
            self.state.accounts[key], _ = lots.debit((), -points)
            entry_type = EntryType.DEBIT
        move = Move(expires_at if points > 0 else None, abs(points))
        self._entry(program_id, category, entry_type, EntryKind.OPENING_BALANCE, move, None)

    def zero_entry(self, program_id: str, category: PointsCategory, kind: EntryKind) -> None:
        """A credit of no points: the event is booked (and the account named) though it moves
        nothing, as a purchase that earns nothing still is."""
        self._entry(program_id, category, EntryType.CREDIT, kind, Move(None, 0), None)

    def credit(
        self,
        program_id: str,
        category: PointsCategory,
        kind: EntryKind,
        points: int,
        expires_at: datetime | None,
        offer_id: str | None = None,
    ) -> None:
        """Add points to a lot (after repaying any deficit); one entry per lot touched."""
        if points <= 0:
            return
        key = account_key(program_id, category)
        self.state.accounts[key], moves = lots.credit(
            self.state.accounts.get(key, ()), points, expires_at
        )
        for move in moves:
            self._entry(program_id, category, EntryType.CREDIT, kind, move, offer_id)

    def debit(
        self,
        program_id: str,
        category: PointsCategory,
        kind: EntryKind,
        points: int,
        offer_id: str | None = None,
    ) -> list[Move]:
        """Take points earliest expiry first; one entry per lot drawn. Returns the moves."""
        if points <= 0:
            return []
        key = account_key(program_id, category)
        self.state.accounts[key], moves = lots.debit(self.state.accounts.get(key, ()), points)
        for move in moves:
            self._entry(program_id, category, EntryType.DEBIT, kind, move, offer_id)
        return moves

    def debit_exactly(
        self, program_id: str, category: PointsCategory, kind: EntryKind, moves: list[Move]
    ) -> None:
        """Take the given points from the given lots (expiry, conversion, merge)."""
        moves = [move for move in moves if move.points > 0]
        if not moves:
            return
        key = account_key(program_id, category)
        self.state.accounts[key] = lots.take(self.state.accounts.get(key, ()), moves)
        for move in moves:
            self._entry(program_id, category, EntryType.DEBIT, kind, move, None)

    def seal(self) -> LedgerEventRecorded | None:
        """The finished event (None if it has no entry), with the next sequence number."""
        if not self.entries:
            return None
        self.state.sequence += 1
        net = sum(e.points if e.entry_type is EntryType.CREDIT else -e.points for e in self.entries)
        balances = []
        for program_id, category in self.touched:
            account = self.state.lots(program_id, category)
            balances.append(
                AccountBalance(
                    program_id=program_id,
                    category=category,
                    balance=lots.balance(account),
                    lots=[LotOut(expires_at=lot.expires_at, points=lot.points) for lot in account],
                )
            )
        return LedgerEventRecorded(
            event_id=self.event_log_id,
            event_log_id=self.event_log_id,
            member_id=self.state.member_id,
            sequence=self.state.sequence,
            points_on_event=net,
            entries=self.entries,
            balances_after=balances,
            **self.header,
        )
