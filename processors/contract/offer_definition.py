"""The records of an offer's definition (DESIGN.md §6, seed 003), which `OfferPublished` on
`loyalty.config.v1` carries whole; rewards, promotions and challenges reuse the copy, discount
and behaviour records defined here.

Avro has no recursion and only nullable unions, so each polymorphic part (a behaviour, a reward,
a discount, the targeting) is one record: a `kind` symbol plus nullable per-kind fields, and a
validator that checks each kind sets the fields it needs and none it does not use. A kind
added later reads as `UNKNOWN` in an older reader and still validates; the rule core never
awards on a part it does not know. "AND/OR of several behaviours" is one level deep: a list of
behaviours and one operator (ALL or ANY).

This module checks shape and the rules that need nothing but the definition itself. Rules that
need state (is the offer live, may its end date move) live in `processors.rules`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from itertools import pairwise
from typing import Annotated, Final, Self
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from processors.contract.activities import ActivityKind
from processors.contract.base import (
    LONG_MAX,
    Cents,
    ContractEnum,
    Id,
    Points,
    Quantity,
    Record,
    UtcDatetime,
)

# --- value types --------------------------------------------------------------------------


def _one_place(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.1"))


def _two_places(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"))


Multiplier = Annotated[
    Decimal, Field(gt=1, le=100, max_digits=4, decimal_places=1), AfterValidator(_one_place)
]
"""A points multiplier k (> 1, one decimal place: 3.0, 1.5): the member's total on the lines it
covers is k × base, so the bonus is (k − 1) × base (DESIGN.md §5.4)."""

Percent = Annotated[
    Decimal, Field(gt=0, le=100, max_digits=5, decimal_places=2), AfterValidator(_two_places)
]
"""A percentage in (0, 100] with up to two decimal places, e.g. 10.00."""

PromoCode = Annotated[str, Field(pattern=r"^[A-Z0-9][A-Z0-9_-]{2,63}$")]
"""A code a customer types or scans: 3–64 characters, upper-case ASCII letters, digits, `_`, `-`.
Stored upper-case; tills and checkouts upper-case what they read before matching."""

ProductValue = Annotated[str, Field(min_length=1, max_length=64)]
"""A product hierarchy value as TransactionLine carries it (category, subcategory, brand)."""

Gtin = Annotated[str, Field(pattern=r"^[0-9]{8,14}$")]
"""A GTIN/UPC/EAN barcode: 8 to 14 digits."""

CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
"""An ISO 3166-1 alpha-2 country code, e.g. `CA`."""

ProvinceCode = Annotated[str, Field(min_length=1, max_length=8)]
"""A province or state code as Store.province carries it, e.g. `QC`."""

EVERGREEN_ENDS_AT: Final = datetime(3001, 1, 1, tzinfo=UTC)
"""The end of an offer that does not expire: "does not expire" is stored as the year 3001
(seed 003, DESIGN.md §5.10), so `starts_at <= t < ends_at` holds for every window."""

LIST_MAX: Final = 5_000
"""Most entries in one list of a configuration event (keeps a record well under 1 MB)."""


def evergreen_if_open(value: object) -> object:
    """Before validation of an end instant: null (no end) becomes `EVERGREEN_ENDS_AT`."""
    return EVERGREEN_ENDS_AT if value is None else value


def one_evergreen(value: datetime) -> datetime:
    """After validation of an end instant: any end in or after 3001 is the one evergreen end."""
    return EVERGREEN_ENDS_AT if value >= EVERGREEN_ENDS_AT else value


EndsAt = Annotated[UtcDatetime, BeforeValidator(evergreen_if_open), AfterValidator(one_evergreen)]
"""An end instant: null (no end) and anything in or after 3001 are the one evergreen end."""


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _is_set(value: object) -> bool:
    return value is not None and value != [] and value != {}


KindUses = Mapping[ContractEnum, tuple[tuple[str, ...], tuple[str, ...]]]
"""For each kind: (the fields it needs, the fields it may set). Other kinds' fields stay unset."""


def require_kind_fields(
    record: Record, what: str, kind: ContractEnum, uses: KindUses, among: Collection[str] = ()
) -> None:
    """Check that `record` sets every field its `kind` needs and no other kind-specific field.

    The kind-specific fields are those named in `uses`, plus `among`. A kind missing from
    `uses` (UNKNOWN, or a symbol added later) is not checked, so an older reader still accepts
    a newer producer's record.
    """
    if kind not in uses:
        return
    needs, may = uses[kind]
    kind_fields = {name for pair in uses.values() for names in pair for name in names}
    kind_fields |= set(among)
    missing = [name for name in needs if not _is_set(getattr(record, name))]
    if missing:
        raise ValueError(f"{what} of kind {kind.value} needs {', '.join(missing)}")
    unused = sorted(
        name for name in kind_fields - set(needs) - set(may) if _is_set(getattr(record, name))
    )
    if unused:
        raise ValueError(f"{what} of kind {kind.value} does not use {', '.join(unused)}")


# --- copy ---------------------------------------------------------------------------------


class CopyLocale(ContractEnum):
    """The language of a piece of customer-facing copy."""

    en = "en"
    fr = "fr"
    UNKNOWN = "UNKNOWN"


REQUIRED_LOCALES: Final = (CopyLocale.en, CopyLocale.fr)
"""Every offer, reward and challenge has copy in English and in French (seed 003)."""

COPY_LIMITS: Final[Mapping[str, int]] = {
    "headline": 80,
    "short_description": 200,
    "long_description": 2000,
    "terms": 4000,
    "image_url": 2048,
}
"""Character limits (Unicode code points) per copy field. Seed 003 says the fields "have
different character limits" without giving them; these are ours (docs/adr)."""

_MULTI_LINE: Final = frozenset({"long_description", "terms"})

# A tag (<b>, </p>, <br/>, <a href=...>), a comment, a CDATA or doctype, or a character
# reference (&amp; &#233; &#xE9;): the front end would show any of them literally.
_MARKUP = re.compile(
    r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>"
    r"|<!--|<!\[CDATA\[|<![A-Za-z]"
    r"|&(?:[A-Za-z][A-Za-z0-9]{1,31}|#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6});"
)


