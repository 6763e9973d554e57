"""Generated promo codes (seed 001; docs/adr/0023-promo-codes.md): `count` codes from a pattern
(`#` a digit, `?` a letter without look-alikes), hard to guess, and checked without storing
them, so a promotion may issue ten million codes and every process still knows them.

The i-th code is the pattern filled with `permute(i)`, where `permute` is a keyed pseudo-random
permutation of the pattern's whole space (a four-round Feistel network over its size, cycle
walking to stay inside it), keyed by the promotion and the issue's event id. A code is one of
the issue's iff un-filling it and inverting the permutation gives an index below `count`.
The pattern allows at least 100 times as many codes as are issued (the contract checks it), so
a guess is a valid code at most once in a hundred tries. Deterministic: a replay issues the
same codes. Pure: hashlib only.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Iterator

from processors.contract.config import PATTERN_LETTERS

_DIGITS = "0123456789"
_ROUNDS = 4


class CodePattern:
    """A pattern's placeholders and the size of the space they span."""

    def __init__(self, pattern: str):
        self.pattern = pattern
        self.slots = [c for c in pattern if c in "#?"]
        self.size = math.prod(10 if c == "#" else len(PATTERN_LETTERS) for c in self.slots)

    def fill(self, value: int) -> str:
        """The code for `value` in [0, size): the last placeholder varies fastest."""
        out = []
        for c in reversed(self.pattern):
            if c in "#?":
                alphabet = _DIGITS if c == "#" else PATTERN_LETTERS
                value, digit = divmod(value, len(alphabet))
                out.append(alphabet[digit])
            else:
                out.append(c)
        return "".join(reversed(out))

    def unfill(self, code: str) -> int | None:
        """The value a code was filled with; None when it does not fit the pattern."""
        if len(code) != len(self.pattern):
            return None
        value = 0
        for c, p in zip(code, self.pattern, strict=True):
            if p in "#?":
                alphabet = _DIGITS if p == "#" else PATTERN_LETTERS
                digit = alphabet.find(c)
                if digit < 0:
                    return None
                value = value * len(alphabet) + digit
            elif c != p:
                return None
        return value


class Permutation:
    """A keyed pseudo-random permutation of [0, size)."""

    def __init__(self, key: bytes, size: int):
        self.key = key
        self.size = size
        self.half = max(2, math.isqrt(size - 1) + 1)  # half × half ≥ size

    def forward(self, value: int) -> int:
        while True:  # cycle walking: the network permutes [0, half²) ⊇ [0, size)
            value = self._network(value, range(_ROUNDS))
            if value < self.size:
                return value

    def backward(self, value: int) -> int:
        while True:
            value = self._network(value, reversed(range(_ROUNDS)), inverse=True)
            if value < self.size:
                return value

    def _network(self, value: int, rounds: range | Iterator[int], inverse: bool = False) -> int:
        left, right = divmod(value, self.half)
        for r in rounds:
            if inverse:
                left, right = (right - self._round(r, left)) % self.half, left
            else:
                left, right = right, (left + self._round(r, right)) % self.half
        return left * self.half + right

    def _round(self, r: int, value: int) -> int:
        digest = hmac.new(self.key, f"{r}:{value}".encode(), hashlib.sha256).digest()
        return int.from_bytes(digest[:8], "big") % self.half


class GeneratedCodes:
    """The codes one issue generated: enumerable, and checkable one by one."""

    def __init__(self, promotion_id: str, event_id: str, pattern: str, count: int):
        self._made_of = (promotion_id, event_id, pattern, count)
        self.event_id = event_id  # the issue that generated them
        self.pattern = CodePattern(pattern)
        self.count = count
        key = hashlib.sha256(f"{promotion_id}\x1f{event_id}".encode()).digest()
        self.permutation = Permutation(key, self.pattern.size)

    def __reduce__(self) -> tuple[type[GeneratedCodes], tuple[str, str, str, int]]:
        # Copied and pickled by making it again (the console's preview copies the whole
        # configuration): compiled (ADR 41), its __init__ would otherwise be called bare.
        return (GeneratedCodes, self._made_of)

    def code(self, index: int) -> str:
        """The `index`-th code (0-based)."""
        assert 0 <= index < self.count
        return self.pattern.fill(self.permutation.forward(index))

    def __iter__(self) -> Iterator[str]:
        return (self.code(i) for i in range(self.count))

    def __contains__(self, code: object) -> bool:
        if not isinstance(code, str):
            return False
        value = self.pattern.unfill(code)
        return value is not None and self.permutation.backward(value) < self.count
