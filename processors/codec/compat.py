"""What a schema's fingerprint cannot see, and which of it changes how written bytes read.

The single-object fingerprint is taken over the Parsing Canonical Form, which keeps names,
types, fields and symbols but drops `doc`, `default`, `aliases`, `order` and every other
attribute, logical types included. Two versions that differ only there share a fingerprint,
so a reader cannot tell which one wrote a record. This module finds those differences; the
contract's history (`loyalty contract check`/`snapshot`) decides what to do with them.

Docs are free to change: they never reach the bytes or how they are read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

REREADING_ATTRIBUTES = frozenset({"logicalType", "precision", "scale"})
"""Attributes that change what the same bytes mean: a decimal's scale, a timestamp's unit."""


@dataclass(frozen=True)
class UnseenChange:
    """One attribute that differs between two schemas with the same canonical form."""

    path: str
    attribute: str
    recorded: Any
    current: Any

    @property
    def rereads_bytes(self) -> bool:
        """True when bytes written with the recorded version would mean something else under
        the current one (and nothing on the wire says which version wrote them)."""
        return self.attribute in REREADING_ATTRIBUTES

    def __str__(self) -> str:
        def shown(value: Any) -> str:
            return "(none)" if value is _ABSENT else repr(value)

        return f"{self.path}: {self.attribute} {shown(self.recorded)} → {shown(self.current)}"


_ABSENT: Any = type("_Absent", (), {})()


def unseen_changes(recorded: Any, current: Any) -> list[UnseenChange]:
    """Every difference but docs between two schemas of one fingerprint, in schema order.

    Both must have the same Parsing Canonical Form (the caller compares fingerprints first):
    then their named types are defined at the same places, and a walk in step finds all.
    """
    return list(_type(recorded, current, ""))


def _type(recorded: Any, current: Any, path: str) -> Iterator[UnseenChange]:
    if isinstance(recorded, list) and isinstance(current, list) and len(recorded) == len(current):
        for old_branch, new_branch in zip(recorded, current, strict=True):
            yield from _type(old_branch, new_branch, path)
        return
    if not (isinstance(recorded, dict) and isinstance(current, dict)):
        if recorded != current:
            yield UnseenChange(path, "type", recorded, current)
        return
    kind = recorded.get("type")
    if kind != current.get("type"):
        yield UnseenChange(path, "type", kind, current.get("type"))
    elif kind == "record":
        path = path or recorded["name"]
        yield from _attributes(recorded, current, path, {"fields"})
        old_fields, new_fields = recorded["fields"], current["fields"]
        if len(old_fields) != len(new_fields):
            yield UnseenChange(path, "fields", len(old_fields), len(new_fields))
            return
        for old, new in zip(old_fields, new_fields, strict=True):
            field_path = f"{path}.{old['name']}"
            yield from _attributes(old, new, field_path, {"type"})
            yield from _type(old["type"], new["type"], field_path)
    elif kind == "array":
        yield from _attributes(recorded, current, path, {"items"})
        yield from _type(recorded["items"], current["items"], f"{path}[]")
    elif kind == "map":
        yield from _attributes(recorded, current, path, {"values"})
        yield from _type(recorded["values"], current["values"], f"{path}{{}}")
    else:  # an enum, a fixed, or a primitive with attributes (a logical type)
        yield from _attributes(recorded, current, path, set())


def _attributes(
    recorded: dict[str, Any], current: dict[str, Any], path: str, walked: set[str]
) -> Iterator[UnseenChange]:
    for key in sorted(recorded.keys() | current.keys()):
        if key in walked or key in ("type", "doc"):
            continue
        old, new = recorded.get(key, _ABSENT), current.get(key, _ABSENT)
        if old != new:
            yield UnseenChange(path, key, old, new)
