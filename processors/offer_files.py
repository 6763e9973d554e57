"""Offer files: YAML or JSON that product people write, read into `OfferPublished` events.

A file holds one offer or a list of offers in the JSON form of `OfferPublished` (the contract's
field names; timestamps RFC 3339; decimals as strings or numbers), with three conveniences:
- `type`, `event_id` and `occurred_at` may be left out: `event_id` is derived from the offer's
  content, `occurred_at` is the `published_at` the caller passes;
- a product selection may name its SKUs in a CSV file with a `productCode` header
  (`skus_file`, `excluded_skus_file`; paths relative to the offer file), merged into `skus`
  and `excluded_skus`;
- problems are reported all at once, each with its file, offer, field path and reason, e.g.
  `spring.yaml: offer 2 (SPRING_FUEL): localized_copy[fr].headline: 97 characters, at most 80`.

This module reads files and never talks to Kafka and never reads the clock: the CLI publishes
what it returns, and `loyalty simulate` can load the same files offline.

How every problem gets reported once: the checks here that speak more plainly than the
contract's models (offer id, rank, copy per locale, display date, product lists) report first
and then *repair* the value in a scratch copy of the offer; the contract's model then validates
that copy and reports only what is left, translated to the same paths.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from processors.code_lists import read_code_list
from processors.contract.base import (
    OFFER_ID_MAX_LENGTH,
    OFFER_ID_MIN_LENGTH,
    RANK_MAX,
    RANK_MIN,
    ContractEnum,
    UtcDatetime,
)
from processors.contract.config import OfferPublished
from processors.contract.offer_definition import (
    COPY_LIMITS,
    LIST_MAX,
    REQUIRED_LOCALES,
    LocalizedCopy,
)

SUFFIXES = (".yaml", ".yml", ".json")
"""The file types an offer file may have."""

LIST_FILE_FIELDS = {"skus_file": "skus", "excluded_skus_file": "excluded_skus"}
"""In a product selection: the file key, and the list its codes are merged into."""

_RANK_MIN, _RANK_MAX = RANK_MIN, RANK_MAX
_OFFER_ID_MIN, _OFFER_ID_MAX = OFFER_ID_MIN_LENGTH, OFFER_ID_MAX_LENGTH
_OFFER_ID_RULE = (
    f"an offer id is {_OFFER_ID_MIN} to {_OFFER_ID_MAX} ASCII letters, digits or underscores"
)
_PLACEHOLDER_ID = "PLACEHOLDER_OFFER_ID"
_LOCALES = tuple(locale.value for locale in REQUIRED_LOCALES)
_INSTANT: TypeAdapter[datetime] = TypeAdapter(UtcDatetime)


class Severity(StrEnum):
    """An error makes the offer invalid; a warning is worth reading but changes nothing."""

    ERROR = "error"
    WARNING = "warning"


def shown(value: str, limit: int = 80) -> str:
    """`value` as it is safe to echo: control and other unprintable characters escaped
    (`\\x1b`, `\\n`), and a long value cut after `limit` characters, saying how long it was."""
    cut = value[:limit]
    if not cut.isprintable():
        cut = "".join(c if c.isprintable() else repr(c)[1:-1] for c in cut)
    return cut if len(value) <= limit else f"{cut}… ({len(value)} characters)"


@dataclass(frozen=True)
class Problem:
    """One thing wrong (or worth a look) in an offer file."""

    file: str
    reason: str
    path: str = ""
    offer_index: int | None = None
    """1-based position of the offer in its file; None for a problem with the whole file."""
    offer_id: str | None = None
    severity: Severity = Severity.ERROR

    def __post_init__(self) -> None:
        # Everything here may echo a user's bytes to a terminal or a page: made safe once.
        for name, limit in (("file", 120), ("path", 120), ("offer_id", 80), ("reason", 400)):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, shown(value, limit))

    def __str__(self) -> str:
        where = [self.file]
        if self.offer_index is not None:
            label = f"offer {self.offer_index}"
            where.append(f"{label} ({self.offer_id})" if self.offer_id else label)
        if self.path:
            where.append(self.path)
        return ": ".join([*where, self.reason])

    def as_json(self) -> dict[str, Any]:
        """The problem as a JSON object (the `--json` output), with its one-line message."""
        return {
            "severity": self.severity.value,
            "file": self.file,
            "offer_index": self.offer_index,
            "offer_id": self.offer_id,
            "path": self.path,
            "reason": self.reason,
            "message": str(self),
        }


@dataclass(frozen=True)
class OfferResult:
    """One offer of a file: its event when valid, None when it has an error."""

    file: str
    index: int
    offer_id: str | None
    event: OfferPublished | None


@dataclass(frozen=True)
class OfferFiles:
    """What a set of offer files holds: each offer's result and every problem found."""

    results: tuple[OfferResult, ...] = ()
    problems: tuple[Problem, ...] = ()

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.WARNING]

    @property
    def events(self) -> list[OfferPublished]:
        """The valid offers' events, in file order."""
        return [r.event for r in self.results if r.event is not None]

    @property
    def is_valid(self) -> bool:
        """True when nothing is in error (there may be warnings)."""
        return not self.errors


