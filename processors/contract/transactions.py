"""Topic `loyalty.transactions.v1`: purchases and returns, keyed by member (or transaction when
the customer is anonymous)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator

from processors.base import topics
from processors.contract.base import Cents, Currency, Event, Id, Market, Quantity, Record
from processors.contract.common import Source, Store

TOPIC = topics.TRANSACTIONS.name


def unique_line_ids(ids: list[str], where: str) -> None:
    """A line id names one line: repeated, a return could not say which it takes back (and
    the purchase's later lines would shadow the earlier ones)."""
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise ValueError(f"line_id must be unique in {where}; repeated: {', '.join(repeated)}")


BASKET_MAX_CENTS = 10**15
"""The most a basket may add up to, before and after its discounts: what any amount of the
contract may hold (`Cents`), so a total computed from the lines (a code's spend) fits too."""


def basket_within_bounds(lines: list[TransactionLine], where: str) -> None:
    """The lines' amounts, and their amounts before discounts, add up to `BASKET_MAX_CENTS` at
    most (each line alone is bounded; their sum was not, and failed inside the engine)."""
    before = sum(line.amount_cents + line.discount_cents for line in lines)
    if before > BASKET_MAX_CENTS:
        raise ValueError(f"the lines of {where} add up to {before} cents, over {BASKET_MAX_CENTS}")


class TransactionLine(Record):
    """One line of a basket, as the POS priced it."""

    line_id: Id = Field(description="Line id, unique within the transaction.")
    sku: Id = Field(description="The retailer's stock-keeping unit.")
    gtin: str | None = Field(default=None, max_length=14, description="GTIN/UPC/EAN barcode.")
    category: str | None = Field(default=None, max_length=64, description="Product category.")
    subcategory: str | None = Field(default=None, max_length=64, description="Product subcategory.")
    brand: str | None = Field(default=None, max_length=64, description="Product brand.")
    quantity: Quantity = Field(
        description="Units, or litres/kg for goods sold by measure (up to 3 decimal places)."
    )
    unit_price_cents: Cents = Field(description="Shelf price of one unit, in minor units.")
    amount_cents: Cents = Field(
        description="Net amount of the line after every discount, in minor units: the spend that "
        "earns points (DESIGN.md §5.3)."
    )
    discount_cents: Cents = Field(
        default=0, description="Discounts already taken off this line at the till, minor units."
    )


class Tender(Record):
    """One payment. Payments are not discounts: they never reduce the earn base."""

    type: str = Field(
        min_length=1, max_length=32, description="Payment type, e.g. CARD, CASH, GIFT_CARD."
    )
    amount_cents: Cents = Field(description="Amount paid with this tender, minor units.")


class TransactionCompleted(Event):
    """A purchase was completed at a till or online (the POS's final receipt)."""

    topic: ClassVar[str] = TOPIC

    transaction_id: Id = Field(description="The retailer's unique transaction id.")
    transaction_number: str | None = Field(
        default=None, max_length=64, description="Receipt number printed for the customer."
    )
    member_id: Id | None = Field(
        default=None, description="The member, or null for an anonymous customer."
    )
    market: Market = Field(description="The market (programme country) of the store.")
    currency: Currency = Field(description="ISO 4217 currency of every amount in the event.")
    source: Source = Field(description="The channel the purchase was made in.")
    store: Store = Field(description="The store the purchase was made in.")
    till_id: str | None = Field(default=None, max_length=64, description="The till (register).")
    lines: list[TransactionLine] = Field(
        min_length=1, description="The basket's lines after item discounts."
    )
    promo_codes: list[Id] = Field(
        default_factory=list, description="Promo codes entered or scanned at checkout."
    )
    redemption_tokens: list[Id] = Field(
        default_factory=list,
        description="Tokens of rewards or issued offers redeemed in this transaction.",
    )
    tenders: list[Tender] = Field(default_factory=list, description="How the basket was paid.")

    @field_validator("lines")
    @classmethod
    def _line_ids_unique(cls, lines: list[TransactionLine]) -> list[TransactionLine]:
        unique_line_ids([line.line_id for line in lines], "a transaction")
        basket_within_bounds(lines, "a transaction")
        return lines

    def partition_key(self) -> str:
        # Anonymous customers have no member partition; the transaction is its own key.
        return self.member_id or self.transaction_id


class ReturnedLine(Record):
    """A line of an earlier transaction, returned in whole or in part."""

    line_id: Id = Field(description="The line_id of the line in the original transaction.")
    quantity: Quantity = Field(description="How much of the line was returned.")
    amount_cents: Cents = Field(description="Net amount refunded for this line, minor units.")


class TransactionReturned(Event):
    """Goods from an earlier transaction were returned and refunded."""

    topic: ClassVar[str] = TOPIC

    return_id: Id = Field(description="The retailer's id of the return transaction.")
    transaction_id: Id = Field(description="The id of the original transaction.")
    member_id: Id | None = Field(
        default=None, description="The member, or null for an anonymous customer."
    )
    market: Market = Field(description="The market of the store taking the return.")
    currency: Currency = Field(description="ISO 4217 currency of every amount in the event.")
    source: Source = Field(description="The channel the return was made in.")
    store: Store = Field(description="The store taking the return.")
    till_id: str | None = Field(default=None, max_length=64, description="The till (register).")
    lines: list[ReturnedLine] = Field(min_length=1, description="The lines returned.")

    @field_validator("lines")
    @classmethod
    def _line_ids_unique(cls, lines: list[ReturnedLine]) -> list[ReturnedLine]:
        unique_line_ids([line.line_id for line in lines], "a return")
        return lines

    def partition_key(self) -> str:
        return self.member_id or self.transaction_id