def _text_problems(name: str, value: str, locale: str) -> list[str]:
    where = f"{name} ({locale})"
    problems = []
    if not value.strip():
        problems.append(f"{where} must not be blank")
    if markup := _MARKUP.search(value):
        problems.append(f"{where} must be plain text, without HTML: found {markup.group()!r}")
    allowed_controls = {"\n"} if name in _MULTI_LINE else set()
    if any(unicodedata.category(c) == "Cc" and c not in allowed_controls for c in value):
        allowed = "other than line breaks (\\n)" if allowed_controls else "(one line only)"
        problems.append(f"{where} must not contain control characters {allowed}")
    return problems


def _url_problems(value: str, locale: str) -> list[str]:
    parts = urlsplit(value) if value.isascii() else None
    if parts is None or parts.scheme != "https" or not parts.netloc or " " in value:
        return [f"image_url ({locale}) must be an absolute https URL in ASCII"]
    return []


class LocalizedCopy(Record):
    """Customer-facing copy in one language: plain text only, the front end formats it."""

    locale: CopyLocale = Field(description="The language of this copy.")
    headline: str = Field(
        description=f"Headline, one line, at most {COPY_LIMITS['headline']} characters."
    )
    short_description: str = Field(
        description="Short description for tiles and lists, one line, at most "
        f"{COPY_LIMITS['short_description']} characters."
    )
    long_description: str | None = Field(
        default=None,
        description="Long description for the detail page; line breaks allowed, at most "
        f"{COPY_LIMITS['long_description']} characters.",
    )
    terms: str | None = Field(
        default=None,
        description="Terms and conditions; line breaks allowed, at most "
        f"{COPY_LIMITS['terms']} characters.",
    )
    image_url: str | None = Field(
        default=None,
        description="Absolute https URL of the thumbnail in the client's image repository, at "
        f"most {COPY_LIMITS['image_url']} characters; the client keeps it available.",
    )

    @model_validator(mode="after")
    def _check_limits_and_plain_text(self) -> Self:
        locale = self.locale.value
        problems = []
        for name, limit in COPY_LIMITS.items():
            value = getattr(self, name)
            if value is None:
                continue
            if len(value) > limit:
                problems.append(
                    f"{name} ({locale}) is {len(value)} characters long; the limit is {limit}"
                )
            if name == "image_url":
                problems += _url_problems(value, locale)
            else:
                problems += _text_problems(name, value, locale)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def require_locales(copy: Sequence[LocalizedCopy]) -> None:
    """Check that copy is given once per locale, in every required locale."""
    locales = [c.locale for c in copy]
    repeated = sorted({loc.value for loc in locales if locales.count(loc) > 1})
    if repeated:
        raise ValueError(f"localized_copy gives locale {', '.join(repeated)} more than once")
    missing = [loc.value for loc in REQUIRED_LOCALES if loc not in locales]
    if missing:
        raise ValueError(
            f"localized_copy must be given in en and fr; missing: {', '.join(missing)}"
        )


# --- schedule -----------------------------------------------------------------------------