def find_offer_files(paths: Iterable[Path]) -> list[Path]:
    """The paths given, with each directory replaced by the offer files directly in it, sorted."""
    found: list[Path] = []
    for path in paths:
        # A directory without offer files stays in the list, for the loader to report.
        inside = sorted(path.iterdir()) if path.is_dir() else []
        found += [p for p in inside if p.suffix.lower() in SUFFIXES] or [path]
    return found


def load_offer_files(paths: Sequence[Path], *, published_at: datetime) -> OfferFiles:
    """Read and check every offer in `paths`; an offer_id defined twice is an error.

    `published_at` becomes the `occurred_at` of offers that do not give one.
    """
    results: list[OfferResult] = []
    problems: list[Problem] = []
    for path in paths:
        _read_file(path, published_at, results, problems)
    return _without_duplicate_ids(results, problems)


def _read_file(
    path: Path, published_at: datetime, results: list[OfferResult], problems: list[Problem]
) -> None:
    name = str(path)
    if path.is_dir():
        problems.append(Problem(name, f"a directory without offer files ({', '.join(SUFFIXES)})"))
        return
    if path.suffix.lower() not in SUFFIXES:
        problems.append(Problem(name, f"not an offer file: use {', '.join(SUFFIXES)}"))
        return
    try:
        text = path.read_text(encoding="utf-8-sig")
        data = _parse(text, json_form=path.suffix.lower() == ".json")
    except FileNotFoundError:
        problems.append(Problem(name, "no such file"))
    except (OSError, UnicodeDecodeError) as error:
        problems.append(Problem(name, f"cannot be read: {error}"))
    except ValueError as error:
        problems.append(Problem(name, str(error)))
    else:
        _check_offers(data, name, path.parent, published_at, results, problems)


def offers_from_data(
    data: object, *, file: str, base_dir: Path, published_at: datetime
) -> OfferFiles:
    """Check offers already parsed (one mapping or a list of them), e.g. from a scenario file.

    `file` names them in problems; product list files are looked up relative to `base_dir`.
    """
    results: list[OfferResult] = []
    problems: list[Problem] = []
    _check_offers(data, file, base_dir, published_at, results, problems)
    return _without_duplicate_ids(results, problems)


def _check_offers(
    data: object,
    file: str,
    base_dir: Path,
    published_at: datetime,
    results: list[OfferResult],
    problems: list[Problem],
) -> None:
    if data is None:
        problems.append(Problem(file, "empty file: expected an offer or a list of offers"))
        return
    items = data if isinstance(data, list) else [data]
    if not items:
        problems.append(Problem(file, "no offers: the list is empty"))
    for index, item in enumerate(items, start=1):
        checker = _OfferCheck(file, index, item, base_dir)
        event = checker.run(published_at)
        results.append(OfferResult(file, index, checker.offer_id, event))
        problems += checker.problems


