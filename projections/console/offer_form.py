"""The offer form: its fields, the offer they make, and each problem placed at its field.

Every input is named after the path of the offer file it fills (`localized_copy[fr].headline`,
`usage.budget_points_max`), so a form is read into the same data as an offer file and checked
by the same validator the CLI uses (`processors.offer_files.offers_from_data`), and each of the
validator's problems lands beside the input of its path. What the structured inputs do not
cover (several behaviours, reward tiers, targeting criteria, store locations, discounts, a
reward store listing) is written in the form's `advanced` box in the offer file's YAML, merged
over the inputs: the form covers the whole definition. Never publishes and never reads a clock.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from processors.audience_lists import AUDIENCE_HEADER, audience_parts
from processors.code_lists import read_code_text
from processors.contract.base import ContractEnum
from processors.contract.config import AudienceUploaded
from processors.contract.offer_definition import (
    COPY_LIMITS,
    REQUIRED_LOCALES,
    Accumulation,
    ActivationKind,
    BehaviourKind,
    OfferRewardKind,
    PayoutMode,
    TargetingKind,
    TargetingTiming,
)
from processors.offer_files import OfferFiles, Problem, Severity, offers_from_data

LOCALES = tuple(locale.value for locale in REQUIRED_LOCALES)
ADVANCED = "advanced"
PRODUCTS_CSV = "products_csv"
PRODUCTS = "behaviours[0].products.skus"
AUDIENCE_MEMBERS = "audience_members"
"""Not in the definition: the members of the list the offer targets, published with it."""
AUDIENCE_CSV = "audience_csv"


@dataclass(frozen=True)
class Input:
    """One input of the form."""

    path: str
    label: str
    kind: str = "text"
    """text, textarea, number, decimal, datetime, select, checkbox, lines."""
    choices: tuple[str, ...] = ()
    max_length: int | None = None
    help: str = ""

    @property
    def id(self) -> str:
        return "f-" + "".join(c if c.isalnum() else "-" for c in self.path)


def _choices(symbols: type[ContractEnum]) -> tuple[str, ...]:
    """A contract enum's symbols, less UNKNOWN (what older readers see of newer symbols)."""
    return tuple(symbol.value for symbol in symbols if symbol.name != "UNKNOWN")


def _copy(locale: str) -> list[Input]:
    labels = {
        "headline": "Headline",
        "short_description": "Short description",
        "long_description": "Long description",
        "terms": "Terms and conditions",
        "image_url": "Image URL",
    }
    long = {"long_description", "terms"}
    return [
        Input(
            f"localized_copy[{locale}].{name}",
            label,
            "textarea" if name in long else "text",
            max_length=COPY_LIMITS.get(name),
        )
        for name, label in labels.items()
    ]


SECTIONS: dict[str, list[Input]] = {
    "Offer": [
        Input("offer_id", "Offer ID", help="3 to 128 letters, digits or underscores."),
        Input("program_id", "Programme"),
        Input("market", "Market", help="e.g. CA"),
        Input("rank", "Rank", "number", help="1 to 9; 1 is the top of the gallery."),
        Input("stacking_group", "Unstackable group", help="Blank: the offer stacks."),
        Input("apply_global_exclusions", "Apply the global exclusions", "checkbox"),
    ],
    "Schedule (UTC)": [
        Input("schedule.starts_at", "Starts", "datetime"),
        Input("schedule.ends_at", "Ends", "datetime", help="Blank: the offer does not expire."),
        Input("schedule.display_at", "Shown from", "datetime", help="Blank: from the start."),
    ],
    "Targeting": [
        Input(
            "targeting.kind",
            "Audience",
            "select",
            _choices(TargetingKind),
        ),
        Input("targeting.timing", "Decided", "select", _choices(TargetingTiming)),
        Input("targeting.audience_id", "Audience id", help="AUDIENCE_LIST: a list or a query."),
        Input("targeting.control_share_percent", "Control group (%)", "number"),
        Input("activation.kind", "Activation", "select", _choices(ActivationKind)),
        Input("activation.coupon_code", "Coupon code"),
    ],
    "Behaviour": [
        Input(
            "behaviours[0].kind",
            "Required behaviour",
            "select",
            _choices(BehaviourKind),
        ),
        Input(
            "behaviours[0].accumulation",
            "Counted",
            "select",
            ("", *_choices(Accumulation)),
        ),
        Input("behaviours[0].spend_min_cents", "Spend at least (cents)", "number"),
        Input("behaviours[0].quantity_min", "Quantity at least", "decimal"),
        Input("behaviours[0].count_min", "Count at least", "number"),
        Input("behaviours[0].window_days", "Within (days)", "number"),
        Input(
            PRODUCTS,
            "Products (SKUs, one a line)",
            "lines",
            help="Or upload a CSV with a productCode header below.",
        ),
    ],
    "Reward": [
        Input(
            "reward.kind",
            "Reward",
            "select",
            _choices(OfferRewardKind),
        ),
        Input("reward.payout", "Pays", "select", _choices(PayoutMode)),
        Input("reward.points", "Points", "number"),
        Input("reward.multiplier", "Multiplier", "decimal"),
        Input("reward.reward_id", "Reward id"),
    ],
    "Usage controls": [
        Input("usage.uses_per_member_max", "Uses per member", "number"),
        Input("usage.uses_total_max", "Total uses", "number"),
        Input("usage.points_per_member_max", "Points per member", "number"),
        Input("usage.points_per_transaction_max", "Points per transaction", "number"),
        Input("usage.budget_points_max", "Points budget", "number"),
    ],
}
COPY: dict[str, list[Input]] = {locale: _copy(locale) for locale in LOCALES}
INPUTS: dict[str, Input] = {
    i.path: i for i in [*(i for s in SECTIONS.values() for i in s), *COPY["en"], *COPY["fr"]]
}


