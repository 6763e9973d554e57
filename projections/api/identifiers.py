"""The identifiers the API takes, one annotated type per kind, each checked by the contract's rule.

Every path, query, header and body identifier goes through one of these, so a value Postgres
cannot hold (a NUL byte) or no producer could have written (a control character, a
10⁶-character id) is refused at the edge with 400 naming the parameter, and never reaches a
query. The rules are the contract's own: `Id` (1–128 printable ASCII) for member, programme and
command ids, `Id` bounded to the contract's 64 characters for a till, and `OFFER_ID_PATTERN`
for offers. Owns the API's use of those rules and their OpenAPI description (the `pattern` a
client can check before it calls); never decides whether the caller may read what it names.
"""

from __future__ import annotations

from typing import Annotated, get_args

from fastapi import Path, Query
from pydantic import AfterValidator, Field, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from processors.contract.base import OFFER_ID_PATTERN, Id

ID_MAX_LENGTH = 128
"""The contract's `Id` bound: member, programme and command ids."""
TILL_ID_MAX_LENGTH = 64
"""The contract's bound on `till_id` (a free string there; printable ASCII here)."""


def printable_ascii_pattern(max_length: int) -> str:
    """The `Id` rule as a JSON Schema pattern: 1–`max_length` characters from ' ' to '~'."""
    return rf"^[ -~]{{1,{max_length}}}$"


def _documented(max_length: int) -> FieldInfo:
    # `Id`'s validator checks the characters; the pattern only describes them to clients.
    pattern = printable_ascii_pattern(max_length)
    described: FieldInfo = Field(
        min_length=1, max_length=max_length, json_schema_extra={"pattern": pattern}
    )
    return described


# The contract's character rule, taken from `Id` itself so that it has one home.
_PRINTABLE_ASCII = next(rule for rule in get_args(Id)[1:] if isinstance(rule, AfterValidator))

ApiId = Annotated[Id, _documented(ID_MAX_LENGTH)]
"""An identifier: 1–128 printable ASCII characters (the contract's `Id`)."""

TillId = Annotated[str, _documented(TILL_ID_MAX_LENGTH), _PRINTABLE_ASCII]
"""A till's id: 1–64 printable ASCII characters (`Id`'s characters, the contract's length)."""

_ID = TypeAdapter(ApiId)


def is_identifier(value: str) -> bool:
    """Whether `value` is an `ApiId` (for values read by hand, such as a header)."""
    try:
        _ID.validate_python(value)
    except ValidationError:
        return False
    return True


MemberIdPath = Annotated[
    ApiId,
    Path(description="The member's id: 1–128 printable ASCII characters.", examples=["M1"]),
]
"""A member id in a URL."""

ProgramIdQuery = Annotated[
    ApiId | None,
    Query(description="Only events touching this programme, and only its entries."),
]
"""A programme filter: 1–128 printable ASCII characters."""

TillIdQuery = Annotated[TillId | None, Query(description="Only events at this till.")]
"""A till filter: 1–64 printable ASCII characters."""

OfferIdPath = Annotated[
    str,
    Path(
        pattern=OFFER_ID_PATTERN,
        description="The offer's id: 3–128 ASCII letters, digits or underscores.",
        examples=["SPRING_FUEL_2X"],
    ),
]
"""An offer id in a URL, checked by the contract's own rule (a malformed one is a 400)."""
