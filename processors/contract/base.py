"""Building blocks of the contract's models: the base classes and the value types.

Conventions every model follows (the schema generator relies on them):
- every field has a `description`; it becomes the Avro `doc`;
- money is `Cents` (int, minor units), points are `int`, quantities are `Quantity`
  (Decimal with at most 3 places), times are `UtcDatetime` (aware, UTC, millisecond precision);
- a closed set of symbols is a `ContractEnum` whose `UNKNOWN` member is the Avro enum default,
  so a reader meeting a symbol added later still decodes the event;
- nested records are `Record` subclasses, events are `Event` subclasses.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, Strict

NAMESPACE = "loyalty.v1"


class Record(BaseModel):
    """A named record of the contract (an Avro record in its own `.avsc` file)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def avro_name(cls) -> str:
        """The record's full Avro name, e.g. `loyalty.v1.TransactionCompleted`."""
        return f"{NAMESPACE}.{cls.__name__}"


class ContractEnum(StrEnum):
    """A closed set of symbols; `UNKNOWN` (when present) is what old readers see for new ones."""

    @classmethod
    def avro_name(cls) -> str:
        return f"{NAMESPACE}.{cls.__name__}"


def _utc_millis(value: datetime) -> datetime:
    # Avro timestamp-millis keeps milliseconds: normalise here so every form round-trips.
    try:
        value = value.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:00-14:00: past year 9999 once in UTC
        raise ValueError("must fall between years 1 and 9999 in UTC") from None
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _three_places(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.001"))


def _ascii_printable(value: str) -> str:
    if not value.isascii() or not value.isprintable():
        raise ValueError("must be printable ASCII")
    return value


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_utc_millis)]
"""An instant: timezone-aware input, stored in UTC with millisecond precision."""

LONG_MAX = 2**63 - 1
"""The largest integer an Avro long carries: every integer field of the contract is bounded
by it (a test checks), so a value the encoding cannot hold is refused at the edge."""

# Money and points are integers as given: strict, so that `true` is not read as 1 cent nor
# "700" or 700.0 as 700 (a JSON body or `loyalty publish` line; Avro carries only ints).
Cents = Annotated[int, Strict(), Field(ge=0, le=10**15)]
"""A non-negative amount of money in minor units of the market's currency."""

SignedCents = Annotated[int, Strict(), Field(ge=-(10**15), le=10**15)]
"""An amount of money in minor units that may be negative (a net, a refund)."""

Points = Annotated[int, Strict(), Field(ge=0, le=10**12)]
"""A non-negative number of points."""

SignedPoints = Annotated[int, Strict(), Field(ge=-(10**12), le=10**12)]
"""A number of points that may be negative (a net, a balance)."""

Quantity = Annotated[
    Decimal, Field(ge=0, max_digits=12, decimal_places=3), AfterValidator(_three_places)
]
"""A non-negative quantity (units, litres, kg) with up to 3 decimal places."""

Id = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_ascii_printable)]
"""An identifier: 1–128 printable ASCII characters."""

TEXT_MAX_LENGTH = 4000
Text = Annotated[str, Field(max_length=TEXT_MAX_LENGTH)]
"""Free text of bounded length."""

Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
"""An ISO 4217 currency code, e.g. `CAD`."""

Market = Annotated[str, Field(min_length=2, max_length=16, pattern=r"^[A-Z0-9_]+$")]
"""A market code, e.g. `CA`."""

OFFER_ID_MIN_LENGTH, OFFER_ID_MAX_LENGTH = 3, 128
OFFER_ID_PATTERN = rf"^[A-Za-z0-9_]{{{OFFER_ID_MIN_LENGTH},{OFFER_ID_MAX_LENGTH}}}$"
"""What an offer id is (DESIGN.md §6): the one home of the rule; the offer files' friendlier
messages and the API's path parameters use these."""
_OFFER_ID = re.compile(OFFER_ID_PATTERN.strip("^$"))


def _offer_id(value: str) -> str:
    # fullmatch, not `$`: a trailing newline must not slip through.
    if not _OFFER_ID.fullmatch(value):
        raise ValueError(
            f"must be {OFFER_ID_MIN_LENGTH}–{OFFER_ID_MAX_LENGTH} ASCII letters, digits or "
            "underscores"
        )
    return value


OfferId = Annotated[str, AfterValidator(_offer_id)]
"""An offer id: `^[A-Za-z0-9_]{3,128}$`, ASCII only."""

RANK_MIN, RANK_MAX = 1, 9
Rank = Annotated[int, Field(ge=RANK_MIN, le=RANK_MAX)]
"""An offer's (or reward's) position in the gallery and feed: 1 is the top."""


class Event(Record):
    """One fact or request carried on a topic."""

    topic: ClassVar[str]
    """The contract topic the event travels on."""

    key_field: ClassVar[str] = "member_id"
    """The field whose value is the record key (DESIGN.md §2: one writer per member)."""

    event_id: Id = Field(
        description="Unique id of this event, chosen by its producer; redelivery keeps it, "
        "so consumers deduplicate on it."
    )
    occurred_at: UtcDatetime = Field(
        description="Business time at which the fact happened or the request was made (UTC)."
    )

    def partition_key(self) -> str:
        """The record key this event must be produced with."""
        value = getattr(self, self.key_field)
        assert isinstance(value, str), f"{type(self).__name__}.{self.key_field} must be a str"
        return value