class OfferSchedule(Record):
    """When an offer is shown and live: live for starts_at <= t < ends_at in business time."""

    starts_at: UtcDatetime = Field(
        description="First instant at which behaviour counts towards the offer; never changes "
        "once published."
    )
    ends_at: EndsAt = Field(
        description="First instant at which behaviour no longer counts. An evergreen offer (no "
        "end) has 3001-01-01T00:00:00Z; null in the JSON form means the same."
    )
    display_at: UtcDatetime = Field(
        description="When targeted members can first see the offer: on or before starts_at. "
        "Omitted or null in the JSON form, it is starts_at."
    )

    @model_validator(mode="before")
    @classmethod
    def _display_at_defaults_to_starts_at(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("display_at") is None and "starts_at" in data:
            return {**data, "display_at": data["starts_at"]}
        return data

    @model_validator(mode="after")
    def _check_order(self) -> Self:
        if self.ends_at <= self.starts_at:
            raise ValueError(
                f"ends_at ({_iso(self.ends_at)}) must be after starts_at ({_iso(self.starts_at)})"
            )
        if self.display_at > self.starts_at:
            raise ValueError(
                f"display_at ({_iso(self.display_at)}) must not be after starts_at "
                f"({_iso(self.starts_at)}): members see an offer on or before its start"
            )
        return self

    @property
    def is_evergreen(self) -> bool:
        """True when the offer has no end (stored as the year 3001)."""
        return self.ends_at == EVERGREEN_ENDS_AT


# --- products -----------------------------------------------------------------------------


class ProductSelection(Record):
    """Which basket lines count: a query on the product hierarchy, or an uploaded SKU list.

    A line is selected when it matches every non-empty include list (any value within a list;
    no include list means every product) and none of the exclude lists (NOT IN).
    """

    skus: list[Id] = Field(
        default_factory=list, max_length=LIST_MAX, description="Include these SKUs."
    )
    gtins: list[Gtin] = Field(
        default_factory=list, max_length=LIST_MAX, description="Include these GTINs."
    )
    categories: list[ProductValue] = Field(
        default_factory=list, max_length=LIST_MAX, description="Include these categories."
    )
    subcategories: list[ProductValue] = Field(
        default_factory=list, max_length=LIST_MAX, description="Include these subcategories."
    )
    brands: list[ProductValue] = Field(
        default_factory=list, max_length=LIST_MAX, description="Include these brands."
    )
    excluded_skus: list[Id] = Field(
        default_factory=list, max_length=LIST_MAX, description="Exclude these SKUs."
    )
    excluded_gtins: list[Gtin] = Field(
        default_factory=list, max_length=LIST_MAX, description="Exclude these GTINs."
    )
    excluded_categories: list[ProductValue] = Field(
        default_factory=list, max_length=LIST_MAX, description="Exclude these categories."
    )
    excluded_subcategories: list[ProductValue] = Field(
        default_factory=list, max_length=LIST_MAX, description="Exclude these subcategories."
    )
    excluded_brands: list[ProductValue] = Field(
        default_factory=list, max_length=LIST_MAX, description="Exclude these brands."
    )

    @model_validator(mode="after")
    def _check_not_empty(self) -> Self:
        if not any(_is_set(getattr(self, name)) for name in type(self).model_fields):
            raise ValueError("a product selection names at least one product, value or exclusion")
        return self

    @property
    def has_includes(self) -> bool:
        """True when the selection narrows to named products (not just "all but exclusions")."""
        return any([self.skus, self.gtins, self.categories, self.subcategories, self.brands])


# --- behaviours ---------------------------------------------------------------------------


class BehaviourKind(ContractEnum):
    """What a member must do (seed 003, "Offer required behaviors")."""

    SPEND = "SPEND"  # spend an amount, on the whole basket or on selected products
    QUANTITY = "QUANTITY"  # buy a quantity of selected products (units, or litres of fuel)
    POINTS_REDEMPTION = "POINTS_REDEMPTION"  # redeem points, optionally on selected products
    VISITS = "VISITS"  # frequency: N qualifying transactions, optionally within a window
    ACTIVITY = "ACTIVITY"  # a digital, profile or membership activity, N times
    UNKNOWN = "UNKNOWN"


class BehaviourOperator(ContractEnum):
    """How an offer's behaviours combine."""

    ALL = "ALL"  # AND: every behaviour must be met
    ANY = "ANY"  # OR: one behaviour is enough
    UNKNOWN = "UNKNOWN"


class Accumulation(ContractEnum):
    """Whether a threshold is met in one transaction or summed across transactions."""

    SINGLE_TRANSACTION = "SINGLE_TRANSACTION"
    ACCUMULATED = "ACCUMULATED"  # within the window (the offer's, or window_days)
    UNKNOWN = "UNKNOWN"


_BEHAVIOUR_USES: Final[KindUses] = {
    BehaviourKind.SPEND: (("spend_min_cents", "accumulation"), ("products", "window_days")),
    BehaviourKind.QUANTITY: (("quantity_min", "accumulation", "products"), ("window_days",)),
    BehaviourKind.POINTS_REDEMPTION: (
        ("points_min", "accumulation"),
        ("products", "window_days"),
    ),
    BehaviourKind.VISITS: (("count_min",), ("spend_min_cents", "products", "window_days")),
    BehaviourKind.ACTIVITY: (
        ("activity_kind",),
        ("activity_custom_name", "count_min", "window_days"),
    ),
}

THRESHOLD_FIELD: Final[Mapping[BehaviourKind, str]] = {
    BehaviourKind.SPEND: "spend_min_cents",
    BehaviourKind.QUANTITY: "quantity_min",
    BehaviourKind.POINTS_REDEMPTION: "points_min",
    BehaviourKind.VISITS: "count_min",
}
"""The field holding each measurable behaviour's threshold (what For Every divides by)."""


class Behaviour(Record):
    """One required behaviour: a `kind` and the fields that kind uses (the others stay null).

    Fuel offers ("300 points per fill-up of at least 25 L") are QUANTITY behaviours on the fuel
    SKUs, in one transaction: seed 003 says they work exactly like quantity purchases.
    """

    kind: BehaviourKind = Field(description="What the member must do.")
    spend_min_cents: Cents | None = Field(
        default=None,
        gt=0,
        description="SPEND: eligible net spend that meets the behaviour, minor units. VISITS: "
        "least spend for a transaction to count as a visit.",
    )
    quantity_min: Quantity | None = Field(
        default=None,
        gt=0,
        description="QUANTITY: units, litres or kg of selected products that meet the behaviour.",
    )
    points_min: Points | None = Field(
        default=None, gt=0, description="POINTS_REDEMPTION: points to redeem."
    )
    count_min: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="VISITS: qualifying transactions needed. ACTIVITY: times the activity must "
        "be recorded (null: once).",
    )
    accumulation: Accumulation | None = Field(
        default=None,
        description="SPEND, QUANTITY, POINTS_REDEMPTION: in one transaction, or summed across "
        "transactions (DESIGN.md §5.6).",
    )
    window_days: int | None = Field(
        default=None,
        ge=1,
        le=3660,
        description="Rolling window, in days, in which accumulated progress, visits or "
        "activities must happen; null: the whole offer (or challenge) window.",
    )
    products: ProductSelection | None = Field(
        default=None,
        description="The lines that count (required for QUANTITY); null: every eligible line.",
    )
    activity_kind: ActivityKind | None = Field(
        default=None, description="ACTIVITY: the activity, as ActivityRecorded names it."
    )
    activity_custom_name: Id | None = Field(
        default=None,
        description="ACTIVITY: the business-defined activity's name, when activity_kind is CUSTOM.",
    )

    @model_validator(mode="after")
    def _check_kind_specific_fields(self) -> Self:
        require_kind_fields(self, "behaviour", self.kind, _BEHAVIOUR_USES)
        if self.window_days is not None and self.accumulation is Accumulation.SINGLE_TRANSACTION:
            raise ValueError("window_days applies to ACCUMULATED behaviours only")
        if (self.activity_kind is ActivityKind.CUSTOM) != (self.activity_custom_name is not None):
            raise ValueError("activity_custom_name is given exactly when activity_kind is CUSTOM")
        return self

    @property
    def threshold(self) -> Decimal | None:
        """The behaviour's threshold in its own unit, or None for ACTIVITY (and UNKNOWN)."""
        field = THRESHOLD_FIELD.get(self.kind)
        value = getattr(self, field) if field else None
        return None if value is None else Decimal(value)


# --- discounts ----------------------------------------------------------------------------


class DiscountKind(ContractEnum):
    """A non-points reward delivered at the till or checkout (seed 003, 001)."""

    AMOUNT_OFF_ITEMS = "AMOUNT_OFF_ITEMS"  # $ off item(s), split pro-rata over them
    AMOUNT_OFF_CART = "AMOUNT_OFF_CART"  # $ off the total cart
    PERCENT_OFF_ITEMS = "PERCENT_OFF_ITEMS"  # % off item(s), per line
    PERCENT_OFF_CART = "PERCENT_OFF_CART"  # % off the total cart
    FREE_ITEM = "FREE_ITEM"  # the cheapest matching unit(s) free
    BUNDLE_PRICE = "BUNDLE_PRICE"  # N matching units for a fixed price ("3 for $10")
    COMBO_PRICE = "COMBO_PRICE"  # one unit of each of several selections for a fixed price
    UNKNOWN = "UNKNOWN"