def _without_duplicate_ids(results: list[OfferResult], problems: list[Problem]) -> OfferFiles:
    first: dict[str, OfferResult] = {}
    checked: list[OfferResult] = []
    for result in results:
        earlier = first.setdefault(result.offer_id, result) if result.offer_id else result
        if earlier is not result:
            where = f"{earlier.file} (offer {earlier.index})"
            problems.append(
                Problem(
                    result.file,
                    f"{result.offer_id} is also defined in {where}; an offer_id names one offer",
                    "offer_id",
                    result.index,
                    result.offer_id,
                )
            )
            result = OfferResult(result.file, result.index, result.offer_id, None)
        checked.append(result)
    return OfferFiles(tuple(checked), tuple(problems))


# --- parsing ----------------------------------------------------------------------------------


class _YamlLoader(yaml.SafeLoader):
    """YAML with exact decimals (1.5 is Decimal("1.5"), not a float) and no repeated keys."""


def _yaml_decimal(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> object:
    text = str(loader.construct_scalar(node))
    try:
        return Decimal(text.replace("_", ""))
    except InvalidOperation:  # .inf, .nan: leave them to the contract to refuse
        return loader.construct_yaml_float(node)


def _yaml_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    lines: dict[object, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in lines:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"key {key!r} repeats line {lines[key]}: the second would silently win",
                key_node.start_mark,
            )
        lines[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=True)


_YamlLoader.add_constructor("tag:yaml.org,2002:float", _yaml_decimal)
_YamlLoader.add_constructor("tag:yaml.org,2002:map", _yaml_mapping)


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"key {key!r} is given twice in one object: the second would win")
        obj[key] = value
    return obj


