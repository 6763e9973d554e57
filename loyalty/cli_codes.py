"""`loyalty codes generate|upload|status`: a code-linked promotion's codes onto the config
topic as `PromotionCodesIssued`, and a code's activity from the projection (seed 001;
docs/adr/0023-promo-codes.md, docs/adr/0026-promo-code-api.md).

Every issue states the promotion's terms in full (the latest issue's terms govern all of its
codes), so both commands take the terms. Uploaded files are read by `processors.code_lists`
(a `code` header, problems named by row, nothing published on an error) and published in
batches of at most LIST_MAX codes whose ids derive from the promotion, the file's bytes and
the batch's position: the same file again is a repeat. Generated codes are never listed: the
issue carries the pattern and the count, and `--show` prints the codes it stands for.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import re
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import psycopg
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from loyalty.cli_contract import codec, current_config
from loyalty.producing import publish_events
from processors.base.settings import get_settings
from processors.code_lists import REWARD_CODE_HEADER, read_code_list
from processors.contract.config import PromotionCodesIssued
from processors.contract.offer_definition import LIST_MAX
from processors.rules.arithmetic import derived_id
from processors.rules.codes.generation import GeneratedCodes
from processors.rules.codes.promotions import normalised
from processors.rules.member import Config

_CODE = re.compile(r"[A-Z0-9][A-Z0-9_-]{2,63}")
"""What an uploaded code may be once upper-cased (the contract's PromoCode)."""


def _terms_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed([
        click.option("--market", required=True, help="The market the codes are valid in."),
        click.option("--starts-at", required=True, type=click.DateTime(), help="UTC."),
        click.option("--ends-at", required=True, type=click.DateTime(), help="UTC."),
        click.option("--percent-off", default=None, help="PERCENT_OFF_CART, e.g. 10."),
        click.option("--amount-off-cents", type=int, default=None, help="AMOUNT_OFF_CART."),
        click.option("--spend-min-cents", type=int, default=None, help="Least spend."),
        click.option("--offer", "offer_id", default=None, help="The offer the codes unlock."),
        click.option("--per-code-max", type=int, default=None, help="Uses of one code."),
        click.option("--per-member-max", type=int, default=None, help="Uses by one member."),
        click.option("--total-max", type=int, default=None, help="Uses of all codes."),
        click.option("--name", default=None, help="Internal name, for member care."),
        click.option("--partner", default=None, help="Issued by this coalition partner."),
        click.option("--influencer", default=None, help="Issued by this influencer."),
        click.option("--dry-run", is_flag=True, help="Check and show; publish nothing."),
    ]):  # fmt: skip
        command = option(command)
    return command


def terms(promotion_id: str, **given: Any) -> dict[str, Any]:
    """The promotion's terms as an issue's fields (the codes left out)."""
    discount = None
    if given.get("percent_off") is not None and given.get("amount_off_cents") is not None:
        raise click.UsageError("give --percent-off or --amount-off-cents, not both")
    if given.get("percent_off") is not None:
        discount = {"kind": "PERCENT_OFF_CART", "percent_off": given["percent_off"]}
    elif given.get("amount_off_cents") is not None:
        discount = {"kind": "AMOUNT_OFF_CART", "amount_off_cents": given["amount_off_cents"]}
    if discount is not None and given.get("spend_min_cents") is not None:
        discount["spend_min_cents"] = given["spend_min_cents"]
    return {
        "promotion_id": promotion_id, "name": given.get("name"), "market": given["market"],
        "discount": discount, "offer_id": given.get("offer_id"),
        "starts_at": given["starts_at"].replace(tzinfo=UTC),
        "ends_at": given["ends_at"].replace(tzinfo=UTC),
        "redemptions_per_code_max": given.get("per_code_max"),
        "redemptions_per_member_max": given.get("per_member_max"),
        "redemptions_total_max": given.get("total_max"), "issuer": _issuer(**given),
    }  # fmt: skip


_OPTION_OF = {
    "redemptions_per_code_max": "--per-code-max",
    "redemptions_per_member_max": "--per-member-max",
    "redemptions_total_max": "--total-max",
    "percent_off": "--percent-off",
    "amount_off_cents": "--amount-off-cents",
    "spend_min_cents": "--spend-min-cents",
    "offer_id": "--offer",
    "code_pattern": "--pattern",
    "code_count": "--count",
    "starts_at": "--starts-at",
    "ends_at": "--ends-at",
    "issuer_id": "--partner / --influencer",
}
"""The option that sets an issue's field, to name it in a refusal."""


def problems_of(error: ValidationError) -> list[str]:
    """Each problem of an issue built from the options, naming the option (or the field)."""
    named = []
    for problem in error.errors():
        fields = [str(part) for part in problem["loc"] if isinstance(part, str)]
        option = next((_OPTION_OF[f] for f in reversed(fields) if f in _OPTION_OF), None)
        where = option or ".".join(fields)
        named.append(f"{where}: {problem['msg']}" if where else str(problem["msg"]))
    return named


def _issuer(**given: Any) -> dict[str, str] | None:
    """Who issued the codes, for attribution (ADR 30): a partner or an influencer, else the
    brand (null)."""
    if given.get("partner") and given.get("influencer"):
        raise click.UsageError("give --partner or --influencer, not both")
    if given.get("partner"):
        return {"kind": "PARTNER", "issuer_id": given["partner"]}
    if given.get("influencer"):
        return {"kind": "INFLUENCER", "issuer_id": given["influencer"]}
    return None


def generated(
    promotion_id: str, pattern: str, count: int, at: datetime, **given: Any
) -> PromotionCodesIssued:
    """One issue generating `count` codes from `pattern` (ValidationError with the reasons)."""
    return PromotionCodesIssued.model_validate({
        **terms(promotion_id, **given), "occurred_at": at, "code_pattern": pattern,
        "code_count": count,
        "event_id": derived_id("promotion-codes-generated", promotion_id, pattern, str(count),
                               at.isoformat()),
    })  # fmt: skip


def uploaded(
    promotion_id: str, path: Path, at: datetime, **given: Any
) -> tuple[list[PromotionCodesIssued], list[str], list[str]]:
    """The file's codes as issues of at most LIST_MAX codes, and the errors and warnings (each
    naming its row); no issue when there is an error."""
    listed = read_code_list(path, REWARD_CODE_HEADER, count_max=None)
    errors, warnings = list(listed.errors), list(listed.warnings)
    if errors and not listed.codes:  # the file itself (missing, unreadable, no header)
        return [], errors, warnings
    # Every bad row at once, whichever check it fails, not the first kind of them per run.
    rows = _rows_of(path)
    first: dict[str, str] = {}
    codes = []
    for code in listed.codes:
        upper = normalised(code)
        row = rows.get(code, "?")
        if not _CODE.fullmatch(upper):
            errors.append(f"{path} row {row}: {code[:40]!r} is not a promo code: 3–64 of A–Z, "
                          "0–9, `_`, `-`, starting with a letter or digit")  # fmt: skip
        elif upper in first:
            warnings.append(f"{path} row {row}: {code!r} repeats {first[upper]!r} (codes "
                            "compare upper-cased); kept once")  # fmt: skip
        else:
            first[upper] = code
            codes.append(upper)
    if errors:
        return [], errors, warnings
    # The same file with the same terms is the same issue (a rerun changes nothing); other
    # terms are another issue, whose terms then govern the promotion's codes.
    issued_terms = terms(promotion_id, **given)
    digest = hashlib.sha256(
        path.read_bytes() + json.dumps(issued_terms, sort_keys=True, default=str).encode()
    ).hexdigest()
    issues = [
        PromotionCodesIssued.model_validate(
            {
                **issued_terms,
                "occurred_at": at,
                "codes": codes[start : start + LIST_MAX],
                "event_id": derived_id("promotion-codes", promotion_id, digest, str(index)),
            }
        )
        for index, start in enumerate(range(0, len(codes), LIST_MAX))
    ]
    return issues, errors, warnings


def unlockable(config: Config, issue: PromotionCodesIssued) -> str | None:
    """Why the codes of `issue` could never unlock its offer as the config topic holds it
    (unknown, another market's, withdrawn, over before the codes start), or None: such codes
    would be refused at every checkout (`code_expired`), so a mistyped id is said now."""
    offer_id = issue.offer_id
    if offer_id is None:
        return None
    offer = config.catalogue.definition(offer_id)
    if offer is None:
        return (f"no offer {offer_id} was ever published: publish it first (`loyalty offers "
                "publish`) or check the id")  # fmt: skip
    if offer.market != issue.market:
        return f"offer {offer_id} is of market {offer.market}, the codes of {issue.market}"
    if config.catalogue.get(offer_id) is None:
        return f"offer {offer_id} was withdrawn"
    if offer.schedule.ends_at is not None and offer.schedule.ends_at <= issue.starts_at:
        return (f"offer {offer_id} ends at {offer.schedule.ends_at.isoformat()}, before the "
                f"codes start ({issue.starts_at.isoformat()})")  # fmt: skip
    return None


TAKEN_CHECKED_MAX = 200_000
"""Generated codes looked up against the other promotions before publishing (the first ones:
a pattern that overlaps another's shows within them)."""


def taken_elsewhere(config: Config, issue: PromotionCodesIssued) -> list[str]:
    """The codes of `issue` (`code (promotion)`) another promotion of its market issued first:
    a code keeps the first promotion that issued it, so for this one they would do nothing."""
    if issue.codes:
        candidates: Iterable[str] = issue.codes
    else:
        assert issue.code_pattern is not None
        assert issue.code_count is not None
        made = GeneratedCodes(issue.promotion_id, issue.event_id, issue.code_pattern,
                              issue.code_count)  # fmt: skip
        candidates = itertools.islice(made, TAKEN_CHECKED_MAX)
    taken = []
    for code in candidates:
        found = config.promotions.lookup(code, issue.market)
        if found is not None and found.terms.promotion_id != issue.promotion_id:
            taken.append(f"{code} ({found.terms.promotion_id})")
    return taken


def _check_config(issues: list[PromotionCodesIssued]) -> None:
    """Exit 1 with the reason, nothing published, when the issues' offer cannot be unlocked or
    some of their codes are another promotion's already (as the config topic holds them)."""
    if not issues:
        return
    config = current_config(get_settings())
    problem = unlockable(config, issues[0]) if issues[0].offer_id is not None else None
    if problem is not None:
        click.echo(f"error: {problem}; nothing published", err=True)
        sys.exit(1)
    taken = [code for issue in issues for code in taken_elsewhere(config, issue)]
    if taken:
        shown = ", ".join(taken[:5]) + (f" and {len(taken) - 5} more" if len(taken) > 5 else "")
        click.echo(f"error: {len(taken)} code(s) are another promotion's already (a code keeps "
                   f"the first promotion that issued it): {shown}; nothing published",
                   err=True)  # fmt: skip
        sys.exit(1)


def _rows_of(path: Path) -> dict[str, int]:
    """Each cell's first row number, as a spreadsheet shows it (for messages only)."""
    import csv

    found: dict[str, int] = {}
    text = path.read_text(encoding="utf-8-sig")
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        for cell in row:
            found.setdefault(cell.strip(), number)
    return found


def _publish(issues: list[PromotionCodesIssued], dry_run: bool) -> None:
    settings = get_settings()
    topic = settings.topic(PromotionCodesIssued.topic)
    if not dry_run:
        try:
            asyncio.run(publish_events(settings, issues, codec()))
        except KafkaError as error:
            click.echo(f"could not publish to {topic}: {error}", err=True)
            sys.exit(1)
    verb = "would publish" if dry_run else "published"
    for issue in issues:
        size = len(issue.codes) or issue.code_count
        click.echo(f"{verb} {size} code(s) of {issue.promotion_id} as {issue.event_id} to {topic}")


@click.group()
def codes() -> None:
    """Promo codes of code-linked promotions: generate, upload, status."""


@codes.command("generate")
@click.argument("promotion_id", metavar="PROMOTION")
@click.option("--pattern", required=True, help="`#` a digit, `?` a letter: SPRING-####-??")
@click.option("--count", required=True, type=int, help="How many codes.")
@click.option("--show", type=int, default=0, help="Print the first N codes generated.")
@_terms_options
def generate(
    promotion_id: str, pattern: str, count: int, show: int, dry_run: bool, **given: Any
) -> None:
    """Generate COUNT codes for PROMOTION from PATTERN (never stored: derived on demand)."""
    try:
        issue = generated(promotion_id, pattern, count, datetime.now(UTC), **given)
    except ValidationError as error:
        for problem in problems_of(error):
            click.echo(f"error: {problem}", err=True)
        sys.exit(1)
    assert issue.code_pattern is not None
    assert issue.code_count is not None
    _check_config([issue])
    if show:
        codes_of = GeneratedCodes(issue.promotion_id, issue.event_id, pattern, count)
        for index in range(min(show, count)):
            click.echo(codes_of.code(index))
    _publish([issue], dry_run)


@codes.command("upload")
@click.argument("promotion_id", metavar="PROMOTION")
@click.argument("file", type=click.Path(path_type=Path))
@_terms_options
def upload(promotion_id: str, file: Path, dry_run: bool, **given: Any) -> None:
    """Issue the codes of FILE (CSV with a `code` header) for PROMOTION, in batches of at
    most 5,000. Bad rows are reported with their row number and nothing is published; a code
    repeated (upper-cased) is reported and kept once."""
    try:
        issues, errors, warnings = uploaded(promotion_id, file, datetime.now(UTC), **given)
    except ValidationError as error:
        issues, errors, warnings = [], problems_of(error), []
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    for problem in errors:
        click.echo(f"error: {problem}", err=True)
    if errors:
        click.echo(f"{len(errors)} error(s); nothing published", err=True)
        sys.exit(1)
    _check_config(issues)
    _publish(issues, dry_run)


# Reservations as `GET /v1/promo-codes/{code}` counts them: live, not released, and not
# committed by their basket's purchase yet (`projections.api.code_store`).
_STATUS = """
SELECT p.promotion_id, p.market, p.starts_at, p.ends_at, p.redemptions_per_code_max,
    p.redemptions_total_max,
    (SELECT count(*) FROM promo_code_uses u WHERE u.code = %(code)s) AS uses,
    (SELECT sum(u.discount_cents) FROM promo_code_uses u WHERE u.code = %(code)s) AS discount,
    (SELECT count(*) FROM promo_code_reservations r WHERE r.code = %(code)s
        AND r.reserved_until > now() AND r.released_at IS NULL
        AND NOT EXISTS (SELECT 1 FROM promo_code_uses u
            WHERE u.code = r.code AND u.transaction_id = r.transaction_id)) AS reserved,
    (SELECT count(*) FROM promo_code_refusals f WHERE f.code = %(code)s) AS refusals
FROM promotions p WHERE p.promotion_id = %(promotion_id)s
"""


def promotion_of(conn: psycopg.Connection, code: str, market: str) -> str | None:
    """The promotion of `market` that issued `code`: uploaded, else generated by an issue."""
    row = conn.execute(
        "SELECT promotion_id FROM promotion_codes WHERE market = %s AND code = %s", (market, code)
    ).fetchone()
    if row is not None:
        return str(row[0])
    issues = conn.execute(
        "SELECT promotion_id, event_id, code_pattern, code_count FROM promotion_issues"
        " WHERE market = %s AND code_pattern IS NOT NULL ORDER BY issued_at",
        (market,),
    ).fetchall()
    for promotion_id, event_id, pattern, count in issues:
        if code in GeneratedCodes(promotion_id, event_id, pattern, count):
            return str(promotion_id)
    return None


@codes.command("status")
@click.argument("code")
@click.option("--market", required=True, help="The market the code is a code of.")
def status(code: str, market: str) -> None:
    """A code's promotion, uses, live reservations and refusals, from the projection."""
    code = normalised(code)
    with psycopg.connect(get_settings().dsn) as conn:
        promotion_id = promotion_of(conn, code, market)
        if promotion_id is None:
            click.echo(f"{code}: no promotion of market {market} issued it", err=True)
            sys.exit(1)
        cursor = conn.execute(_STATUS, {"code": code, "promotion_id": promotion_id})
        row = cursor.fetchone()
        assert row is not None
        assert cursor.description is not None
        found = dict(zip([c.name for c in cursor.description], row, strict=True))
        recent = conn.execute(
            "SELECT used_at, coalesce(member_id, '(anonymous)'), transaction_id, store_id,"
            " discount_cents FROM promo_code_uses WHERE code = %s ORDER BY used_at DESC LIMIT 10",
            (code,),
        ).fetchall()
    click.echo(f"code {code} of {promotion_id} ({found['market']}): "
               f"{found['starts_at']:%Y-%m-%d} to {found['ends_at']:%Y-%m-%d}")  # fmt: skip
    per_code, total = (found[k] if found[k] is not None else "none"
                       for k in ("redemptions_per_code_max", "redemptions_total_max"))  # fmt: skip
    click.echo(f"uses {found['uses']} (limit per code {per_code}, "
               f"total {total}); discount given "
               f"{found['discount'] or 0} cents; reserved now {found['reserved']}; "
               f"refusals {found['refusals']}")  # fmt: skip
    for used_at, member, transaction_id, store_id, cents in recent:
        click.echo(f"  {used_at:%Y-%m-%d %H:%M:%S} {member} {transaction_id} {store_id} {cents}")