_DISCOUNT_USES: Final[KindUses] = {
    DiscountKind.AMOUNT_OFF_ITEMS: (("amount_off_cents",), ("products", "spend_min_cents")),
    DiscountKind.AMOUNT_OFF_CART: (("amount_off_cents",), ("spend_min_cents",)),
    DiscountKind.PERCENT_OFF_ITEMS: (
        ("percent_off",),
        ("products", "discount_max_cents", "spend_min_cents"),
    ),
    DiscountKind.PERCENT_OFF_CART: (("percent_off",), ("discount_max_cents", "spend_min_cents")),
    DiscountKind.FREE_ITEM: (("products", "free_units"), ("spend_min_cents",)),
    DiscountKind.BUNDLE_PRICE: (
        ("products", "bundle_units", "bundle_price_cents"),
        ("spend_min_cents",),
    ),
    DiscountKind.COMBO_PRICE: (("combo_products", "bundle_price_cents"), ("spend_min_cents",)),
}

PRICE_DISCOUNTS: Final = frozenset({DiscountKind.BUNDLE_PRICE, DiscountKind.COMBO_PRICE})
"""Discounts that sell a group of units at a fixed price (docs/adr/0038)."""
ITEM_DISCOUNTS: Final = frozenset(
    {
        DiscountKind.AMOUNT_OFF_ITEMS,
        DiscountKind.PERCENT_OFF_ITEMS,
        DiscountKind.FREE_ITEM,
        *PRICE_DISCOUNTS,
    }
)
COMBO_SELECTIONS_MAX: Final = 10


class DiscountTerms(Record):
    """A discount: item-level ones apply first, then cart-level ones on what remains; a
    discount never exceeds what it applies to (DESIGN.md §5.9)."""

    kind: DiscountKind = Field(description="What kind of discount.")
    amount_off_cents: Cents | None = Field(
        default=None, gt=0, description="AMOUNT_OFF_*: the amount taken off, minor units."
    )
    percent_off: Percent | None = Field(
        default=None, description="PERCENT_OFF_*: the percentage taken off (two decimals)."
    )
    discount_max_cents: Cents | None = Field(
        default=None, gt=0, description="PERCENT_OFF_*: the most it may take off, minor units."
    )
    free_units: int | None = Field(
        default=None, ge=1, le=100, description="FREE_ITEM: how many units are free."
    )
    bundle_units: int | None = Field(
        default=None,
        ge=2,
        le=100,
        description="BUNDLE_PRICE: how many units of its products make one bundle (the N of "
        "'N for $X').",
    )
    combo_products: list[ProductSelection] = Field(
        default_factory=list,
        max_length=COMBO_SELECTIONS_MAX,
        description="COMBO_PRICE: the combo's selections (2 to 10), each giving one unit to "
        "every combo (a sandwich, a drink, a cookie).",
    )
    bundle_price_cents: Cents | None = Field(
        default=None,
        gt=0,
        description="BUNDLE_PRICE, COMBO_PRICE: what one bundle or combo costs, minor units. A "
        "bundle whose units cost no more than this is not formed.",
    )
    products: ProductSelection | None = Field(
        default=None,
        description="*_ITEMS, FREE_ITEM: the lines it applies to. For an offer, null on *_ITEMS "
        "means the lines its behaviours select.",
    )
    spend_min_cents: Cents | None = Field(
        default=None,
        gt=0,
        description="Rewards and promo codes only: least eligible spend for it to apply (e.g. "
        "10% off a bill over $100). An offer states this as a SPEND behaviour instead.",
    )

    @model_validator(mode="after")
    def _check_kind_specific_fields(self) -> Self:
        require_kind_fields(self, "discount", self.kind, _DISCOUNT_USES)
        if self.kind is DiscountKind.COMBO_PRICE and len(self.combo_products) < 2:
            raise ValueError(
                f"combo_products of a COMBO_PRICE lists 2 to {COMBO_SELECTIONS_MAX} selections, "
                f"not {len(self.combo_products)}: one selection's units are a BUNDLE_PRICE"
            )
        return self

    @property
    def names_its_items(self) -> bool:
        """Whether the discount names the lines it applies to (`products`, or a combo's
        `combo_products`) rather than leaving them to an offer's behaviours."""
        return self.products is not None or bool(self.combo_products)


def standalone_discount_problems(discount: DiscountTerms | None) -> list[str]:
    """What is missing from a discount that has no offer behaviours to select its items."""
    if discount is not None and discount.kind in ITEM_DISCOUNTS and not discount.names_its_items:
        return [f"a {discount.kind.value} discount outside an offer names its products"]
    return []


# --- rewards ------------------------------------------------------------------------------


class OfferRewardKind(ContractEnum):
    """What an offer pays (seed 003, "Offer reward types")."""

    FLAT_POINTS = "FLAT_POINTS"  # a fixed number of points
    BASE_MULTIPLIER = "BASE_MULTIPLIER"  # k × base points on the covered lines (k may be 1.5)
    TIER_MULTIPLIER = "TIER_MULTIPLIER"  # k × base points, k by the member's programme tier
    DISCOUNT = "DISCOUNT"  # $ off or % off items or cart, or a free item
    REWARD = "REWARD"  # a catalogue reward granted to the member (10 visits → a free coffee)
    UNKNOWN = "UNKNOWN"


POINTS_REWARDS: Final = frozenset(
    {OfferRewardKind.FLAT_POINTS, OfferRewardKind.BASE_MULTIPLIER, OfferRewardKind.TIER_MULTIPLIER}
)


class PayoutMode(ContractEnum):
    """How often one use pays (DESIGN.md §5.5)."""

    MINIMUM = "MINIMUM"  # once, when the threshold is met
    FOR_EVERY = "FOR_EVERY"  # floor(progress / threshold) times
    UNKNOWN = "UNKNOWN"


