"""Rounding and ids: the two places where "almost the same" would cost points."""

from __future__ import annotations

import hashlib
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
