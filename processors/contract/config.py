"""Topic `loyalty.config.v1`: the engine's configuration as events (programmes, offers, master
rewards and their code stock, reward stores, promo codes, challenges, audiences), compacted,
one partition.

Record keys and compaction: compaction keeps only the latest record per key, so a key names
what a record *replaces*.
- A definition (ProgramConfigured, OfferPublished, RewardPublished, RewardStoreConfigured,
  ChallengePublished) is keyed by its entity id: publishing again replaces the previous
  definition as a whole.
- An addition or a change to a definition (OfferEndDateExtended, OfferWithdrawn,
  RewardCodesAdded, PromotionCodesIssued, AudienceUploaded) is keyed by its own `event_id`:
  keyed by the entity id it would erase that entity's definition (or the earlier code
  batches) from the compacted log. Redelivery keeps the event_id, so it compacts to one.
The single partition keeps one order across entities, so a replay of the compacted log applies
the surviving records in the order they were first applied.

This module checks each event on its own; rules needing state (is the offer live, may its end
move, is a code already issued) live in `processors.rules`.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, ClassVar, Final, Self

from pydantic import AfterValidator, Field, model_validator

from processors.base import topics
from processors.contract.activities import ActivityKind
from processors.contract.base import (
    LONG_MAX,
    Cents,
    ContractEnum,
    Currency,
    Event,
    Id,
    Market,
    OfferId,
    Points,
    Rank,
    Record,
    Text,
    UtcDatetime,
)
from processors.contract.common import PointsCategory
from processors.contract.notifications import ContactChannel
from processors.contract.offer_definition import (
    LIST_MAX,
    Behaviour,
    BehaviourKind,
    BehaviourOperator,
    DiscountKind,
    DiscountTerms,
    EndsAt,
    KindUses,
    LocalizedCopy,
    OfferActivation,
    OfferReward,
    OfferSchedule,
    OfferTargeting,
    OfferUsageControls,
    ProductSelection,
    PromoCode,
    ProvinceCode,
    RewardStoreListing,
    TargetingCriterion,
    definition_problems,
    require_kind_fields,
    require_locales,
    standalone_discount_problems,
)
from processors.contract.redemptions import PromoCodeMode

TOPIC = topics.CONFIG.name


def _four_places(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.0001"))


PointsRate = Annotated[
    Decimal, Field(ge=0, max_digits=10, decimal_places=4), AfterValidator(_four_places)
]
"""Points per unit of currency, up to 4 decimal places (e.g. 0.3333 for 1 point per $3)."""

TimeZone = Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z]+(?:/[A-Za-z0-9_+-]+)*$")]
"""An IANA time zone name, e.g. `America/Toronto`."""

FileName = Annotated[str, Field(min_length=1, max_length=255)]
"""The name of an uploaded file, as the uploader gave it."""

_COPY = (
    "Customer-facing copy, once per locale; en and fr are required (plain text, per-field "
    "limits in processors.contract.offer_definition.COPY_LIMITS)."
)

# --- programme ----------------------------------------------------------------------------


class ExpiryPolicyKind(ContractEnum):
    """How a programme's points expire (DESIGN.md §5.12); dates are in the programme's zone."""

    NONE = "NONE"  # points never expire
    DAYS_AFTER_EARN = "DAYS_AFTER_EARN"  # `days` after the lot was earned
    END_OF_MONTH_AFTER_MONTHS = "END_OF_MONTH_AFTER_MONTHS"  # end of the month `months` later
    END_OF_YEAR_AFTER_MONTHS = "END_OF_YEAR_AFTER_MONTHS"  # end of the year `months` later
    UNKNOWN = "UNKNOWN"


_EXPIRY_USES: Final[KindUses] = {
    ExpiryPolicyKind.NONE: ((), ()),
    ExpiryPolicyKind.DAYS_AFTER_EARN: (("days",), ()),
    ExpiryPolicyKind.END_OF_MONTH_AFTER_MONTHS: (("months",), ()),
    ExpiryPolicyKind.END_OF_YEAR_AFTER_MONTHS: (("months",), ()),
}


class ExpiryPolicy(Record):
    """When a lot of points expires, from the local date it was earned.

    END_OF_MONTH_AFTER_MONTHS n: the end of the month n months after the earning month (n = 0:
    the end of the earning month). END_OF_YEAR_AFTER_MONTHS n: the end of the calendar year in
    which the earning date plus n months falls. "End" is the last local day, 23:59:59.999.
    """

    kind: ExpiryPolicyKind = Field(description="How points expire.")
    days: int | None = Field(
        default=None, ge=1, le=3660, description="DAYS_AFTER_EARN: days until expiry."
    )
    months: int | None = Field(
        default=None, ge=0, le=120, description="END_OF_*_AFTER_MONTHS: months added."
    )

    @model_validator(mode="after")
    def _check_kind_specific_fields(self) -> Self:
        require_kind_fields(self, "expiry policy", self.kind, _EXPIRY_USES)
        return self


class PromisedPointsRelease(ContractEnum):
    """What turns promised points into regular points (DESIGN.md §5.13)."""

    AFTER_DAYS = "AFTER_DAYS"  # held in PROMISED for `hold_days` (the return window)
    ON_ACTIVITY = "ON_ACTIVITY"  # held in TRIGGER until the member performs the activity
    UNKNOWN = "UNKNOWN"


_PROMISED_USES: Final[KindUses] = {
    PromisedPointsRelease.AFTER_DAYS: (("hold_days",), ()),
    PromisedPointsRelease.ON_ACTIVITY: (("activity_kind",), ("activity_custom_name",)),
}

_HELD_IN: Final = {
    PromisedPointsRelease.AFTER_DAYS: PointsCategory.PROMISED,
    PromisedPointsRelease.ON_ACTIVITY: PointsCategory.TRIGGER,
}


class PromisedPointsPolicy(Record):
    """Points earned on transactions (base and offer awards) are held, then converted to
    REGULAR in one ledger event whose points_on_event is 0."""

    release: PromisedPointsRelease = Field(description="What releases held points.")
    hold_days: int | None = Field(
        default=None, ge=1, le=365, description="AFTER_DAYS: days points are held."
    )
    activity_kind: ActivityKind | None = Field(
        default=None, description="ON_ACTIVITY: the activity that releases them."
    )
    activity_custom_name: Id | None = Field(
        default=None, description="ON_ACTIVITY: the custom activity, when activity_kind is CUSTOM."
    )

    @model_validator(mode="after")
    def _check_kind_specific_fields(self) -> Self:
        require_kind_fields(self, "promised points policy", self.release, _PROMISED_USES)
        if (self.activity_kind is ActivityKind.CUSTOM) != (self.activity_custom_name is not None):
            raise ValueError("activity_custom_name is given exactly when activity_kind is CUSTOM")
        return self

    @property
    def held_in(self) -> PointsCategory | None:
        """The category points wait in: PROMISED for a hold period, TRIGGER for an activity."""
        return _HELD_IN.get(self.release)


class GlobalExclusion(Record):
    """Products that never earn base points in one province's stores (DESIGN.md §5.3, §5.22),
    and that offers switching global exclusions on leave out: SKUs, or any part of the product
    hierarchy (category, subcategory, brand, GTIN) through the same selection offers use."""

    province: ProvinceCode = Field(description="The store province (Store.province).")
    skus: list[Id] = Field(
        default_factory=list, max_length=LIST_MAX, description="The excluded products' SKUs."
    )
    products: list[ProductSelection] = Field(
        default_factory=list,
        max_length=100,
        description="Products excluded by the hierarchy, each selection as an offer selects "
        "products: a line any of them selects is excluded (e.g. [{categories: [TOBACCO]}, "
        "{brands: [LOTO]}]: a new SKU of the category or the brand is excluded too).",
    )

    @model_validator(mode="after")
    def _check_names_products(self) -> Self:
        if not self.skus and not self.products:
            raise ValueError("a global exclusion names skus or products")
        return self


class ProgramTier(Record):
    """A level of the programme's tier ladder. A member's tier is their profile attribute
    `tier` (MemberProfile.attributes), set by whoever runs tier qualification."""

    tier_id: Id = Field(description="The tier's id, e.g. GOLD.")
    name: str = Field(min_length=1, max_length=64, description="Display name.")
    level: int = Field(ge=1, le=100, description="Position on the ladder: 1 is the entry tier.")


class PointsRedemptionRule(Record):
    """How points buy a discount (PointsRedemptionRequested): in whole blocks of points."""

    points_per_block: Points = Field(gt=0, description="Points in one block, e.g. 1000.")
    cents_per_block: int = Field(
        gt=0, le=10**9, description="Discount one block buys, minor units, e.g. 1000 ($10)."
    )
    blocks_min: int = Field(
        default=1, ge=1, le=1000, description="Fewest blocks one redemption may spend."
    )


class ReferralPolicy(Record):
    """What a member earns for referring another (MemberEnrolled.referrer_member_id).

    The referrer is paid when the referred member's first qualifying purchase in the programme
    is recorded, not at sign-up (which invites fake sign-ups), once per referred member and
    programme; if a return leaves that purchase no longer qualifying, the points are taken
    back (ADR 12)."""

    referrer_points: Points = Field(
        gt=0, description="Points credited to the referrer's REGULAR account (> 0)."
    )
    first_purchase_min_cents: Cents = Field(
        default=0,
        description="Least eligible spend (minor units) of the referred member's purchase that "
        "qualifies; 0: any purchase with eligible spend.",
    )


class ProgramConfigured(Event):
    """A market's loyalty programme was configured; the event carries the whole configuration
    and replaces any earlier one."""

    topic: ClassVar[str] = TOPIC
    key_field: ClassVar[str] = "program_id"

    program_id: Id = Field(description="The programme (the record key).")
    name: str = Field(min_length=1, max_length=128, description="The programme's name.")
    market: Market = Field(description="The market the programme belongs to.")
    currency: Currency = Field(description="The currency its spend is measured in.")
    time_zone: TimeZone = Field(
        description="The market's zone: local dates (expiry, birthdays, holds) are taken here."
    )
    categories: list[PointsCategory] = Field(
        min_length=1,
        max_length=3,
        description="Points categories the programme uses; REGULAR always. Enrolment opens one "
        "account per category (DESIGN.md §5.24).",
    )
    points_per_currency_unit: PointsRate = Field(
        description="Base earn: points per unit of currency (100 minor units) of eligible spend, "
        "rounded half-up once per transaction (DESIGN.md §5.3, §5.21)."
    )
    base_points_per_transaction_max: Points | None = Field(
        default=None,
        gt=0,
        description="Cap on base points per transaction, applied before multipliers "
        "(DESIGN.md §5.20); null: no cap.",
    )
    expiry: ExpiryPolicy = Field(description="When earned points expire.")
    promised_points: PromisedPointsPolicy | None = Field(
        default=None, description="Hold earned points before they count; null: credit at once."
    )
    global_exclusions: list[GlobalExclusion] = Field(
        default_factory=list,
        max_length=100,
        description="Products excluded from base earn, per store province.",
    )
    tiers: list[ProgramTier] = Field(
        default_factory=list, max_length=20, description="The tier ladder; empty: no tiers."
    )
    points_redemption: PointsRedemptionRule | None = Field(
        default=None, description="Points-for-discount; null: the programme does not offer it."
    )
    enrolment_open: bool = Field(
        default=True,
        description="Whether members may join the programme now; false: enrolments into it "
        "are refused (`programme_disabled`).",
    )
    enrolment_reward_id: Id | None = Field(
        default=None, description="Master reward granted on enrolment; null: none."
    )
    contact_channels: list[ContactChannel] | None = Field(
        default=None,
        max_length=8,
        description="The marketing channels the programme's market offers its members "
        "(null: EMAIL, PUSH and SMS): preferences for any other are refused "
        "(`channel_not_offered`); IN_APP listed lets members opt out of campaign messages in "
        "their inbox.",
    )

    @property
    def offered_channels(self) -> tuple[ContactChannel, ...]:
        """The channels members may set preferences for (the defaults when not configured)."""
        if self.contact_channels is None:
            return (ContactChannel.EMAIL, ContactChannel.PUSH, ContactChannel.SMS)
        return tuple(self.contact_channels)

    birthday_reward_id: Id | None = Field(
        default=None, description="Master reward granted on the member's birthday; null: none."
    )
    offer_end_date_extension_enabled: bool = Field(
        default=False,
        description="Whether live offers' end dates may be extended (DESIGN.md §5.11); off by "
        "default.",
    )
    referral: ReferralPolicy | None = Field(
        default=None, description="Points for referring a member; null: no referral award."
    )

    @model_validator(mode="after")
    def _check_programme(self) -> Self:
        if len(set(self.categories)) != len(self.categories):
            raise ValueError("categories must not repeat a category")
        if PointsCategory.REGULAR not in self.categories:
            raise ValueError("categories must include REGULAR")
        held_in = self.promised_points.held_in if self.promised_points else None
        if held_in is not None and held_in not in self.categories:
            raise ValueError(f"promised points are held in {held_in.value}: configure it")
        provinces = [e.province for e in self.global_exclusions]
        if len(set(provinces)) != len(provinces):
            raise ValueError("global_exclusions gives each province at most once")
        for name, values in (
            ("tier_id", [t.tier_id for t in self.tiers]),
            ("level", [t.level for t in self.tiers]),
        ):
            if len(set(values)) != len(values):
                raise ValueError(f"tiers must not repeat a {name}")
        return self


# --- offers -------------------------------------------------------------------------------


class OfferPublished(Event):
    """An offer was published (or republished): the event carries its whole definition, which
    replaces any earlier one (DESIGN.md §6, seed 003)."""

    topic: ClassVar[str] = TOPIC
    key_field: ClassVar[str] = "offer_id"

    offer_id: OfferId = Field(
        description="The offer (the record key): 3–128 ASCII letters, digits or underscores."
    )
    program_id: Id = Field(description="The programme whose REGULAR account receives points.")
    market: Market = Field(description="The market the offer runs in.")
    localized_copy: list[LocalizedCopy] = Field(min_length=1, max_length=10, description=_COPY)
    rank: Rank = Field(description="Position in the gallery and feed: 1 is the top.")
    schedule: OfferSchedule = Field(description="When the offer is shown and live.")
    targeting: OfferTargeting = Field(description="Who gets the offer, when and where.")
    activation: OfferActivation = Field(description="How a targeted member activates it.")
    behaviours: list[Behaviour] = Field(
        min_length=1,
        max_length=10,
        description="The required behaviours, combined by behaviour_operator (one level).",
    )
    behaviour_operator: BehaviourOperator = Field(
        default=BehaviourOperator.ALL,
        description="ALL: every behaviour must be met (AND); ANY: one is enough (OR).",
    )
    reward: OfferReward = Field(description="What one use pays.")
    usage: OfferUsageControls = Field(description="Use limits, points caps and budget.")
    stacking_group: Id | None = Field(
        default=None,
        description="Unstackable group: of the qualifying offers in one group only the most "
        "valuable applies (DESIGN.md §5.8); null: the offer stacks.",
    )
    apply_global_exclusions: bool = Field(
        default=False,
        description="Whether the programme's global exclusions are left out of the offer's "
        "eligible lines (DESIGN.md §5.22).",
    )
    reward_store: RewardStoreListing | None = Field(
        default=None, description="Sold in a reward store for points; null: not for sale."
    )

    @model_validator(mode="after")
    def _check_definition(self) -> Self:
        require_locales(self.localized_copy)
        problems = definition_problems(
            self.schedule, self.targeting, self.behaviours, self.reward, self.usage
        )
        if problems:
            raise ValueError("; ".join(problems))
        return self


class OfferEndDateExtended(Event):
    """A live offer's end date was extended (hold-over). Whether it may be (feature flag, live,
    only later, not within 24 h of the current end) is decided by the rules (DESIGN.md §5.11)."""

    topic: ClassVar[str] = TOPIC
    key_field: ClassVar[str] = "event_id"

    offer_id: OfferId = Field(description="The offer extended.")
    ends_at: EndsAt = Field(
        description='The new end; 3001-01-01T00:00:00Z (null in the JSON form) for "does not '
        'expire".'
    )
    requested_by: Id = Field(description="The staff user who extended it.")
    reason: Text | None = Field(default=None, description="Why, for the audit trail.")


class OfferWithdrawn(Event):
    """An offer was withdrawn: from occurred_at it is no longer shown and nothing counts
    towards it. Awards already made stand."""

    topic: ClassVar[str] = TOPIC
    key_field: ClassVar[str] = "event_id"

    offer_id: OfferId = Field(description="The offer withdrawn.")
    requested_by: Id = Field(description="The staff user who withdrew it.")
    reason: Text | None = Field(default=None, description="Why, for the audit trail.")


class OfferClosure(ContractEnum):
    """Why the engine closed an offer."""

    BUDGET_EXHAUSTED = "BUDGET_EXHAUSTED"  # its total uses or points budget was spent
    UNKNOWN = "UNKNOWN"


class OfferClosed(Event):
    """The engine closed an offer that has run its course: from occurred_at it is no longer
    offered (cart evaluation, the feeds) and its end date can no longer be extended (a
    completed offer, DESIGN.md §5.11); a purchase is still judged on it by the offer's agent,
    which answers every later use "spent" (a till's reservation made before still commits).
    Produced by the engine, not upstream: the agent keyed by the offer emits it with
    OfferBudgetExhausted, here, so every copy of the configuration closes the offer in the
    config topic's one order. Publishing the offer again (with higher limits) opens it again."""

    topic: ClassVar[str] = TOPIC
    key_field: ClassVar[str] = "event_id"

    offer_id: OfferId = Field(description="The offer closed.")
    reason: OfferClosure = Field(description="Why it closed.")
    cause_event_id: Id = Field(
        description="event_id of the fact that closed it (the OfferBudgetExhausted)."
    )


# --- master rewards and code stock --------------------------------------------------------


class RewardPublished(Event):
    """A master reward was published (or republished) in a market's catalogue (seeds 000, 004).

    Members buy it with points or are granted it (birthday, enrolment, offer, challenge); each
    grant is one granted reward, carrying a unique code when the reward uses code stock.
    """

    topic: ClassVar[str] = TOPIC
    key_field: ClassVar[str] = "reward_id"

    reward_id: Id = Field(description="The master reward (the record key).")
    program_id: Id = Field(description="The programme whose points pay for it.")
    market: Market = Field(description="The market whose catalogue lists it.")
    localized_copy: list[LocalizedCopy] = Field(min_length=1, max_length=10, description=_COPY)
    points_cost: Points | None = Field(
        default=None,
        gt=0,
        description="Points it costs; null: not for sale, only granted (e.g. a birthday reward).",
    )
    discount: DiscountTerms | None = Field(
        default=None,
        description="The discount it gives when redeemed in a cart; null: fulfilled outside the "
        "cart by its code (e.g. a partner's voucher).",
    )
    uses_code_stock: bool = Field(
        description="Whether each grant takes a unique code from the stock (RewardCodesAdded); "
        "an empty stock refuses grants with code_exhausted."
    )
    available_from: UtcDatetime = Field(description="When it enters the catalogue.")
    available_until: UtcDatetime | None = Field(
        default=None, description="When it leaves the catalogue; null: no end."
    )
    granted_valid_days: int | None = Field(
        default=None,
        ge=1,
        le=3660,
        description="Days a granted reward stays usable; null: until used.",
    )
    grants_per_member_max: int | None = Field(
        default=None,
        ge=1,
        le=LONG_MAX,
        description="Grants one member may receive; null: no limit.",
    )
    grants_total_max: int | None = Field(
        default=None,
        ge=1,
        le=LONG_MAX,
        description="Grants all members together may receive; null: no limit.",
    )
    eligibility: list[TargetingCriterion] = Field(
        default_factory=list,
        max_length=20,
        description="Who may redeem it, as offers target (tier, segments, profile, history): "
        "every criterion must hold on the member's facts when the redemption is decided; "
        "empty: every member of the programme in the reward's market.",
    )

    @model_validator(mode="after")
    def _check_reward(self) -> Self:
        require_locales(self.localized_copy)
        problems = standalone_discount_problems(self.discount)
        if self.discount is None and not self.uses_code_stock:
            problems.append("a reward gives a discount, a code from its stock, or both")
        if self.available_until is not None and self.available_until <= self.available_from:
            problems.append("available_until must be after available_from")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class RewardCodesAdded(Event):
    """A batch of unique codes was added to a reward's code stock (seed 004); each grant takes
    one. Batches accumulate; a code already in the stock is ignored."""

    topic: ClassVar[str] = TOPIC
    key_field: ClassVar[str] = "event_id"

    reward_id: Id = Field(description="The master reward the codes belong to.")
    codes: list[Id] = Field(
        min_length=1,
        max_length=LIST_MAX,
        description=f"The codes, verbatim (case kept); at most {LIST_MAX} per event.",
    )
    source_file_name: FileName | None = Field(
        default=None, description="The uploaded file the codes came from, if any."
    )

    @model_validator(mode="after")
    def _check_unique(self) -> Self:
        if len(set(self.codes)) != len(self.codes):
            raise ValueError("codes must not repeat a code")
        return self


# --- reward stores -----------------------------------------------------------------------


class RewardStoreConfigured(Event):
    """A reward store was configured (or reconfigured, or withdrawn) (seed 002; ADR 33).

    Offers are listed in it by their `reward_store` listing; a member buys them with points
    from the store's programme and category. Publishing again replaces the store as a whole:
    an edit, or a withdrawal (`withdrawn`), is a new version under the same key.
    """

    topic: ClassVar[str] = TOPIC
    key_field: ClassVar[str] = "reward_store_id"

    reward_store_id: Id = Field(
        description="The reward store (the record key), as offers' listings name it."
    )
    market: Market = Field(description="The market whose members may buy in it.")
    program_id: Id = Field(
        description="The programme whose points pay for its offers; an offer of another "
        "programme listed in it is not sold (unknown_offer)."
    )
    category: PointsCategory = Field(
        default=PointsCategory.REGULAR,
        description="The points category purchases are debited from (REGULAR or TRIGGER; held "
        "PROMISED points are not spendable).",
    )
    localized_copy: list[LocalizedCopy] = Field(
        min_length=1,
        max_length=10,
        description=_COPY + " The headline is the store's name, short_description its description.",
    )
    available_from: UtcDatetime = Field(description="When it opens.")
    available_until: UtcDatetime | None = Field(
        default=None, description="When it closes; null: no end."
    )
    eligibility: list[TargetingCriterion] = Field(
        default_factory=list,
        max_length=20,
        description="Who may buy in it, as offers target (tier, segments, profile, history): "
        "every criterion must hold on the member's facts when a purchase is decided; empty: "
        "every member of the programme in the store's market.",
    )
    withdrawn: bool = Field(
        default=False,
        description="Whether the store is withdrawn: it sells nothing and is listed to no one; "
        "instances already bought in it stay usable.",
    )

    @model_validator(mode="after")
    def _check_store(self) -> Self:
        require_locales(self.localized_copy)
        if self.category not in (PointsCategory.REGULAR, PointsCategory.TRIGGER):
            raise ValueError(f"a store's points are REGULAR or TRIGGER, not {self.category.value}")
        if self.available_until is not None and self.available_until <= self.available_from:
            raise ValueError("available_until must be after available_from")
        return self

    def is_open(self, at: datetime) -> bool:
        """Whether it sells at `at`: not withdrawn, and inside its availability window."""
        if self.withdrawn or at < self.available_from:
            return False
        return self.available_until is None or at < self.available_until


# --- promo codes --------------------------------------------------------------------------

_PATTERN = re.compile(r"[A-Z0-9#?][A-Z0-9_#?-]{2,63}")
# Letters a generated code may use: A–Z without I and O, which read as 1 and 0.
PATTERN_LETTERS: Final = "ABCDEFGHJKLMNPQRSTUVWXYZ"
PATTERN_SPARSENESS: Final = 100
"""A pattern must allow this many times more codes than are generated, so codes are not
guessed from their neighbours."""


class CodeIssuerKind(ContractEnum):
    """Who issued a batch of promo codes, for attribution."""

    BRAND = "BRAND"  # the programme's own brand
    PARTNER = "PARTNER"  # a coalition partner (a sister brand)
    INFLUENCER = "INFLUENCER"  # an influencer's shared code
    UNKNOWN = "UNKNOWN"


class CodeIssuer(Record):
    """Who issued a batch of promo codes: each use of one of them is attributed to them."""

    kind: CodeIssuerKind = Field(description="BRAND, PARTNER or INFLUENCER.")
    issuer_id: Id = Field(description="The partner's or influencer's id, as analysts know it.")
    name: str | None = Field(default=None, max_length=128, description="Display name.")


class PromotionCodesIssued(Event):
    """Promo codes were issued for a code-linked promotion (seed 001), usable by members and
    anonymous customers within the promotion's window and limits.

    A promotion may be issued several times (more codes later); codes accumulate. Each issue
    states the promotion's terms in full, and the latest issue's terms govern all of its codes.
    """

    topic: ClassVar[str] = TOPIC
    key_field: ClassVar[str] = "event_id"

    promotion_id: Id = Field(description="The promotion the codes belong to.")
    name: str | None = Field(
        default=None, max_length=128, description="Internal name, for member care."
    )
    market: Market = Field(description="The market the codes are valid in.")
    mode: PromoCodeMode = Field(
        default=PromoCodeMode.DISCOUNT,
        description="DISCOUNT: the codes discount the cart or unlock an offer. PAYMENT_VOUCHER: "
        "a code pays amount_off_cents as a tender, so it does not reduce the earn base.",
    )
    codes: list[PromoCode] = Field(
        default_factory=list,
        max_length=LIST_MAX,
        description="The codes, uploaded or generated by the brand; empty when code_pattern "
        "is given.",
    )
    code_pattern: str | None = Field(
        default=None,
        description="Codes generated by the engine: `#` becomes a digit and `?` a letter of "
        f"{PATTERN_LETTERS} (e.g. SPRING-####-??), derived deterministically from promotion_id "
        "and event_id so a replay yields the same codes.",
    )
    code_count: int | None = Field(
        default=None, ge=1, le=10**7, description="How many codes to generate from the pattern."
    )
    offer_id: OfferId | None = Field(
        default=None,
        description="The offer the codes unlock (any promotion type); null when discount is set.",
    )
    discount: DiscountTerms | None = Field(
        default=None, description="The cart discount the codes give; null when offer_id is set."
    )
    starts_at: UtcDatetime = Field(description="When the codes become valid.")
    ends_at: UtcDatetime = Field(description="When the promotion expires and the codes with it.")
    redemptions_per_code_max: int | None = Field(
        default=None,
        ge=1,
        le=LONG_MAX,
        description="Uses of one code (1: single-use; 1000: the first 1000 users); null: no limit.",
    )
    redemptions_per_member_max: int | None = Field(
        default=None,
        ge=1,
        le=LONG_MAX,
        description="Uses by one member across the promotion's codes; null: no limit.",
    )
    redemptions_total_max: int | None = Field(
        default=None,
        ge=1,
        le=LONG_MAX,
        description="Uses across all of the promotion's codes together; null: no limit.",
    )
    issuer: CodeIssuer | None = Field(
        default=None,
        description="Who issued this issue's codes (a coalition partner, an influencer), so "
        "their uses are attributed to them; unlike the terms, it stays with the codes of this "
        "issue. Null: the brand itself.",
    )

    @model_validator(mode="after")
    def _check_issue(self) -> Self:
        problems = []
        if bool(self.codes) == (self.code_pattern is not None):
            problems.append("give either codes or a code_pattern, not both")
        if len(set(self.codes)) != len(self.codes):
            problems.append("codes must not repeat a code")
        if (self.code_pattern is None) != (self.code_count is None):
            problems.append("code_pattern and code_count go together")
        if self.code_pattern is not None and self.code_count is not None:
            problems += _pattern_problems(self.code_pattern, self.code_count)
        if (self.offer_id is None) == (self.discount is None):
            problems.append("link the codes to an offer_id or give a discount, exactly one")
        problems += standalone_discount_problems(self.discount)
        if self.mode is PromoCodeMode.PAYMENT_VOUCHER and (
            self.discount is None or self.discount.kind is not DiscountKind.AMOUNT_OFF_CART
        ):
            problems.append("a PAYMENT_VOUCHER pays a fixed amount: an AMOUNT_OFF_CART discount")
        if self.ends_at <= self.starts_at:
            problems.append("ends_at must be after starts_at")
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _pattern_problems(pattern: str, count: int) -> list[str]:
    if not _PATTERN.fullmatch(pattern) or ("#" not in pattern and "?" not in pattern):
        return [
            "code_pattern is 3–64 characters of A–Z, 0–9, `_`, `-`, with `#` and `?` "
            "placeholders, starting with a letter, digit or placeholder"
        ]
    capacity = 10 ** pattern.count("#") * len(PATTERN_LETTERS) ** pattern.count("?")
    if capacity < count * PATTERN_SPARSENESS:
        return [
            f"code_pattern allows {capacity} codes: too few for {count} hard-to-guess codes "
            f"(needs {PATTERN_SPARSENESS}× as many); add placeholders"
        ]
    return []


# --- challenges ---------------------------------------------------------------------------


class ChallengePublished(Event):
    """A challenge was published (or republished) in a market: a gamified goal (e.g. 5 visits
    in 30 days) that awards points or a reward when completed (seed 000)."""

    topic: ClassVar[str] = TOPIC
    key_field: ClassVar[str] = "challenge_id"

    challenge_id: Id = Field(description="The challenge (the record key).")
    program_id: Id = Field(description="The programme credited with award_points.")
    market: Market = Field(description="The market the challenge runs in.")
    localized_copy: list[LocalizedCopy] = Field(min_length=1, max_length=10, description=_COPY)
    starts_at: UtcDatetime = Field(description="When progress starts to count.")
    ends_at: EndsAt = Field(
        description="When progress stops counting; 3001-01-01T00:00:00Z (null in the JSON "
        "form) for no end."
    )
    goal: Behaviour = Field(
        description="What completes it, e.g. VISITS with count_min 5 and window_days 30."
    )
    completions_per_member_max: int = Field(
        default=1,
        ge=1,
        le=1000,
        description="Times one member may complete it; progress restarts after each completion.",
    )
    steps: list[Id] = Field(
        default_factory=list,
        max_length=50,
        description="A series of steps done in this order: the goal is then ACTIVITY on "
        "CHALLENGE_STEP and each step an ActivityRecorded naming this challenge and the step; "
        "empty for other goals.",
    )
    award_points: Points | None = Field(
        default=None, gt=0, description="Points awarded per completion; null when a reward is."
    )
    award_reward_id: Id | None = Field(
        default=None, description="Master reward granted per completion; null when points are."
    )

    @model_validator(mode="after")
    def _check_challenge(self) -> Self:
        require_locales(self.localized_copy)
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if (self.award_points is None) == (self.award_reward_id is None):
            raise ValueError("a challenge awards award_points or award_reward_id, exactly one")
        is_series = (
            self.goal.kind is BehaviourKind.ACTIVITY
            and self.goal.activity_kind is ActivityKind.CHALLENGE_STEP
        )
        if is_series != bool(self.steps):
            raise ValueError("steps are given exactly when the goal is ACTIVITY on CHALLENGE_STEP")
        if len(set(self.steps)) != len(self.steps):
            raise ValueError("steps must not repeat a step")
        if self.steps and (self.goal.count_min not in (None, len(self.steps))):
            raise ValueError("a series of steps completes when every step is done: count_min "
                             "is null or the number of steps")  # fmt: skip
        if self.steps and self.goal.window_days is not None:
            raise ValueError("a series of steps runs over the challenge window: no window_days")
        return self


# --- audiences ----------------------------------------------------------------------------


class AudienceDefined(Event):
    """A saved audience defined by a query (seed 003, "Audience targeting -- audiences"):
    profile, segments, purchase history, engagement, as an offer's CRITERIA targeting tests
    them, saved once under an id that several offers name (`targeting.kind` AUDIENCE_LIST,
    `targeting.audience_id`). A member belongs when every criterion holds at the moment the
    offer's targeting is decided (static: its publication or targeting_at; dynamic: when the
    behaviour happens). Defining it again replaces the query; an audience id is either a query
    or an uploaded list, whichever came last."""

    topic: ClassVar[str] = TOPIC
    key_field: ClassVar[str] = "audience_id"

    audience_id: Id = Field(
        description="The audience (the record key), as offers name it (targeting.audience_id)."
    )
    name: str | None = Field(default=None, max_length=128, description="Internal name.")
    criteria: list[TargetingCriterion] = Field(
        min_length=1, max_length=50, description="Tests a member must all pass (AND)."
    )


class AudienceUploaded(Event):
    """Part of an uploaded audience list (a CSV with a loyaltyId column, seed 003).

    A list larger than one event is sent in parts sharing an upload_id. An audience's members
    are those of its latest complete upload (all part_count parts received); a new upload
    replaces the previous one as a whole.
    """

    topic: ClassVar[str] = TOPIC
    key_field: ClassVar[str] = "event_id"

    audience_id: Id = Field(description="The audience, as offers name it (targeting.audience_id).")
    name: str | None = Field(default=None, max_length=128, description="Internal name.")
    upload_id: Id = Field(description="The upload this part belongs to.")
    part_number: int = Field(
        ge=1, le=LONG_MAX, description="This part's position in the upload, from 1."
    )
    part_count: int = Field(ge=1, le=10_000, description="How many parts the upload has.")
    member_ids: list[Id] = Field(
        max_length=LIST_MAX,
        description=f"The members in this part (the loyaltyId column), at most {LIST_MAX}.",
    )
    source_file_name: FileName = Field(description="The uploaded file's name.")

    @model_validator(mode="after")
    def _check_part(self) -> Self:
        if self.part_number > self.part_count:
            raise ValueError("part_number must not exceed part_count")
        if len(set(self.member_ids)) != len(self.member_ids):
            raise ValueError("member_ids must not repeat a member")
        return self