class TierMultiplier(Record):
    """The multiplier a TIER_MULTIPLIER offer gives members of one programme tier."""

    tier_id: Id = Field(description="The programme tier (ProgramConfigured.tiers).")
    multiplier: Multiplier = Field(description="k: the member's total is k × base.")


class OfferRewardTier(Record):
    """One reward tier ("spend more, get more"): reaching its threshold pays its value. Exactly
    one threshold and one value are set; the highest tier reached pays, not the sum."""

    threshold_cents: Cents | None = Field(
        default=None, gt=0, description="For a SPEND behaviour: spend reaching this tier."
    )
    threshold_quantity: Quantity | None = Field(
        default=None, gt=0, description="For a QUANTITY behaviour: quantity reaching this tier."
    )
    threshold_points: Points | None = Field(
        default=None,
        gt=0,
        description="For a POINTS_REDEMPTION behaviour: points redeemed reaching this tier.",
    )
    threshold_count: int | None = Field(
        default=None,
        ge=1,
        le=LONG_MAX,
        description="For a VISITS behaviour: visits reaching this tier.",
    )
    points: Points | None = Field(default=None, gt=0, description="FLAT_POINTS: points paid.")
    multiplier: Multiplier | None = Field(
        default=None, description="BASE_MULTIPLIER: the multiplier paid."
    )
    discount: DiscountTerms | None = Field(default=None, description="DISCOUNT: the discount.")

    @model_validator(mode="after")
    def _check_one_threshold_one_value(self) -> Self:
        if len(self.threshold_fields()) != 1:
            raise ValueError("a reward tier sets exactly one threshold_* field")
        if sum(v is not None for v in (self.points, self.multiplier, self.discount)) != 1:
            raise ValueError("a reward tier sets exactly one of points, multiplier, discount")
        return self

    def threshold_fields(self) -> list[str]:
        """The names of the threshold fields set (exactly one once validated)."""
        names = ("threshold_cents", "threshold_quantity", "threshold_points", "threshold_count")
        return [name for name in names if getattr(self, name) is not None]

    @property
    def threshold(self) -> Decimal:
        """The tier's threshold, in the unit of its behaviour."""
        return Decimal(getattr(self, self.threshold_fields()[0]))


TIER_THRESHOLD_FIELD: Final[Mapping[BehaviourKind, str]] = {
    BehaviourKind.SPEND: "threshold_cents",
    BehaviourKind.QUANTITY: "threshold_quantity",
    BehaviourKind.POINTS_REDEMPTION: "threshold_points",
    BehaviourKind.VISITS: "threshold_count",
}

_REWARD_VALUE_FIELD: Final[Mapping[OfferRewardKind, str]] = {
    OfferRewardKind.FLAT_POINTS: "points",
    OfferRewardKind.BASE_MULTIPLIER: "multiplier",
    OfferRewardKind.DISCOUNT: "discount",
}
_REWARD_USES: Final[KindUses] = {
    **{kind: ((field,), ()) for kind, field in _REWARD_VALUE_FIELD.items()},
    OfferRewardKind.TIER_MULTIPLIER: (("tier_multipliers",), ()),
    OfferRewardKind.REWARD: (("reward_id",), ()),
}
_REWARD_FIELDS: Final = (
    "points", "multiplier", "tier_multipliers", "discount", "tiers", "reward_id"
)  # fmt: skip


class OfferReward(Record):
    """What one use of an offer pays: a `kind`, its value (or reward tiers), and the payout."""

    kind: OfferRewardKind = Field(description="What the offer pays.")
    payout: PayoutMode = Field(
        default=PayoutMode.MINIMUM,
        description="MINIMUM pays once per use; FOR_EVERY pays once per multiple of the "
        "threshold (FLAT_POINTS, or AMOUNT_OFF_*/FREE_ITEM discounts, with one behaviour).",
    )
    points: Points | None = Field(
        default=None, gt=0, description="FLAT_POINTS: points paid per payout."
    )
    multiplier: Multiplier | None = Field(
        default=None, description="BASE_MULTIPLIER: k, with one decimal place (1.5 = +50 %)."
    )
    tier_multipliers: list[TierMultiplier] = Field(
        default_factory=list,
        max_length=20,
        description="TIER_MULTIPLIER: the multiplier per programme tier; members of tiers not "
        "listed get no bonus.",
    )
    discount: DiscountTerms | None = Field(
        default=None, description="DISCOUNT: the discount given per payout."
    )
    reward_id: Id | None = Field(
        default=None,
        description="REWARD: the catalogue reward (RewardPublished) granted per use, free; "
        "its code stock and limits apply.",
    )
    tiers: list[OfferRewardTier] = Field(
        default_factory=list,
        max_length=10,
        description="Reward tiers, lowest threshold first; when given (2 to 10) they replace "
        "points/multiplier/discount, the first tier's threshold is the behaviour's, and the "
        "highest tier reached pays (DESIGN.md §5.7).",
    )

    @model_validator(mode="after")
    def _check_kind_specific_fields(self) -> Self:
        value_field = _REWARD_VALUE_FIELD.get(self.kind)
        if self.tiers and value_field is not None and getattr(self, value_field) is not None:
            raise ValueError(
                f"with reward tiers each tier gives the {value_field}: leave the reward's "
                f"{value_field} null"
            )
        uses = _REWARD_USES
        if self.tiers and value_field is not None:
            # With tiers, each tier carries the value and the reward itself carries none.
            uses = {**_REWARD_USES, self.kind: ((), ("tiers",))}
        require_kind_fields(self, "reward", self.kind, uses, among=_REWARD_FIELDS)
        if self.kind is OfferRewardKind.REWARD and (self.tiers or self.payout is not
                                                    PayoutMode.MINIMUM):  # fmt: skip
            raise ValueError("a REWARD offer grants one reward per use: no tiers, MINIMUM")
        tier_ids = [t.tier_id for t in self.tier_multipliers]
        if len(set(tier_ids)) != len(tier_ids):
            raise ValueError("tier_multipliers names each programme tier at most once")
        if self.tiers:
            self._check_tiers(value_field)
        return self

    def _check_tiers(self, value_field: str | None) -> None:
        if len(self.tiers) < 2:
            raise ValueError("reward tiers come two or more; one tier is a plain reward")
        if self.payout is PayoutMode.FOR_EVERY:
            raise ValueError("reward tiers pay the highest tier reached: payout must be MINIMUM")
        if value_field is not None and any(getattr(t, value_field) is None for t in self.tiers):
            raise ValueError(f"every tier of a {self.kind.value} reward sets {value_field}")
        if len({tuple(t.threshold_fields()) for t in self.tiers}) != 1:
            raise ValueError("every reward tier uses the same threshold_* field")
        thresholds = [t.threshold for t in self.tiers]
        if any(a >= b for a, b in pairwise(thresholds)):
            raise ValueError("reward tiers are listed by strictly increasing threshold")


