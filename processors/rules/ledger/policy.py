"""A programme's policies as functions: base earn, lot expiry, promised-points release.

Local dates are taken in the programme's time zone; every instant returned is UTC.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from processors.contract.activities import ActivityRecorded
from processors.contract.common import PointsCategory
from processors.contract.config import (
    ExpiryPolicyKind,
    ProgramConfigured,
    PromisedPointsRelease,
)
from processors.contract.transactions import TransactionLine
from processors.rules.arithmetic import round_half_up
from processors.rules.selection import ProductLine, Selector

RETURNS_ACCEPTED_DAYS = 365
"""How long a purchase stays returnable. The member's state keeps each purchase this long
(to re-evaluate it on a return) and then forgets it, so a member's state does not grow with
their whole history; a purchase that arrives older than this is not credited."""


def currency_refusal(
    programs: Iterable[ProgramConfigured], market: str, currency: str
) -> str | None:
    """Why amounts in `currency` cannot be priced in `market` (None: they can, or the market
    has no programme): the market's programmes measure spend in their own currency, and a
    basket in another one would earn at a rate meant for a different money."""
    kept = sorted({p.currency for p in programs if p.market == market})
    if not kept or currency in kept:
        return None
    return f"amounts in {currency}; the programmes of market {market} keep {', '.join(kept)}"


def returns_horizon(since: date | datetime) -> datetime:
    """The oldest purchase time still returnable seen from `since`: a business time, or the
    date of a daily run (then from that date's UTC midnight). The one place the returns window
    is turned into a time: the ledger's purchases, the offers' standing and their retention
    all ask here."""
    if isinstance(since, datetime):
        return since - timedelta(days=RETURNS_ACCEPTED_DAYS)
    oldest = since - timedelta(days=RETURNS_ACCEPTED_DAYS)
    return datetime(oldest.year, oldest.month, oldest.day, tzinfo=UTC)


def _local_midnight(program: ProgramConfigured, day: date) -> datetime:
    zone = ZoneInfo(program.time_zone)
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def _add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    return date(day.year + month_index // 12, month_index % 12 + 1, 1)


def expires_at(program: ProgramConfigured, earned_at: datetime) -> datetime | None:
    """When points earned at `earned_at` expire (None: never). An expiry instant is the local
    midnight that ends the last day the points are good for."""
    policy = program.expiry
    earned_on = earned_at.astimezone(ZoneInfo(program.time_zone)).date()
    if policy.kind is ExpiryPolicyKind.DAYS_AFTER_EARN and policy.days is not None:
        return _local_midnight(program, earned_on + timedelta(days=policy.days + 1))
    if policy.kind is ExpiryPolicyKind.END_OF_MONTH_AFTER_MONTHS and policy.months is not None:
        return _local_midnight(program, _add_months(earned_on, policy.months + 1))
    if policy.kind is ExpiryPolicyKind.END_OF_YEAR_AFTER_MONTHS and policy.months is not None:
        year_of = _add_months(earned_on, policy.months)
        return _local_midnight(program, date(year_of.year + 1, 1, 1))
    return None


def excluded_skus(
    program: ProgramConfigured, province: str | None, lines: Iterable[ProductLine]
) -> frozenset[str]:
    """The SKUs of `lines` left out of base earn in stores of `province` (DESIGN.md §5.3,
    §5.22): those the province's exclusion lists, and those whose product one of its
    selections selects (category, subcategory, brand, GTIN). A product's place in the
    hierarchy comes with its line, so the basket's excluded SKUs say all about its lines."""
    exclusion = next((e for e in program.global_exclusions if e.province == province), None)
    if exclusion is None:
        return frozenset()
    skus = frozenset(exclusion.skus)
    if not exclusion.products:
        return skus
    selectors = [Selector.of(selection) for selection in exclusion.products]
    return skus | {line.sku for line in lines if any(s.selects(line) for s in selectors)}


def eligible_spend_cents(
    program: ProgramConfigured, lines: Iterable[TransactionLine], province: str | None
) -> int:
    """Net amount of the lines that earn (after discounts, less global exclusions)."""
    lines = list(lines)
    excluded = excluded_skus(program, province, lines)
    return sum(line.amount_cents for line in lines if line.sku not in excluded)


def base_points(program: ProgramConfigured, eligible_cents: int) -> int:
    """Base earn on a transaction: rounded once, half-up, then clipped to the programme's
    per-transaction cap (DESIGN.md §5.3, 5.20, 5.21)."""
    points = round_half_up(Decimal(eligible_cents) * program.points_per_currency_unit / 100)
    cap = program.base_points_per_transaction_max
    return min(points, cap) if cap is not None else points


def earn_category(program: ProgramConfigured) -> PointsCategory:
    """Where earned points land: REGULAR, or held in PROMISED/TRIGGER (DESIGN.md §5.13)."""
    policy = program.promised_points
    if policy is None:
        return PointsCategory.REGULAR
    if policy.release is PromisedPointsRelease.ON_ACTIVITY:
        return PointsCategory.TRIGGER
    return PointsCategory.PROMISED


def release_at(program: ProgramConfigured, earned_at: datetime) -> datetime | None:
    """When held points convert to REGULAR by time (None: by activity, or never held)."""
    policy = program.promised_points
    if policy is None or policy.release is not PromisedPointsRelease.AFTER_DAYS:
        return None
    earned_on = earned_at.astimezone(ZoneInfo(program.time_zone)).date()
    return _local_midnight(program, earned_on + timedelta(days=(policy.hold_days or 0) + 1))


def releases_on(program: ProgramConfigured, activity: ActivityRecorded) -> bool:
    """True if `activity` is the one that releases the programme's trigger-held points."""
    policy = program.promised_points
    if policy is None or policy.release is not PromisedPointsRelease.ON_ACTIVITY:
        return False
    if activity.kind != policy.activity_kind:
        return False
    return (
        policy.activity_custom_name is None or activity.custom_name == policy.activity_custom_name
    )