def _parse(text: str, *, json_form: bool) -> object:
    """The file's data; ValueError says where the syntax is wrong."""
    if json_form:
        try:
            return json.loads(text, parse_float=Decimal, object_pairs_hook=_json_object)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"line {error.lineno}, column {error.colno}: not JSON: {error.msg}"
            ) from None
    try:
        return yaml.load(text, Loader=_YamlLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        syntax = "" if isinstance(error, yaml.constructor.ConstructorError) else "not YAML: "
        raise ValueError(f"{where}{syntax}{error.problem or error.context}") from None
    except yaml.YAMLError as error:
        raise ValueError(f"not YAML: {error}") from None


# --- one offer --------------------------------------------------------------------------------


class _OfferCheck:
    """The checks of one offer: plain-spoken checks with repairs, then the contract's model."""

    def __init__(self, file: str, index: int, data: object, base_dir: Path):
        self.file = file
        self.index = index
        self.raw = data
        self.base_dir = base_dir
        offer_id = data.get("offer_id") if isinstance(data, dict) else None
        self.offer_id = offer_id if isinstance(offer_id, str) else None
        self.problems: list[Problem] = []
        self._reported: list[str] = []

    def error(self, path: str, reason: str, *, covers: Sequence[str] | None = None) -> None:
        """Report an error at `path`; the model's errors at or under `covers` (default: the
        path) are the same problem seen again, so they are left out."""
        self.problems.append(Problem(self.file, reason, path, self.index, self.offer_id))
        self._reported += [path] if covers is None else covers

    def warn(self, path: str, reason: str) -> None:
        self.problems.append(
            Problem(self.file, reason, path, self.index, self.offer_id, Severity.WARNING)
        )

    def run(self, published_at: datetime) -> OfferPublished | None:
        if not isinstance(self.raw, dict):
            kind = type(self.raw).__name__
            self.error("", f"expected a mapping of offer fields, got a {kind}")
            return None
        data = copy.deepcopy(self.raw)
        self._check_envelope(data)
        for path, selection in _product_selections(data):
            self._merge_product_lists(path, selection)
        self._drop_unknown_fields(data, OfferPublished, "")
        self._check_offer_id(data)
        self._check_rank(data)
        self._check_copy(data)
        self._check_display_at(data)
        data.setdefault("event_id", "pending")
        data.setdefault("occurred_at", published_at)
        try:
            event = OfferPublished.model_validate(data)
        except ValidationError as error:
            self._report_model_errors(error, data)
            return None
        self._check_no_unknown_symbols(event)
        if any(p.severity is Severity.ERROR for p in self.problems):
            return None
        if "event_id" not in self.raw:
            event = event.model_copy(update={"event_id": content_event_id(event)})
        return event

    # --- plain-spoken checks, each repairing what it reports -----------------------------------

    def _check_envelope(self, data: dict[str, Any]) -> None:
        kind = data.pop("type", "OfferPublished")
        if kind != "OfferPublished":
            self.error("type", f"{kind!r}: an offer file holds OfferPublished events only")

    def _drop_unknown_fields(self, data: dict[str, Any], model: type[BaseModel], path: str) -> None:
        """Unknown fields, found before the model would stop at the first one in a record."""
        for key in list(data):
            where = f"{path}.{key}" if path else str(key)
            info = model.model_fields.get(key) if isinstance(key, str) else None
            if info is None:
                near = difflib.get_close_matches(str(key), list(model.model_fields), n=1)
                self.error(where, "unknown field" + (f"; did you mean {near[0]}?" if near else ""))
                del data[key]
                continue
            inner = _record_in(info.annotation)
            value = data[key]
            if inner is None:
                continue
            if isinstance(value, dict):
                self._drop_unknown_fields(value, inner, where)
            for position, item in enumerate(value if isinstance(value, list) else []):
                if isinstance(item, dict):
                    label = _copy_path(value, position) if key == "localized_copy" else ""
                    self._drop_unknown_fields(item, inner, label or f"{where}[{position}]")

    def _check_offer_id(self, data: dict[str, Any]) -> None:
        value = data.get("offer_id")
        if not isinstance(value, str):
            return
        reasons = []
        echo = f"'{shown(value, 40)}'"
        if not value.isascii():
            odd = next(c for c in value if not c.isascii())
            reasons.append(f"{echo} has a non-ASCII character {odd!r}; {_OFFER_ID_RULE}")
        elif bad := sorted({c for c in value if not (c.isalnum() or c == "_")}):
            listed = " ".join(repr(c) for c in bad[:10])
            reasons.append(f"{echo} has {listed}; {_OFFER_ID_RULE}")
        if len(value) < _OFFER_ID_MIN:
            reasons.append(f"{echo} is {len(value)} characters, at least {_OFFER_ID_MIN}")
        elif len(value) > _OFFER_ID_MAX:
            reasons.append(f"{len(value)} characters, at most {_OFFER_ID_MAX}")
        for reason in reasons:
            self.error("offer_id", reason)
        if reasons:
            data["offer_id"] = _PLACEHOLDER_ID

    def _check_rank(self, data: dict[str, Any]) -> None:
        rank = data.get("rank")
        if isinstance(rank, bool) or not isinstance(rank, int):
            return  # the model says what a rank is
        if not _RANK_MIN <= rank <= _RANK_MAX:
            self.error("rank", f"{rank}, must be {_RANK_MIN} to {_RANK_MAX} (1 is the top)")
            data["rank"] = _RANK_MIN

    def _check_copy(self, data: dict[str, Any]) -> None:
        copies = data.get("localized_copy")
        if not isinstance(copies, list):
            return
        kept: list[Any] = []
        seen: set[str] = set()
        for item in copies:
            locale = item.get("locale") if isinstance(item, dict) else None
            if isinstance(locale, str) and locale in seen:
                self.error(f"localized_copy[{locale}]", f"{locale} is given more than once")
                continue
            if isinstance(locale, str):
                seen.add(locale)
            kept.append(item)
        for position, item in enumerate(kept):
            if isinstance(item, dict):
                self._check_copy_lengths(_copy_path(kept, position), item)
        missing = [locale for locale in _LOCALES if locale not in seen]
        if missing:
            # The repair stands in for the missing locales, so the rest is still checked.
            template = next((c for c in kept if isinstance(c, dict)), None)
            stand_ins = [f"localized_copy[{locale}]" for locale in missing]
            self.error(
                "localized_copy",
                f"no {' or '.join(missing)} copy; every offer has copy in {' and '.join(_LOCALES)}",
                covers=stand_ins if template else ["localized_copy"],
            )
            kept += [{**template, "locale": locale} for locale in missing] if template else []
        data["localized_copy"] = kept

    def _check_copy_lengths(self, path: str, item: dict[str, Any]) -> None:
        for name, limit in COPY_LIMITS.items():
            value = item.get(name)
            if isinstance(value, str) and len(value) > limit:
                self.error(f"{path}.{name}", f"{len(value)} characters, at most {limit}")
                item[name] = value[:limit]

    def _check_display_at(self, data: dict[str, Any]) -> None:
        schedule = data.get("schedule")
        if not isinstance(schedule, dict) or schedule.get("display_at") is None:
            return
        try:
            display_at = _INSTANT.validate_python(schedule["display_at"])
            starts_at = _INSTANT.validate_python(schedule.get("starts_at"))
        except ValidationError:
            return  # the model says what is wrong with the instants themselves
        if display_at > starts_at:
            self.error(
                "schedule.display_at",
                f"{_iso(display_at)} is after starts_at {_iso(starts_at)}; members see an "
                "offer on or before its start (leave display_at out to show it at the start)",
            )
            del schedule["display_at"]

    def _merge_product_lists(self, path: str, selection: dict[str, Any]) -> None:
        for file_key, list_key in LIST_FILE_FIELDS.items():
            if file_key not in selection:
                continue
            where = f"{path}.{file_key}"
            name = selection.pop(file_key)
            if not isinstance(name, str) or not name.strip():
                self.error(where, "the path of a CSV file with a productCode header")
                continue
            list_path = self.base_dir / name
            read = read_code_list(list_path)
            for reason in read.errors:
                self.error(where, reason)
            for reason in read.warnings:
                self.warn(where, reason)
            inline = selection.get(list_key, [])
            if not isinstance(inline, list) or not all(isinstance(c, str) for c in inline):
                continue  # the model reports what is wrong with the inline list
            merged = dict.fromkeys(inline)
            for code in read.codes:
                if code in merged:
                    self.warn(where, f"{code!r} is also in {list_key}; kept once")
                merged[code] = None
            if len(merged) > LIST_MAX and not inline:
                self._reported.append(f"{path}.{list_key}")  # the file's own error says it
            elif len(merged) > LIST_MAX:
                self.error(
                    f"{path}.{list_key}",
                    f"{len(merged)} codes with those of {list_path}, at most {LIST_MAX}",
                )
            selection[list_key] = list(merged)

    # --- the contract's model ---------------------------------------------------------------

    def _report_model_errors(self, error: ValidationError, data: dict[str, Any]) -> None:
        reported = list(self._reported)
        for item in error.errors():
            loc = tuple(item["loc"])
            for path, reason in _explain(loc, item, data):
                if not any(_within(path, done) for done in reported):
                    self.error(path, reason)

    def _check_no_unknown_symbols(self, event: OfferPublished) -> None:
        for path, symbol in _enum_values(event, ""):
            if symbol.name == "UNKNOWN":
                choices = ", ".join(s.value for s in type(symbol) if s.name != "UNKNOWN")
                self.error(
                    path, f"UNKNOWN is what older readers see for newer symbols; use {choices}"
                )


def content_event_id(event: OfferPublished) -> str:
    """An event id derived from the offer's definition: the same content, the same id.

    Publishing an unchanged file again produces the same event_id, so consumers that
    deduplicate on event_id see one definition; any change to the offer changes the id.
    """
    content = event.model_dump(mode="json", exclude={"event_id", "occurred_at"})
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return f"offer-{event.offer_id[:80]}-{digest[:24]}"


def _product_selections(data: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The product selections of an offer that may name product list files, with their paths."""
    behaviours = data.get("behaviours")
    for i, behaviour in enumerate(behaviours if isinstance(behaviours, list) else []):
        if isinstance(behaviour, dict) and isinstance(behaviour.get("products"), dict):
            yield f"behaviours[{i}].products", behaviour["products"]
    reward = data.get("reward")
    if not isinstance(reward, dict):
        return
    discounts = [("reward.discount", reward.get("discount"))]
    tiers = reward.get("tiers")
    for i, tier in enumerate(tiers if isinstance(tiers, list) else []):
        if isinstance(tier, dict):
            discounts.append((f"reward.tiers[{i}].discount", tier.get("discount")))
    for path, discount in discounts:
        if not isinstance(discount, dict):
            continue
        if isinstance(discount.get("products"), dict):
            yield f"{path}.products", discount["products"]
        combo = discount.get("combo_products")
        for i, selection in enumerate(combo if isinstance(combo, list) else []):
            if isinstance(selection, dict):
                yield f"{path}.combo_products[{i}]", selection


# --- the model's errors, in the file's words --------------------------------------------------

_NOT_SHOWN = object()


def _explain(loc: tuple[Any, ...], item: Any, data: dict[str, Any]) -> list[tuple[str, str]]:
    """(path, reason) for one of pydantic's errors; a validator's joined reasons are split."""
    path = _path(loc, data)
    kind, message = item["type"], item["msg"]
    if kind == "missing":
        return [(path, "required")]
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        near = difflib.get_close_matches(str(loc[-1]), list(model.model_fields) if model else [])
        return [(path, "unknown field" + (f"; did you mean {near[0]}?" if near else ""))]
    if kind == "enum":
        choices = [c for c in re.findall(r"'([^']*)'", item["ctx"]["expected"]) if c != "UNKNOWN"]
        return [(path, f"'{shown(str(item['input']), 40)}' is not one of {', '.join(choices)}")]
    if kind == "value_error":
        return [
            _field_in_reason(loc, path, reason)
            for reason in message.removeprefix("Value error, ").split("; ")
        ]
    given = item.get("input", _NOT_SHOWN)
    if isinstance(given, str | int | Decimal | float) and len(str(given)) <= 60:
        message += f" (got {given!r})"
    return [(path, message)]


def _field_in_reason(loc: tuple[Any, ...], path: str, reason: str) -> tuple[str, str]:
    """A record's validator names the field it objects to first: point the path at it."""
    model = _model_at(loc)
    match = re.match(r"(\w+)(?: \((?:en|fr|UNKNOWN)\))? (.*)", reason)
    if model is None or match is None or match[1] not in model.model_fields:
        return path, reason
    named = f"{path}.{match[1]}" if path else match[1]
    return named, match[2] if reason.startswith(f"{match[1]} (") else reason


def _path(loc: tuple[Any, ...], data: object) -> str:
    """`localized_copy[fr].headline` for ("localized_copy", 1, "headline")."""
    path = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            label = str(part)
            if path.endswith("localized_copy") and isinstance(node, list):
                label = _copy_path(node, part).removeprefix("localized_copy[").rstrip("]")
            path += f"[{label}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
        else:
            path += f".{part}" if path else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return path


def _copy_path(copies: list[Any], position: int) -> str:
    """`localized_copy[fr]` for a copy naming its locale once, else `localized_copy[2]`."""
    item = copies[position]
    locale = item.get("locale") if isinstance(item, dict) else None
    locales = [c.get("locale") for c in copies if isinstance(c, dict)]
    if isinstance(locale, str) and locale and locales.count(locale) == 1:
        return f"localized_copy[{locale}]"
    return f"localized_copy[{position}]"


def _within(path: str, reported: str) -> bool:
    return path == reported or path.startswith((f"{reported}.", f"{reported}["))


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The record class found at `loc` inside an OfferPublished, if any."""
    model: type[BaseModel] | None = OfferPublished
    for part in loc:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part) if model else None
        model = _record_in(info.annotation) if info else None
    return model


def _record_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        if found := _record_in(arg):
            return found
    return None


def _enum_values(value: object, path: str) -> Iterator[tuple[str, ContractEnum]]:
    """Every contract symbol inside a validated record, with its path."""
    if isinstance(value, ContractEnum):
        yield path, value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _enum_values(getattr(value, name), f"{path}.{name}" if path else name)
    elif isinstance(value, list):
        for position, item in enumerate(value):
            label = str(position)
            if isinstance(item, LocalizedCopy) and item.locale.name != "UNKNOWN":
                label = item.locale.value
            yield from _enum_values(item, f"{path}[{label}]")


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")
