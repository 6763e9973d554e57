"""The JSON form of events: the same field names as Avro plus `type`, timestamps RFC 3339 UTC,
decimals as strings (DESIGN.md §6). Used by the CLI, scenario files and the HTTP API."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from processors.codec.avro import format_validation_error
from processors.contract.base import Event
from processors.contract.catalogue import events_by_name


class JsonFormError(ValueError):
    """A JSON object that is not a valid event; the message names the field and the rule."""


def to_json_object(event: Event) -> dict[str, Any]:
    """`{"type": <event name>, ...fields}`."""
    return {"type": type(event).__name__, **event.model_dump(mode="json")}


def to_json_line(event: Event) -> str:
    """The JSON form on one line, keys in field order."""
    return json.dumps(to_json_object(event), ensure_ascii=False, separators=(",", ":"))


def from_json_object(obj: Any) -> Event:
    """The event an object in JSON form describes; JsonFormError says what is wrong."""
    if not isinstance(obj, dict):
        raise JsonFormError("an event must be a JSON object")
    fields = dict(obj)
    name = fields.pop("type", None)
    if not isinstance(name, str):
        raise JsonFormError('type: missing; it names the event, e.g. "TransactionCompleted"')
    event_class = events_by_name().get(name)
    if event_class is None:
        raise JsonFormError(f"type: unknown event type {name!r}")
    try:
        return event_class.model_validate(fields)
    except ValidationError as error:
        raise JsonFormError(f"{name}: {format_validation_error(error)}") from None


def from_json_line(line: str) -> Event:
    """The event on one JSON line."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as error:
        raise JsonFormError(f"not JSON: {error.msg} at column {error.colno}") from None
    return from_json_object(obj)
