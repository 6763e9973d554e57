"""Every event of the contract, found once: by name, by topic."""

from __future__ import annotations

import importlib
from functools import cache

from processors.contract.base import Event

# One module per topic; a new module is listed here and nowhere else.
EVENT_MODULES = (
    "enrolments",
    "transactions",
    "activities",
    "redemptions",
    "config",
    "clock",
    "ledger",
    "rewards",
    "offers",
    "outcomes",
    "notifications",
    "deadletter",
    "internal",
    "targeting",
)


@cache
def all_events() -> tuple[type[Event], ...]:
    """Every concrete event class, in module order then definition order."""
    found: list[type[Event]] = []
    for name in EVENT_MODULES:
        module = importlib.import_module(f"processors.contract.{name}")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Event)
                and value is not Event
                and value.__module__ == module.__name__
            ):
                found.append(value)
    return tuple(found)


@cache
def events_by_name() -> dict[str, type[Event]]:
    """Event classes by their name (the JSON form's `type`)."""
    return {cls.__name__: cls for cls in all_events()}


@cache
def events_on(topic: str) -> tuple[type[Event], ...]:
    """The events that may travel on `topic`."""
    return tuple(cls for cls in all_events() if cls.topic == topic)