@dataclass
class OfferForm:
    """What the form holds: the values as typed, and what checking them found."""

    values: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    checked: OfferFiles | None = None
    audience: list[AudienceUploaded] = field(default_factory=list)
    """The audience list's parts, published before the offer (none: no list given)."""

    @property
    def errors(self) -> list[Problem]:
        """What stops the offer from being published (warnings do not)."""
        return [p for p in self.problems if p.severity is Severity.ERROR]

    @property
    def by_path(self) -> dict[str, list[Problem]]:
        """Each input's problems; those of no input are under "" (shown at the top)."""
        placed: dict[str, list[Problem]] = {}
        for problem in self.problems:
            placed.setdefault(_input_of(problem.path), []).append(problem)
        return placed


def _input_of(path: str) -> str:
    """The input a problem's path belongs to: itself, or the nearest input above it."""
    if path in INPUTS or path == AUDIENCE_MEMBERS:
        return path
    if path.startswith(f"{PRODUCTS.rsplit('.', 1)[0]}.") and PRODUCTS in INPUTS:
        return PRODUCTS
    return ""


def empty_form() -> OfferForm:
    """A new offer: English and French copy, mass targeting, automatic, points."""
    return OfferForm(
        values={
            "rank": "5",
            "targeting.kind": "MASS",
            "targeting.timing": "DYNAMIC",
            "targeting.control_share_percent": "0",
            "activation.kind": "AUTOMATIC",
            "behaviours[0].kind": "SPEND",
            "behaviours[0].accumulation": "SINGLE_TRANSACTION",
            "reward.kind": "FLAT_POINTS",
            "reward.payout": "MINIMUM",
            "apply_global_exclusions": "on",
        }
    )


def form_of_definition(definition: Mapping[str, Any]) -> OfferForm:
    """A published offer's definition (JSON form) in the form's inputs; the rest in advanced."""
    values: dict[str, str] = {}
    rest = json.loads(json.dumps(definition))
    for key in ("type", "event_id", "occurred_at"):
        rest.pop(key, None)
    for path, spec in INPUTS.items():
        value = _pop(rest, path)
        if value is None:
            continue
        if spec.kind == "checkbox":
            values[path] = "on" if value else ""
        elif spec.kind == "lines":
            values[path] = "\n".join(value)
        elif spec.kind == "datetime":
            # datetime-local to the second (`step="1"`), UTC: "2026-03-01T10:00:00".
            values[path] = "" if str(value).startswith("3001-") else str(value)[:19]
        else:
            values[path] = str(value)
    leftover = _pruned(rest)
    if leftover:
        values[ADVANCED] = yaml.safe_dump(leftover, sort_keys=False, allow_unicode=True)
    return OfferForm(values=values)


SAMPLE = ("sample_member_id", "sample_spend_cents", "sample_sku")
"""The preview's sample purchase: kept as typed, so a second preview starts from it."""


def read_form(fields: Mapping[str, str], uploads: Mapping[str, str | None]) -> OfferForm:
    """The form as typed, with the lists uploaded as CSV (`PRODUCTS_CSV`, `AUDIENCE_CSV`)
    merged into the inputs they fill."""
    values = {path: fields.get(path, "") for path in INPUTS}
    for name in (ADVANCED, AUDIENCE_MEMBERS, *SAMPLE):
        values[name] = fields.get(name, "")
    form = OfferForm(values=values)
    for upload, into, header in (
        (PRODUCTS_CSV, PRODUCTS, "productCode"),
        (AUDIENCE_CSV, AUDIENCE_MEMBERS, AUDIENCE_HEADER),
    ):
        text = uploads.get(upload)
        if not text:
            continue
        listed = read_code_text(text, f"the uploaded {header} list", header, count_max=None)
        for reason in listed.errors:
            form.problems.append(Problem("form", reason, into))
        known = [code for code in values[into].split() if code]
        values[into] = "\n".join(dict.fromkeys([*known, *listed.codes]))
    return form