# --- targeting ----------------------------------------------------------------------------


class TargetingKind(ContractEnum):
    """Who an offer is for."""

    MASS = "MASS"  # every member of the offer's programme
    AUDIENCE_LIST = "AUDIENCE_LIST"  # an uploaded list of members (AudienceUploaded)
    CRITERIA = "CRITERIA"  # members matching every criterion (profile, history, engagement)
    UNKNOWN = "UNKNOWN"


class TargetingTiming(ContractEnum):
    """When the audience is decided (DESIGN.md §5.17, seed 003)."""

    STATIC = "STATIC"  # once, when the offer is published
    DELAYED_STATIC = "DELAYED_STATIC"  # once, at targeting_at (by the clock), before the start
    DYNAMIC = "DYNAMIC"  # at the moment the behaviour happens
    TRIGGERED = "TRIGGERED"  # when the member performs the trigger activity
    UNKNOWN = "UNKNOWN"


class TargetingAttribute(ContractEnum):
    """A member fact a targeting criterion tests. Set attributes compare `values`; numeric ones
    compare min_value/max_value; aggregates also need lookback_days."""

    # Profile (set): the member's value must be one of `values`.
    CITY = "CITY"
    PROVINCE = "PROVINCE"
    POSTAL_CODE_PREFIX = "POSTAL_CODE_PREFIX"  # the postal code starts with one of `values`
    COUNTRY = "COUNTRY"
    GENDER = "GENDER"
    BIRTHDAY_MONTH = "BIRTHDAY_MONTH"  # values "1".."12"
    TIER = "TIER"  # the member's programme tier id
    PROFILE_ATTRIBUTE = "PROFILE_ATTRIBUTE"  # MemberProfile.attributes[key]: segments, scores
    # Profile and engagement (numeric): days since the fact; a member without it never matches.
    AGE_YEARS = "AGE_YEARS"
    DAYS_SINCE_ENROLMENT = "DAYS_SINCE_ENROLMENT"
    DAYS_SINCE_FIRST_PURCHASE = "DAYS_SINCE_FIRST_PURCHASE"
    DAYS_SINCE_LAST_PURCHASE = "DAYS_SINCE_LAST_PURCHASE"
    DAYS_SINCE_APP_DOWNLOAD = "DAYS_SINCE_APP_DOWNLOAD"
    DAYS_SINCE_LAST_LOGIN = "DAYS_SINCE_LAST_LOGIN"
    DAYS_SINCE_LAST_EMAIL_CLICK = "DAYS_SINCE_LAST_EMAIL_CLICK"
    # Purchase history and communications (numeric aggregates over lookback_days).
    SPEND_CENTS = "SPEND_CENTS"
    TRANSACTION_COUNT = "TRANSACTION_COUNT"
    AVERAGE_ORDER_CENTS = "AVERAGE_ORDER_CENTS"
    CATEGORY_SPEND_CENTS = "CATEGORY_SPEND_CENTS"  # spend in the product category `key`
    EMAIL_CLICK_COUNT = "EMAIL_CLICK_COUNT"
    UNKNOWN = "UNKNOWN"


_SET_ATTRIBUTES: Final = frozenset(
    {
        TargetingAttribute.CITY,
        TargetingAttribute.PROVINCE,
        TargetingAttribute.POSTAL_CODE_PREFIX,
        TargetingAttribute.COUNTRY,
        TargetingAttribute.GENDER,
        TargetingAttribute.BIRTHDAY_MONTH,
        TargetingAttribute.TIER,
        TargetingAttribute.PROFILE_ATTRIBUTE,
    }
)
_AGGREGATES: Final = frozenset(
    {
        TargetingAttribute.SPEND_CENTS,
        TargetingAttribute.TRANSACTION_COUNT,
        TargetingAttribute.AVERAGE_ORDER_CENTS,
        TargetingAttribute.CATEGORY_SPEND_CENTS,
        TargetingAttribute.EMAIL_CLICK_COUNT,
    }
)
_KEYED: Final = frozenset(
    {TargetingAttribute.PROFILE_ATTRIBUTE, TargetingAttribute.CATEGORY_SPEND_CENTS}
)
_MONTHS: Final = frozenset(str(month) for month in range(1, 13))


def _criterion_uses() -> KindUses:
    uses: dict[ContractEnum, tuple[tuple[str, ...], tuple[str, ...]]] = {}
    for attribute in TargetingAttribute:
        if attribute is TargetingAttribute.UNKNOWN:
            continue
        needs: tuple[str, ...] = ("key",) if attribute in _KEYED else ()
        if attribute in _SET_ATTRIBUTES:
            uses[attribute] = (("values", *needs), ())
        elif attribute in _AGGREGATES:
            uses[attribute] = (("lookback_days", *needs), ("min_value", "max_value"))
        else:
            uses[attribute] = (needs, ("min_value", "max_value"))
    return uses


_CRITERION_USES: Final = _criterion_uses()


