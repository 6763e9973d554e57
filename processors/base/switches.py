"""Switches read from the environment: on unless set to 0, false, no or off (any case)."""

from __future__ import annotations

import os

_OFF = frozenset({"0", "false", "no", "off"})


def switched_on(name: str) -> bool:
    """True unless the environment variable `name` says off."""
    return os.environ.get(name, "1").strip().lower() not in _OFF