def check(form: OfferForm, *, published_at: datetime) -> OfferForm:
    """Check the form with the offer validator the CLI uses; its problems, placed."""
    data, problems = offer_data(form.values)
    if problems:
        form.problems += problems
        return form
    checked = offers_from_data(data, file="form", base_dir=Path("."), published_at=published_at)
    form.problems += list(checked.problems)
    form.checked = checked
    members = [m for m in form.values.get(AUDIENCE_MEMBERS, "").split() if m]
    audience_id = form.values.get("targeting.audience_id", "").strip()
    if members and not audience_id:
        reason = "a list of members needs the audience id the offer targets"
        form.problems.append(Problem("form", reason, "targeting.audience_id"))
    elif members:
        form.audience = audience_parts(audience_id, members, at=published_at, file_name="console")
    return form


def offer_data(values: Mapping[str, str]) -> tuple[dict[str, Any], list[Problem]]:
    """The offer file's data the inputs make, and what could not be read at all."""
    data: dict[str, Any] = {}
    problems: list[Problem] = []
    copies: dict[str, dict[str, Any]] = {locale: {"locale": locale} for locale in LOCALES}
    for path, spec in INPUTS.items():
        raw = values.get(path, "")
        value = _typed(spec, raw)
        if value is None:
            continue
        if path.startswith("localized_copy["):
            locale, name = path.removeprefix("localized_copy[").split("].")
            copies[locale][name] = value
        else:
            _put(data, path, value)
    data["localized_copy"] = list(copies.values())
    if "behaviours" in data:
        data["behaviours"] = [data["behaviours"]["0"]]
    schedule = data.setdefault("schedule", {})
    schedule.setdefault("ends_at", None)
    data.setdefault("usage", {})  # no limit set: no limits
    advanced = values.get(ADVANCED, "").strip()
    if advanced:
        try:
            extra = yaml.safe_load(advanced)
        except yaml.YAMLError as error:
            problems.append(Problem("form", f"not YAML: {error}", ADVANCED))
            return data, problems
        if not isinstance(extra, dict):
            problems.append(
                Problem("form", "a mapping of offer fields, as in an offer file", ADVANCED)
            )
            return data, problems
        _merge(data, extra)
    return data, problems


def _typed(spec: Input, raw: str) -> Any:
    text = raw.strip() if spec.kind not in ("text", "textarea") else raw
    if spec.kind == "checkbox":
        return bool(raw)
    if text == "" or (spec.kind in ("text", "textarea") and not text.strip()):
        return None
    if spec.kind == "number":
        try:
            return int(text)
        except ValueError:
            return text  # the validator says what a number is
    if spec.kind == "datetime":  # a browser's datetime-local: minutes, no offset; UTC here
        if text.endswith("Z") or "+" in text[10:]:
            return text
        return f"{text}:00Z" if len(text) == 16 else f"{text}Z"
    if spec.kind == "lines":
        return [code for code in text.split() if code]
    return text


def _put(data: dict[str, Any], path: str, value: Any) -> None:
    parts = path.replace("[", ".").replace("]", "").split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def _pop(data: Any, path: str) -> Any:
    """The value at an input's path in a definition, removed from it (None: not there)."""
    if path.startswith("localized_copy["):
        locale, name = path.removeprefix("localized_copy[").split("].")
        for copy in data.get("localized_copy", []):
            if copy.get("locale") == locale:
                return copy.pop(name, None)
        return None
    node = data
    parts = path.replace("[", ".").replace("]", "").split(".")
    for part in parts[:-1]:
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict):
            node = node.get(part)
        else:
            return None
    return node.pop(parts[-1], None) if isinstance(node, dict) else None


def _pruned(value: Any) -> Any:
    """Without what the inputs took: empty records, lists of them and nulls dropped."""
    if isinstance(value, dict):
        kept = {k: _pruned(v) for k, v in value.items()}
        kept = {k: v for k, v in kept.items() if v not in (None, {}, [], "")}
        if set(kept) == {"locale"}:
            return {}
        return kept
    if isinstance(value, list):
        items = [_pruned(v) for v in value]
        return [] if all(v in ({}, None) for v in items) else items
    return value


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> None:
    """`extra` over `base`: records merge key by key, lists of records item by item (the
    advanced box's `behaviours[0]` completes the inputs' behaviour, `behaviours[1]` adds a
    second), anything else replaces."""
    for key, value in extra.items():
        here = base.get(key)
        if isinstance(value, dict) and isinstance(here, dict):
            _merge(here, value)
        elif isinstance(value, list) and isinstance(here, list):
            for n, item in enumerate(value):
                if n < len(here) and isinstance(item, dict) and isinstance(here[n], dict):
                    _merge(here[n], item)
                elif n < len(here):
                    here[n] = item
                else:
                    here.append(item)
        else:
            base[key] = value