class TargetingCriterion(Record):
    """One test on a member's profile, purchase history or engagement."""

    attribute: TargetingAttribute = Field(description="The member fact tested.")
    key: ProductValue | None = Field(
        default=None,
        description="PROFILE_ATTRIBUTE: the profile attribute's name. CATEGORY_SPEND_CENTS: the "
        "product category.",
    )
    values: list[ProductValue] = Field(
        default_factory=list,
        max_length=LIST_MAX,
        description="Set attributes: the member's value must be one of these.",
    )
    min_value: int | None = Field(
        default=None, ge=0, le=LONG_MAX, description="Numeric attributes: least value, inclusive."
    )
    max_value: int | None = Field(
        default=None,
        ge=0,
        le=LONG_MAX,
        description="Numeric attributes: greatest value, inclusive.",
    )
    lookback_days: int | None = Field(
        default=None,
        ge=1,
        le=3660,
        description="Aggregates: the number of days before the targeting moment summed over.",
    )

    @model_validator(mode="after")
    def _check_attribute_specific_fields(self) -> Self:
        require_kind_fields(self, "criterion", self.attribute, _CRITERION_USES)
        numeric = self.attribute not in _SET_ATTRIBUTES | {TargetingAttribute.UNKNOWN}
        if numeric and self.min_value is None and self.max_value is None:
            raise ValueError(f"criterion {self.attribute.value} needs min_value or max_value")
        if (
            self.min_value is not None
            and self.max_value is not None
            and self.min_value > self.max_value
        ):
            raise ValueError("min_value must not be greater than max_value")
        if self.attribute is TargetingAttribute.BIRTHDAY_MONTH and not set(self.values) <= _MONTHS:
            raise ValueError("BIRTHDAY_MONTH values are months 1 to 12, without leading zeros")
        return self


class StoreLocations(Record):
    """Where an offer can be used: a transaction counts only at a store matching every
    non-empty list (any value within a list) and every store attribute given."""

    store_ids: list[Id] = Field(
        default_factory=list, max_length=LIST_MAX, description="These stores."
    )
    countries: list[CountryCode] = Field(
        default_factory=list, max_length=300, description="ISO 3166-1 alpha-2 country codes."
    )
    provinces: list[ProvinceCode] = Field(
        default_factory=list, max_length=LIST_MAX, description="Province or state codes."
    )
    postal_code_prefixes: list[ProductValue] = Field(
        default_factory=list,
        max_length=LIST_MAX,
        description="The store's postal code starts with one of these.",
    )
    banners: list[ProductValue] = Field(
        default_factory=list, max_length=LIST_MAX, description="Retail banners."
    )
    store_attributes: dict[str, str] = Field(
        default_factory=dict,
        description="Extended store data that must match exactly (Store.attributes).",
    )

    @model_validator(mode="after")
    def _check_not_empty(self) -> Self:
        if not any(_is_set(getattr(self, name)) for name in type(self).model_fields):
            raise ValueError("store locations name at least one store, place, banner or attribute")
        return self


_TARGETING_USES: Final[KindUses] = {
    TargetingKind.MASS: ((), ()),
    TargetingKind.AUDIENCE_LIST: (("audience_id",), ()),
    TargetingKind.CRITERIA: (("criteria",), ()),
}
_TIMING_USES: Final[KindUses] = {
    TargetingTiming.STATIC: ((), ()),
    TargetingTiming.DELAYED_STATIC: (("targeting_at",), ()),
    TargetingTiming.DYNAMIC: ((), ()),
    TargetingTiming.TRIGGERED: (
        ("trigger_activity_kind", "trigger_fires_per_member_max"),
        ("trigger_activity_custom_name", "trigger_valid_days"),
    ),
}

CONTROL_SHARE_MAX_PERCENT: Final = 50
"""The largest hold-out: seed 003 says "generally 10%-20%"; above half, the offer is the test."""


class OfferTargeting(Record):
    """Who gets an offer, when the audience is decided, where it can be used, and the share
    held out as control."""

    kind: TargetingKind = Field(description="Who the offer is for.")
    timing: TargetingTiming = Field(description="When the audience is decided.")
    audience_id: Id | None = Field(
        default=None, description="AUDIENCE_LIST: the uploaded audience (AudienceUploaded)."
    )
    criteria: list[TargetingCriterion] = Field(
        default_factory=list,
        max_length=50,
        description="CRITERIA: tests a member must all pass (AND).",
    )
    targeting_at: UtcDatetime | None = Field(
        default=None,
        description="DELAYED_STATIC: when the audience is decided, on or before the start.",
    )
    trigger_activity_kind: ActivityKind | None = Field(
        default=None,
        description="TRIGGERED: the activity that targets the member (e.g. PARTNER_CARD_LINKED).",
    )
    trigger_activity_custom_name: Id | None = Field(
        default=None,
        description="TRIGGERED: the business-defined activity, when trigger_activity_kind is "
        "CUSTOM.",
    )
    trigger_fires_per_member_max: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="TRIGGERED: how many times the trigger may target one member (1: a one-time "
        "trigger).",
    )
    trigger_valid_days: int | None = Field(
        default=None,
        ge=1,
        le=3660,
        description="TRIGGERED: days a triggered member has to complete the offer; null: until "
        "the offer ends.",
    )
    locations: StoreLocations | None = Field(
        default=None, description="Where the offer can be used; null: every store and channel."
    )
    control_share_percent: int = Field(
        default=0,
        ge=0,
        le=CONTROL_SHARE_MAX_PERCENT,
        description="Share of the audience held out as control, 0 to "
        f"{CONTROL_SHARE_MAX_PERCENT} percent: chosen by a stable hash of (offer_id, "
        "member_id), tracked as if targeted, never rewarded (DESIGN.md §5.16).",
    )

    @model_validator(mode="after")
    def _check_kind_and_timing_fields(self) -> Self:
        require_kind_fields(self, "targeting", self.kind, _TARGETING_USES)
        require_kind_fields(self, "targeting timing", self.timing, _TIMING_USES)
        custom = self.trigger_activity_kind is ActivityKind.CUSTOM
        if custom != (self.trigger_activity_custom_name is not None):
            raise ValueError(
                "trigger_activity_custom_name is given exactly when trigger_activity_kind is CUSTOM"
            )
        return self


# --- activation, controls, reward store ---------------------------------------------------


