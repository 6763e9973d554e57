"""Lots: the points of one account split by expiry, and how credits and debits move them.

An account's lots are kept sorted earliest expiry first, the never-expiring lot (expires_at
None) last. Debits draw earliest expiry first. Only the never-expiring lot may go negative: a
return can overdraw an account (DESIGN.md §5.14), and the next credit repays that deficit
before it adds to its own lot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict


class Lot(BaseModel):
    """Points of one account that expire together."""

    model_config = ConfigDict(frozen=True)

    expires_at: datetime | None
    points: int


@dataclass(frozen=True)
class Move:
    """Points added to or drawn from one lot by one entry."""

    expires_at: datetime | None
    points: int


def _order(expires_at: datetime | None) -> tuple[int, datetime | None]:
    return (1, None) if expires_at is None else (0, expires_at)


def _normalised(lots: dict[datetime | None, int]) -> tuple[Lot, ...]:
    ordered = sorted(lots.items(), key=lambda item: _order(item[0]))
    return tuple(Lot(expires_at=at, points=points) for at, points in ordered if points != 0)


def credit(
    lots: tuple[Lot, ...], points: int, expires_at: datetime | None
) -> tuple[tuple[Lot, ...], list[Move]]:
    """Add `points` expiring at `expires_at`; a never-expiring deficit is repaid first."""
    assert points >= 0
    by_expiry = {lot.expires_at: lot.points for lot in lots}
    moves: list[Move] = []
    deficit = -min(by_expiry.get(None, 0), 0)
    repay = min(deficit, points)
    if repay:
        by_expiry[None] = by_expiry.get(None, 0) + repay
        moves.append(Move(None, repay))
    if points - repay:
        by_expiry[expires_at] = by_expiry.get(expires_at, 0) + points - repay
        moves.append(Move(expires_at, points - repay))
    return _normalised(by_expiry), moves


def debit(lots: tuple[Lot, ...], points: int) -> tuple[tuple[Lot, ...], list[Move]]:
    """Take `points`, earliest expiry first; what the lots cannot cover overdraws the
    never-expiring lot (callers that must not overdraw check the balance first)."""
    assert points >= 0
    by_expiry = {lot.expires_at: lot.points for lot in lots}
    moves: list[Move] = []
    remaining = points
    for lot in lots:
        if remaining == 0:
            break
        if lot.points <= 0:
            continue
        take = min(lot.points, remaining)
        by_expiry[lot.expires_at] -= take
        moves.append(Move(lot.expires_at, take))
        remaining -= take
    if remaining:
        by_expiry[None] = by_expiry.get(None, 0) - remaining
        moves.append(Move(None, remaining))
    return _normalised(by_expiry), _merged(moves)


def take(lots: tuple[Lot, ...], moves: list[Move]) -> tuple[Lot, ...]:
    """Remove exactly `moves` (points from named lots), e.g. converting held points."""
    by_expiry = {lot.expires_at: lot.points for lot in lots}
    for move in moves:
        by_expiry[move.expires_at] = by_expiry.get(move.expires_at, 0) - move.points
    return _normalised(by_expiry)


def expired(lots: tuple[Lot, ...], at: datetime) -> list[Move]:
    """The positive lots whose expiry is at or before `at`."""
    return [
        Move(lot.expires_at, lot.points)
        for lot in lots
        if lot.expires_at is not None and lot.expires_at <= at and lot.points > 0
    ]


def balance(lots: tuple[Lot, ...]) -> int:
    """The account's balance: the sum of its lots."""
    return sum(lot.points for lot in lots)


def _merged(moves: list[Move]) -> list[Move]:
    merged: dict[datetime | None, int] = {}
    for move in moves:
        merged[move.expires_at] = merged.get(move.expires_at, 0) + move.points
    return [Move(at, points) for at, points in merged.items()]
