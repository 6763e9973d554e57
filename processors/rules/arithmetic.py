"""Rounding, pro-rata splits and ids: the places where "almost the same" would cost points."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal


def round_half_up(value: Decimal) -> int:
    """Round to a whole number, halves away from zero (112.5 → 113, 85.2 → 85; DESIGN.md §5.2).

    Python's round() rounds halves to even, which is wrong here.
    """
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def derived_id(prefix: str, *parts: str) -> str:
    """A deterministic id for an output, from what caused it (a replay yields the same id).

    Hashed so that long member and event ids never push it past the 128-character limit.
    """
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
    return f"{prefix}-{digest}"


def split_pro_rata(total: int, weights: Sequence[int]) -> list[int]:
    """Split `total` over `weights` in proportion, in whole units that add up to `total`.

    Largest remainder: each share is first rounded down, then the units left over go one each
    to the largest fractional parts, ties to the earlier weight, so the split is deterministic.
    A share never exceeds its weight when `total` does not exceed their sum. Nothing is split
    over weights that sum to zero (all shares are zero).
    """
    assert total >= 0, "a split of a negative total"
    assert min(weights, default=0) >= 0, "a split by a negative weight"
    whole = sum(weights)
    if whole == 0:
        return [0] * len(weights)
    shares = [total * weight // whole for weight in weights]
    left_over = total - sum(shares)
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), i))
    for i in by_remainder[:left_over]:
        shares[i] += 1
    return shares