class ActivationKind(ContractEnum):
    """What a targeted member must do, besides the behaviour, for it to count."""

    AUTOMATIC = "AUTOMATIC"  # nothing: auto load
    COUPON_CODE = "COUPON_CODE"  # the coupon code must be in the cart
    LOAD_TO_CARD = "LOAD_TO_CARD"  # the member must load (accept) the offer first
    PROMOTION_CODE = "PROMOTION_CODE"  # a valid code of a promotion naming the offer
    UNKNOWN = "UNKNOWN"


class OfferActivation(Record):
    """How a targeted member activates an offer (seed 003, "Offer activation")."""

    kind: ActivationKind = Field(description="How the offer is activated.")
    coupon_code: PromoCode | None = Field(
        default=None,
        description="COUPON_CODE: the code that must be in the cart. A single-use coupon is a "
        "per-member use limit of 1.",
    )

    @model_validator(mode="after")
    def _check_kind_specific_fields(self) -> Self:
        uses: KindUses = {
            ActivationKind.AUTOMATIC: ((), ()),
            ActivationKind.COUPON_CODE: (("coupon_code",), ()),
            ActivationKind.LOAD_TO_CARD: ((), ()),
            ActivationKind.PROMOTION_CODE: ((), ()),
        }
        require_kind_fields(self, "activation", self.kind, uses)
        return self


class OfferUsageControls(Record):
    """Limits on an offer's uses and points; null means no limit. Caps clip: the award that
    crosses a cap pays what remains, then nothing (DESIGN.md §5.19, §5.20)."""

    uses_per_member_max: int | None = Field(
        default=None,
        ge=1,
        le=LONG_MAX,
        description="Uses one member may have (one use = one award).",
    )
    uses_total_max: int | None = Field(
        default=None, ge=1, le=LONG_MAX, description="Uses all members together may have."
    )
    points_per_member_max: Points | None = Field(
        default=None, gt=0, description="Points one member may earn from the offer in all."
    )
    points_per_transaction_max: Points | None = Field(
        default=None, gt=0, description="Points the offer may award in one transaction."
    )
    budget_points_max: Points | None = Field(
        default=None, gt=0, description="Points the offer may award to all members together."
    )

    @property
    def limits_points(self) -> bool:
        """True when a points cap or budget is set."""
        caps = (self.points_per_member_max, self.points_per_transaction_max)
        return any(cap is not None for cap in (*caps, self.budget_points_max))


class RewardStoreListing(Record):
    """An offer sold in a reward store: a member buys it with points and it is issued to them,
    to lock and redeem in a later transaction (seed 002)."""

    reward_store_id: Id = Field(description="The reward store that sells the offer.")
    points_cost: Points = Field(
        gt=0, description="Points the member pays, from the offer's programme."
    )


# --- consistency of a whole definition ----------------------------------------------------


def definition_problems(
    schedule: OfferSchedule,
    targeting: OfferTargeting,
    behaviours: Sequence[Behaviour],
    reward: OfferReward,
    usage: OfferUsageControls,
) -> list[str]:
    """What is inconsistent between the parts of an offer's definition; empty when nothing."""
    problems = []
    if targeting.targeting_at is not None and targeting.targeting_at > schedule.starts_at:
        problems.append(
            f"targeting_at ({_iso(targeting.targeting_at)}) must not be after starts_at "
            f"({_iso(schedule.starts_at)})"
        )
    measurable = [b for b in behaviours if b.kind in THRESHOLD_FIELD]
    if reward.payout is PayoutMode.FOR_EVERY:
        problems += _for_every_problems(behaviours, measurable, reward)
    if reward.tiers:
        problems += _tier_problems(behaviours, measurable, reward)
    discounts = [reward.discount, *(t.discount for t in reward.tiers)]
    for discount in (d for d in discounts if d is not None):
        if discount.spend_min_cents is not None:
            problems.append("an offer's discount states its least spend as a SPEND behaviour")
        needs_lines = discount.kind in ITEM_DISCOUNTS and not discount.names_its_items
        if needs_lines and not any(b.products and b.products.has_includes for b in behaviours):
            problems.append(
                f"a {discount.kind.value} discount without products needs a behaviour that "
                "selects products"
            )
    if usage.limits_points and reward.kind not in POINTS_REWARDS | {OfferRewardKind.UNKNOWN}:
        problems.append("points caps and budgets apply to points rewards only")
    return problems


def _for_every_problems(
    behaviours: Sequence[Behaviour], measurable: Sequence[Behaviour], reward: OfferReward
) -> list[str]:
    if len(behaviours) != 1 or len(measurable) != 1 or measurable[0].kind is BehaviourKind.VISITS:
        return [
            "FOR_EVERY divides one behaviour's progress by its threshold: it needs exactly one "
            "SPEND, QUANTITY or POINTS_REDEMPTION behaviour"
        ]
    paid_per_multiple = reward.kind is OfferRewardKind.FLAT_POINTS or (
        reward.discount is not None
        and reward.discount.kind
        in {DiscountKind.AMOUNT_OFF_ITEMS, DiscountKind.AMOUNT_OFF_CART, DiscountKind.FREE_ITEM}
    )
    if not paid_per_multiple and reward.kind is not OfferRewardKind.UNKNOWN:
        return ["FOR_EVERY pays flat points, an amount off or a free item per multiple"]
    return []


def _tier_problems(
    behaviours: Sequence[Behaviour], measurable: Sequence[Behaviour], reward: OfferReward
) -> list[str]:
    if len(behaviours) != 1 or len(measurable) != 1:
        return ["reward tiers need exactly one measurable behaviour to climb"]
    behaviour = measurable[0]
    expected = TIER_THRESHOLD_FIELD[behaviour.kind]
    if reward.tiers[0].threshold_fields() != [expected]:
        return [f"the tiers of a {behaviour.kind.value} behaviour use {expected}"]
    if reward.tiers[0].threshold != behaviour.threshold:
        return [
            f"the first tier's {expected} must equal the behaviour's "
            f"{THRESHOLD_FIELD[behaviour.kind]}"
        ]
    return []
