"""The promo codes projection: `PromotionCodesIssued` (loyalty.config.v1) and
`PromoCodeReserved`, `PromoCodeUnreserved`, `PromoCodeRedeemed`, `PromoCodeRefused`
(loyalty.offers.v1) → promotions,
promotion_issues, promotion_codes, promo_code_reservations, promo_code_uses and
promo_code_refusals (docs/adr/0026-promo-code-api.md).

Owns those six tables. It copies what the events say and decides nothing (the promotion's agent
counts uses: `processors.rules.codes.uses`); it never commits (the caller's transaction also
holds the checkpoints) and never reads the clock, so a rebuild writes exactly what live
projection wrote. Idempotent and independent of the order of the offers topic's partitions:
- a promotion's row is replaced whole by each issue, in the config topic's log order (one
  partition), as every process's `Config.promotions` is; an uploaded code keeps the promotion
  of the first issue that listed it (`ON CONFLICT DO NOTHING`), as `Promotions.apply` does;
  generated codes are never stored, only their generator's inputs (`promotion_issues`);
- uses and refusals are insert-only, by their event id (a redelivery is one row); a use keeps
  its code's issuer and its purchase's spend (the attribution views of migration 0017);
- a reservation keeps its first time and its latest end (asking again extends it), and the
  member it was last reserved for (a basket the till later named a member for); a release
  (`PromoCodeUnreserved`) sets its `released_at`, and asking again after it clears it. Both
  are keyed like the basket, so they arrive in the agent's order; within a batch the last of
  a basket's reservation events decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from processors.contract.config import CodeIssuer, PromotionCodesIssued
from processors.contract.offers import (
    PromoCodeLeaseAnswered,
    PromoCodeRedeemed,
    PromoCodeRefused,
    PromoCodeReserved,
    PromoCodeUnreserved,
)
from processors.rules.codes.promotions import normalised

TABLES = (
    "promotions", "promotion_issues", "promotion_codes", "promo_code_reservations",
    "promo_code_uses", "promo_code_refusals",
)  # fmt: skip

CodeEvent = (
    PromotionCodesIssued
    | PromoCodeReserved
    | PromoCodeUnreserved
    | PromoCodeRedeemed
    | PromoCodeRefused
)

EVENTS = (
    PromotionCodesIssued, PromoCodeReserved, PromoCodeUnreserved, PromoCodeRedeemed,
    PromoCodeRefused,
)  # fmt: skip
"""What this projection writes."""

PASSED_OVER = (PromoCodeLeaseAnswered,)
"""Codes' events with no table: a lease is the API processes' business (ADR 40); each use
assigned from it is a reservation (`PromoCodeReserved`) like any other."""

_PROMOTION = """
INSERT INTO promotions AS current (promotion_id, name, market, mode, offer_id, discount,
    starts_at, ends_at, redemptions_per_code_max, redemptions_per_member_max,
    redemptions_total_max, issued_event_id, issued_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (promotion_id) DO UPDATE SET name = excluded.name, market = excluded.market,
    mode = excluded.mode, offer_id = excluded.offer_id, discount = excluded.discount,
    starts_at = excluded.starts_at, ends_at = excluded.ends_at,
    redemptions_per_code_max = excluded.redemptions_per_code_max,
    redemptions_per_member_max = excluded.redemptions_per_member_max,
    redemptions_total_max = excluded.redemptions_total_max,
    issued_event_id = excluded.issued_event_id, issued_at = excluded.issued_at
"""

_ISSUE = """
INSERT INTO promotion_issues (event_id, promotion_id, market, code_pattern, code_count,
    codes_uploaded, issued_at, issuer_kind, issuer_id, issuer_name)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (event_id) DO NOTHING
"""

_CODE = """
INSERT INTO promotion_codes (market, code, promotion_id, issue_event_id) VALUES (%s, %s, %s, %s)
ON CONFLICT (market, code) DO NOTHING
"""

_USE = """
INSERT INTO promo_code_uses (event_id, promotion_id, code, member_id, transaction_id,
    transaction_number, store_id, discount_cents, use_number, used_at, cause_event_id,
    spend_cents, issuer_kind, issuer_id)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (event_id) DO NOTHING
"""

_REFUSAL = """
INSERT INTO promo_code_refusals (event_id, code, promotion_id, member_id, transaction_id,
    reason, detail, cause_event_id, refused_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (event_id) DO NOTHING
"""

_RESERVATION = """
INSERT INTO promo_code_reservations AS current (code, transaction_id, promotion_id, member_id,
    discount_cents, reserved_at, reserved_until, released_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (code, transaction_id) DO UPDATE SET
    member_id = excluded.member_id,
    reserved_at = least(current.reserved_at, excluded.reserved_at),
    reserved_until = greatest(current.reserved_until, excluded.reserved_until),
    released_at = excluded.released_at
"""

# A release of a reservation projected in an earlier batch (the first release time stays).
_RELEASE = """
UPDATE promo_code_reservations SET released_at = %s
WHERE code = %s AND transaction_id = %s AND released_at IS NULL
"""


@dataclass
class CodeRows:
    """The statements a batch projects to, per table, before any is run."""

    promotions: list[tuple[Any, ...]] = field(default_factory=list)
    """In log order: the last issue of a promotion wins."""
    issues: list[tuple[Any, ...]] = field(default_factory=list)
    codes: list[tuple[Any, ...]] = field(default_factory=list)
    uses: list[tuple[Any, ...]] = field(default_factory=list)
    refusals: list[tuple[Any, ...]] = field(default_factory=list)
    reservations: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    """(code, transaction_id) → the basket's reservation row as the batch leaves it."""
    releases: dict[tuple[str, str], Any] = field(default_factory=dict)
    """(code, transaction_id) → when a reservation of an earlier batch was released."""


def rows_of(events: Iterable[CodeEvent]) -> CodeRows:
    """Map events (in log order) to rows. Pure."""
    rows = CodeRows()
    for event in events:
        match event:
            case PromotionCodesIssued():
                discount = event.discount.model_dump(mode="json") if event.discount else None
                rows.promotions.append((
                    event.promotion_id, event.name, event.market, event.mode.value,
                    event.offer_id, Jsonb(discount) if discount is not None else None,
                    event.starts_at, event.ends_at, event.redemptions_per_code_max,
                    event.redemptions_per_member_max, event.redemptions_total_max,
                    event.event_id, event.occurred_at,
                ))  # fmt: skip
                rows.issues.append((
                    event.event_id, event.promotion_id, event.market, event.code_pattern,
                    event.code_count, len(event.codes), event.occurred_at, *_issuer(event.issuer),
                ))  # fmt: skip
                rows.codes += [
                    (event.market, normalised(code), event.promotion_id, event.event_id)
                    for code in event.codes
                ]
            case PromoCodeRedeemed():
                rows.uses.append((
                    event.event_id, event.promotion_id, event.code, event.member_id,
                    event.transaction_id, event.transaction_number, event.store_id,
                    event.discount_cents, event.use_number, event.occurred_at,
                    event.cause_event_id, event.spend_cents, *_issuer(event.issuer)[:2],
                ))  # fmt: skip
            case PromoCodeRefused():
                rows.refusals.append((
                    event.event_id, event.code, event.promotion_id, event.member_id,
                    event.transaction_id, event.reason.value, event.detail, event.cause_event_id,
                    event.occurred_at,
                ))  # fmt: skip
            case PromoCodeReserved():
                key = (event.code, event.transaction_id)
                kept = rows.reservations.get(key)
                if kept is not None:  # asked again in this batch: first time, latest end
                    event_row = [*kept[:3], event.member_id, kept[4],
                                 min(kept[5], event.occurred_at),
                                 max(kept[6], event.reserved_until), None]  # fmt: skip
                else:
                    event_row = [event.code, event.transaction_id, event.promotion_id,
                                 event.member_id, event.discount_cents, event.occurred_at,
                                 event.reserved_until, None]  # fmt: skip
                rows.reservations[key] = event_row
                rows.releases.pop(key, None)  # reserved again: live, whatever came before
            case PromoCodeUnreserved():
                key = (event.code, event.transaction_id)
                if key in rows.reservations:
                    rows.reservations[key][7] = event.occurred_at
                else:
                    rows.releases.setdefault(key, event.occurred_at)
    return rows


def _issuer(issuer: CodeIssuer | None) -> tuple[str | None, str | None, str | None]:
    """An issuer's columns: kind, id, name (all null: the brand's own codes)."""
    if issuer is None:
        return None, None, None
    return issuer.kind.value, issuer.issuer_id, issuer.name


def write(conn: psycopg.Connection, events: Sequence[CodeEvent]) -> None:
    """Project `events` in the caller's transaction (executemany: pipelined by psycopg)."""
    if not events:
        return
    rows = rows_of(events)
    with conn.cursor() as cursor:
        for statement, params in (
            (_PROMOTION, rows.promotions), (_ISSUE, rows.issues), (_CODE, rows.codes),
            (_USE, rows.uses), (_REFUSAL, rows.refusals),
            (_RELEASE, [(at, *key) for key, at in rows.releases.items()]),
            (_RESERVATION, [tuple(row) for row in rows.reservations.values()]),
        ):  # fmt: skip
            if params:
                cursor.executemany(statement, params)
