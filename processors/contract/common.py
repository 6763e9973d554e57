"""Records and enums shared by several topics."""

from __future__ import annotations

from pydantic import Field

from processors.contract.base import ContractEnum, Id, Record


class Source(ContractEnum):
    """The channel an event came from."""

    INSTORE = "INSTORE"
    ECOMMERCE = "ECOMMERCE"
    WEBSITE = "WEBSITE"
    APP = "APP"
    CALL_CENTER = "CALL_CENTER"
    PARTNER = "PARTNER"
    BACK_OFFICE = "BACK_OFFICE"
    SYSTEM = "SYSTEM"
    UNKNOWN = "UNKNOWN"


class PointsCategory(ContractEnum):
    """The category of a points account (DESIGN.md §4)."""

    REGULAR = "REGULAR"
    PROMISED = "PROMISED"
    TRIGGER = "TRIGGER"
    UNKNOWN = "UNKNOWN"


class Store(Record):
    """Where a transaction happened: a physical store, or the online store of a banner."""

    store_id: Id = Field(description="The retailer's store id.")
    country: str | None = Field(
        default=None, max_length=2, description="ISO 3166-1 alpha-2 country of the store."
    )
    province: str | None = Field(
        default=None,
        max_length=8,
        description="Province or state code; global product exclusions apply per province.",
    )
    postal_code: str | None = Field(default=None, max_length=16, description="Postal code.")
    banner: str | None = Field(
        default=None, max_length=64, description="The retail banner (brand) the store trades as."
    )
    attributes: dict[str, str] = Field(
        default_factory=dict,
        description="Extended store attributes used for targeting (e.g. region, format).",
    )
