"""Scenario files: readable given / when / then data that product people write and the engine
must honour, run through `loyalty simulate` and through the real stack (ADR 10).

A scenario is YAML:

```yaml
name: 100 points per $10, at most 3 times
given:
  programs: [{program_id: MAIN, points_per_currency_unit: 1}]   # defaults fill the rest
  offers: [{offer_id: SPEND10, behaviours: [...], reward: {...}, usage: {...}}]
when:
  - enrol: {member: M1}
  - buy: {member: M1, at: 2026-03-02T10:00:00Z, lines: [{sku: A, amount: "12.00"}]}
then:
  awards: [{member: M1, offer: SPEND10, points: 100}]            # every award, in order
  balances: {M1: 112}                                          # REGULAR, first programme
```

Given: `programs`, `audiences` (audience id → member ids, uploaded before the offers are
published; or → `{criteria: [...]}`, a saved query, AudienceDefined), `offers`, `rewards` (a
reward's fields over a default free coffee costing 100 points; `codes` lists its code stock),
`reward_stores` (a RewardStoreConfigured's fields, `reward_store_id` at least, over a
store of the first programme and its market, open from a month before the scenario starts),
`promotions` (code-linked promotions: a PromotionCodesIssued's fields over a default 10 % off
the cart, or the offer it names with `offer_id`, live from the scenario's start for 30 days) and
`challenges` (a ChallengePublished's fields over a default live from the day before the scenario
starts, without end, once per member). Steps (`when`): `enrol`, `buy` (optional `tokens`: the
granted rewards used; `codes`: promo codes; no `member`: an anonymous customer), `return`,
`activity`, `profile`, `redeem` (points, optional program), `prefs` (channels: channel → opted
in; optional `by`: a staff id, else the member; optional command), `reward` (redeem a reward:
reward, optional quantity and command), `load` (offer: load to card), `store_buy` (a reward
store's offer bought with points: reward_store, offer, optional command), `lock`, `unlock`
(its order cancelled) and `use_now` (the instance a `store_buy` issued, named by that step's
command, `C<n>` with n its position from 1: instance, transaction), `day`, or `event` (any
event in its JSON form). A `buy` may carry store instances (`instances`: `store_buy`
commands) and name its `transaction`. Money
is written in currency units as a string ("12.50"); ids and times default from the step's
position, so a scenario states only what matters to it. Expectations
(`then`) are judged on the output events alone, so the same check serves the simulator and the
real stack: `awards` (OfferCompleted with points, in order; an item names member, offer, points
and may name due, multiples, tier, use: the keys named are compared), `discounts`
(OfferCompleted with a discount), `ledger` (ledger events: member, type, points_on_event),
`balances` (from the last ledger event of each member), `completions` (number of OfferCompleted,
control group included), `targeted` (OfferTargeted: member, offer, control), `loaded`
(OfferLoaded: member, offer), `rejections` (RequestRejected: member, reason), `grants`
(RewardGranted: member, reward, code), `used` (RewardRedeemed: member, reward, code, and cents
when named), `expired` (RewardExpired: member, reward), `code_uses` (PromoCodeRedeemed: member
(null: anonymous), code, cents) and `code_refusals` (PromoCodeRefused: member, code, reason),
`messages` (MessagePosted to a member's inbox: member, title),
`challenges` (ChallengeCompleted: member, challenge, completion, points), `challenge_progress`
(ChallengeProgressed: member, challenge, progress), `taken_back` (ChallengeAwardTakenBack:
member, challenge, points) and `preferences` (PreferencesChanged, an item per channel changed:
member, channel, was, now, by).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from processors import offer_files
from processors.codec.json_form import from_json_object
from processors.contract.base import Event
from processors.contract.ledger import LedgerEventRecorded
from processors.contract.notifications import MessagePosted, PreferencesChanged
from processors.contract.offers import (
    ChallengeAwardTakenBack,
    ChallengeCompleted,
    ChallengeProgressed,
    OfferCompleted,
    OfferLoaded,
    OfferTargeted,
    PromoCodeRedeemed,
    PromoCodeRefused,
)
from processors.contract.outcomes import RequestRejected
from processors.contract.rewards import RewardExpired, RewardGranted, RewardRedeemed
from processors.rules.rewards.store import issued_offer_id

START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
"""When a scenario's first step happens unless it says otherwise (a Monday); each later step
without `at` happens one hour after the previous one."""

PROGRAM_DEFAULTS: dict[str, Any] = {
    "program_id": "MAIN",
    "name": "Main programme",
    "market": "CA",
    "currency": "CAD",
    "time_zone": "America/Toronto",
    "categories": ["REGULAR"],
    "points_per_currency_unit": "1",
    "expiry": {"kind": "NONE"},
}
STORE_DEFAULTS: dict[str, Any] = {"store_id": "S1", "country": "CA", "province": "ON"}
PROMOTION_DEFAULTS: dict[str, Any] = {
    "promotion_id": "PROMO",
    "discount": {"kind": "PERCENT_OFF_CART", "percent_off": "10"},
}
REWARD_STORE_DEFAULTS: dict[str, Any] = {
    "localized_copy": [
        {"locale": "en", "headline": "The store", "short_description": "Offers for points."},
        {"locale": "fr", "headline": "La boutique", "short_description": "Des offres à points."},
    ],
}
REWARD_DEFAULTS: dict[str, Any] = {
    "reward_id": "COFFEE",
    "localized_copy": [
        {"locale": "en", "headline": "A free coffee", "short_description": "Any size, on us."},
        {"locale": "fr", "headline": "Un café offert", "short_description": "Au choix, offert."},
    ],
    "points_cost": 100,
    "discount": None,
    "uses_code_stock": True,
    "granted_valid_days": 30,
}


class ScenarioError(ValueError):
    """A scenario file that cannot be read; the message names the file and the step."""


@dataclass
class Scenario:
    """A scenario ready to run: config events, input events, expectations."""

    name: str
    path: Path
    config: list[Event]
    events: list[Event]
    expect: dict[str, Any] = field(default_factory=dict)


def _cents(value: Any) -> int:
    return int((Decimal(str(value)) * 100).to_integral_value())


def _merged(defaults: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(defaults)
    out.update(given)
    return out


def _offer(given: dict[str, Any], program: dict[str, Any], n: int) -> dict[str, Any]:
    offer_id = given.get("offer_id", f"OFFER_{n}")
    copy_text = {"headline": offer_id.replace("_", " "), "short_description": offer_id}
    defaults = {
        "event_id": f"offer-{offer_id}",
        "occurred_at": (START - timedelta(days=30)).isoformat(),
        "offer_id": offer_id,
        "program_id": program["program_id"],
        "market": program["market"],
        "localized_copy": [{"locale": "en", **copy_text}, {"locale": "fr", **copy_text}],
        "rank": 5,
        "schedule": {"starts_at": (START - timedelta(days=1)).isoformat(), "ends_at": None},
        "targeting": {"kind": "MASS", "timing": "STATIC"},
        "activation": {"kind": "AUTOMATIC"},
        "usage": {},
    }
    return _merged(defaults, given)


def _line(given: dict[str, Any], n: int) -> dict[str, Any]:
    line = dict(given)
    quantity = Decimal(str(line.pop("quantity", 1)))
    amount = _cents(line.pop("amount")) if "amount" in line else line.pop("amount_cents")
    unit = line.pop("unit_price", None)
    unit_cents = _cents(unit) if unit is not None else int(amount / max(quantity, Decimal(1)))
    return {
        "line_id": f"L{n}",
        "sku": "SKU",
        "quantity": str(quantity),
        "unit_price_cents": unit_cents,
        "amount_cents": amount,
        **line,
    }


class _Steps:
    """Turns compact steps into events with ids and times from their position."""

    def __init__(self, program: dict[str, Any]):
        self.program = program
        self.at = START - timedelta(hours=1)
        self.n = 0

    def event(self, kind: str, given: dict[str, Any]) -> dict[str, Any]:
        self.n += 1
        given = dict(given)
        at = given.pop("at", None)
        self.at = _parse_time(at) if at is not None else self.at + timedelta(hours=1)
        member = given.pop("member", None) if kind != "event" else given.get("member_id")
        common = {"event_id": f"step-{self.n}", "occurred_at": self.at.isoformat()}
        market, currency = self.program["market"], self.program["currency"]
        store = _merged(STORE_DEFAULTS, given.pop("store", {})) if kind != "event" else {}
        match kind:
            case "enrol":
                body = {"type": "MemberEnrolled", "member_id": member, "market": market,
                        "program_ids": [self.program["program_id"]], "source": "APP",
                        "profile": given.pop("profile", {})}  # fmt: skip
            case "profile":
                body = {"type": "MemberProfileUpdated", "member_id": member, "source": "APP",
                        "profile": given.pop("profile", {})}  # fmt: skip
            case "buy":
                lines = [_line(line, i + 1) for i, line in enumerate(given.pop("lines"))]
                body = {"type": "TransactionCompleted", "transaction_id": f"T{self.n}",
                        "member_id": member, "market": market, "currency": currency,
                        "source": "INSTORE", "store": store, "lines": lines,
                        "redemption_tokens": [
                            *given.pop("tokens", []),
                            *(_instance(member, c) for c in given.pop("instances", [])),
                        ],
                        "promo_codes": given.pop("codes", [])}  # fmt: skip
                if "transaction" in given:
                    body["transaction_id"] = given.pop("transaction")
            case "return":
                lines = [
                    {"line_id": line["line_id"], "quantity": str(line.get("quantity", 1)),
                     "amount_cents": _cents(line["amount"])}
                    for line in given.pop("lines")
                ]  # fmt: skip
                body = {"type": "TransactionReturned", "return_id": f"R{self.n}",
                        "member_id": member, "market": market, "currency": currency,
                        "source": "INSTORE", "store": store, "lines": lines}  # fmt: skip
            case "activity":
                body = {"type": "ActivityRecorded", "member_id": member, "source": "APP"}
            case "redeem":
                points = int(given.pop("points"))
                body = {"type": "PointsRedemptionRequested", "command_id": f"C{self.n}",
                        "member_id": member, "source": "APP", "allocations": [
                            {"program_id": given.pop("program", self.program["program_id"]),
                             "points": points}]}  # fmt: skip
                if "lines" in given:  # the basket lines the points pay for
                    body["lines"] = [
                        _line(line, i + 1) for i, line in enumerate(given.pop("lines"))
                    ]
            case "store_buy":
                body = {"type": "RewardStoreOfferPurchaseRequested",
                        "command_id": given.pop("command", f"C{self.n}"), "member_id": member,
                        "reward_store_id": given.pop("reward_store"),
                        "offer_id": given.pop("offer"), "source": "APP"}  # fmt: skip
            case "lock" | "unlock" | "use_now":
                body = {"type": {"lock": "IssuedOfferLockRequested",
                                 "unlock": "IssuedOfferUnlockRequested",
                                 "use_now": "IssuedOfferRedeemRequested"}[kind],
                        "command_id": given.pop("command", f"C{self.n}"), "member_id": member,
                        "issued_offer_id": _instance(member, given.pop("instance")),
                        "transaction_id": given.pop("transaction", None),
                        "source": "INSTORE"}  # fmt: skip
            case "reward":
                body = {"type": "RewardRedemptionRequested",
                        "command_id": given.pop("command", f"C{self.n}"), "member_id": member,
                        "reward_id": given.pop("reward"), "program_id": self.program["program_id"],
                        "quantity": given.pop("quantity", 1), "source": "APP"}  # fmt: skip
            case "load":
                body = {"type": "OfferLoadRequested", "command_id": f"C{self.n}",
                        "member_id": member, "offer_id": given.pop("offer"),
                        "source": "APP"}  # fmt: skip
            case "prefs":
                by = given.pop("by", member)
                staff = by != member
                body = {"type": "PreferencesChangeRequested",
                        "command_id": given.pop("command", f"C{self.n}"), "member_id": member,
                        "choices": [{"channel": c, "opted_in": o}
                                    for c, o in given.pop("channels").items()],
                        "changed_by": "STAFF" if staff else "MEMBER", "changed_by_id": by,
                        "source": "BACK_OFFICE" if staff else "APP"}  # fmt: skip
            case "day":
                body = {"type": "DayStarted", "market": market, "started_at": self.at.isoformat(),
                        "business_date": self.at.date().isoformat()}  # fmt: skip
            case "event":
                body = {}
            case _:
                raise ScenarioError(f"unknown step {kind!r}")
        return {**common, **body, **given}


def _instance(member: Any, command: Any) -> str:
    """The reward-store instance `member`'s `store_buy` step of that command issued."""
    if not isinstance(member, str) or not isinstance(command, str):
        raise ScenarioError("a store instance names its member and its store_buy's command")
    return issued_offer_id(member, command)


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def load(path: Path) -> Scenario:
    """Read a scenario file; ScenarioError names the step that is wrong."""
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or "when" not in data or "then" not in data:
        raise ScenarioError(f"{path}: a scenario has `given`, `when` and `then`")
    given = data.get("given") or {}
    programs = [_merged(PROGRAM_DEFAULTS, p) for p in given.get("programs") or [{}]]
    config: list[Event] = []
    for n, program in enumerate(programs):
        body = {"type": "ProgramConfigured", "event_id": f"program-{n}",
                "occurred_at": (START - timedelta(days=60)).isoformat(), **program}  # fmt: skip
        config.append(_event(path, "given.programs", n, body))
    for n, (audience_id, members) in enumerate((given.get("audiences") or {}).items()):
        common = {"event_id": f"audience-{audience_id}", "audience_id": audience_id,
                  "occurred_at": (START - timedelta(days=45)).isoformat()}  # fmt: skip
        if isinstance(members, dict):  # a saved query: {criteria: [...]}
            body = {"type": "AudienceDefined", **common, **members}
        else:
            body = {"type": "AudienceUploaded", **common, "upload_id": f"upload-{audience_id}",
                    "part_number": 1, "part_count": 1, "member_ids": list(members),
                    "source_file_name": f"{audience_id}.csv"}  # fmt: skip
        config.append(_event(path, "given.audiences", n, body))
    offers = [_offer(offer, programs[0], n) for n, offer in enumerate(given.get("offers") or [])]
    if offers:
        loaded = offer_files.offers_from_data(
            offers, file=str(path), base_dir=path.parent, published_at=START - timedelta(days=30)
        )
        if not loaded.is_valid:
            raise ScenarioError("; ".join(str(problem) for problem in loaded.errors))
        config += loaded.events
    config += _rewards(path, given.get("rewards") or [], programs[0])
    config += _reward_stores(path, given.get("reward_stores") or [], programs[0])
    config += _promotions(path, given.get("promotions") or [], programs[0])
    config += _challenges(path, given.get("challenges") or [], programs[0])
    steps = _Steps(programs[0])
    events = []
    for n, step in enumerate(data["when"]):
        if not isinstance(step, dict) or len(step) != 1:
            raise ScenarioError(f"{path}: when[{n}] must be one `kind: {{...}}` step")
        ((kind, body),) = step.items()
        events.append(_event(path, "when", n, steps.event(kind, body or {})))
    return Scenario(data.get("name", path.stem), path, config, events, data["then"])


def _rewards(path: Path, rewards: list[dict[str, Any]], program: dict[str, Any]) -> list[Event]:
    """Each reward's publication, then its code stock (if it lists `codes`)."""
    events: list[Event] = []
    published = (START - timedelta(days=30)).isoformat()
    for n, given in enumerate(rewards):
        given = dict(given)
        codes = given.pop("codes", [])
        body = {"type": "RewardPublished", "event_id": f"reward-{n}", "occurred_at": published,
                "program_id": program["program_id"], "market": program["market"],
                "available_from": published, **_merged(REWARD_DEFAULTS, given)}  # fmt: skip
        events.append(_event(path, "given.rewards", n, body))
        if codes:
            stock = {"type": "RewardCodesAdded", "event_id": f"reward-{n}-codes",
                     "occurred_at": published, "reward_id": body["reward_id"],
                     "codes": list(codes)}  # fmt: skip
            events.append(_event(path, "given.rewards", n, stock))
    return events


def _reward_stores(
    path: Path, stores: list[dict[str, Any]], program: dict[str, Any]
) -> list[Event]:
    """Each reward store's configuration, open from a month before the scenario starts."""
    configured = (START - timedelta(days=30)).isoformat()
    return [
        _event(path, "given.reward_stores", n, {
            "type": "RewardStoreConfigured", "event_id": f"reward-store-{n}",
            "occurred_at": configured, "program_id": program["program_id"],
            "market": program["market"], "available_from": configured,
            **_merged(REWARD_STORE_DEFAULTS, given),
        })
        for n, given in enumerate(stores)
    ]  # fmt: skip


def _promotions(
    path: Path, promotions: list[dict[str, Any]], program: dict[str, Any]
) -> list[Event]:
    """Each promotion's codes, issued before the scenario starts."""
    issued = (START - timedelta(days=30)).isoformat()
    events: list[Event] = []
    for n, given in enumerate(promotions):
        # A promotion that names an offer gives no cart discount of its own (ADR 37).
        defaults = {k: v for k, v in PROMOTION_DEFAULTS.items()
                    if k != "discount" or "offer_id" not in given}  # fmt: skip
        body = {"type": "PromotionCodesIssued", "event_id": f"promotion-{n}",
                "occurred_at": issued, "market": program["market"],
                "starts_at": (START - timedelta(hours=2)).isoformat(),
                "ends_at": (START + timedelta(days=30)).isoformat(),
                **_merged(defaults, given)}  # fmt: skip
        events.append(_event(path, "given.promotions", n, body))
    return events


def _challenges(
    path: Path, challenges: list[dict[str, Any]], program: dict[str, Any]
) -> list[Event]:
    """Each challenge's publication, before the scenario starts."""
    events: list[Event] = []
    for n, given in enumerate(challenges):
        challenge_id = given.get("challenge_id", f"CHALLENGE_{n}")
        text = {"headline": challenge_id.replace("_", " "), "short_description": challenge_id}
        body = {"type": "ChallengePublished", "event_id": f"challenge-{challenge_id}",
                "occurred_at": (START - timedelta(days=30)).isoformat(),
                "challenge_id": challenge_id, "program_id": program["program_id"],
                "market": program["market"],
                "localized_copy": [{"locale": "en", **text}, {"locale": "fr", **text}],
                "starts_at": (START - timedelta(days=1)).isoformat(), "ends_at": None,
                **given}  # fmt: skip
        events.append(_event(path, "given.challenges", n, body))
    return events


def _event(path: Path, where: str, n: int, body: dict[str, Any]) -> Event:
    try:
        return from_json_object(body)
    except ValueError as error:
        raise ScenarioError(f"{path}: {where}[{n}]: {error}") from None


def check(scenario: Scenario, outputs: list[Event]) -> list[str]:
    """What the outputs got wrong against the scenario's `then`; empty when all holds."""
    expect = scenario.expect
    completed = [e for e in outputs if isinstance(e, OfferCompleted)]
    ledger = [e for e in outputs if isinstance(e, LedgerEventRecorded)]
    problems: list[str] = []

    def compare(what: str, got: Any, wanted: Any) -> None:
        # Members are independent (one partition each): only each member's own order counts.
        if _per_member(got) != _per_member(wanted):
            problems.append(f"{what}: expected {wanted!r}, got {got!r}")

    if "awards" in expect:
        awarded = [e for e in completed if e.points_awarded]
        compare("awards", _described(awarded, expect["awards"]), expect["awards"])
    if "discounts" in expect:
        got = [{"member": e.member_id, "offer": e.offer_id, "cents": e.discount_cents}
               for e in completed if e.discount_cents]  # fmt: skip
        compare("discounts", got, expect["discounts"])
    if "completions" in expect:
        compare("completions", len(completed), expect["completions"])
    if "ledger" in expect:
        got = [{"member": e.member_id, "type": e.event_type.value, "points": e.points_on_event}
               for e in ledger]  # fmt: skip
        compare("ledger", got, expect["ledger"])
    if "targeted" in expect:
        targeted = [e for e in outputs if isinstance(e, OfferTargeted)]
        got = [{"member": e.member_id, "offer": e.offer_id, "control": e.in_control_group}
               for e in targeted]  # fmt: skip
        compare("targeted", got, expect["targeted"])
    if "loaded" in expect:
        got = [{"member": e.member_id, "offer": e.offer_id}
               for e in outputs if isinstance(e, OfferLoaded)]  # fmt: skip
        compare("loaded", got, expect["loaded"])
    if "rejections" in expect:
        got = [{"member": e.member_id, "reason": e.reason.value}
               for e in outputs if isinstance(e, RequestRejected)]  # fmt: skip
        compare("rejections", got, expect["rejections"])
    if "balances" in expect:
        compare("balances", balances(ledger), expect["balances"])
    if "grants" in expect:
        got = [{"member": e.member_id, "reward": e.reward_id, "code": e.code}
               for e in outputs if isinstance(e, RewardGranted)]  # fmt: skip
        compare("grants", got, expect["grants"])
    if "used" in expect:
        got = [{"member": e.member_id, "reward": e.reward_id, "code": e.code,
                "cents": e.discount_cents}
               for e in outputs if isinstance(e, RewardRedeemed)]  # fmt: skip
        if not any("cents" in item for item in expect["used"]):
            got = [{k: v for k, v in item.items() if k != "cents"} for item in got]
        compare("used", got, expect["used"])
    if "code_uses" in expect:
        got = [{"member": e.member_id, "code": e.code, "cents": e.discount_cents}
               for e in outputs if isinstance(e, PromoCodeRedeemed)]  # fmt: skip
        compare("code_uses", got, expect["code_uses"])
    if "code_refusals" in expect:
        got = [{"member": e.member_id, "code": e.code, "reason": e.reason.value}
               for e in outputs if isinstance(e, PromoCodeRefused)]  # fmt: skip
        compare("code_refusals", got, expect["code_refusals"])
    if "challenges" in expect:
        got = [{"member": e.member_id, "challenge": e.challenge_id,
                "completion": e.completion_number, "points": e.points_awarded}
               for e in outputs if isinstance(e, ChallengeCompleted)]  # fmt: skip
        compare("challenges", got, expect["challenges"])
    if "challenge_progress" in expect:
        got = [{"member": e.member_id, "challenge": e.challenge_id,
                "progress": f"{e.progress.normalize():f}"}
               for e in outputs if isinstance(e, ChallengeProgressed)]  # fmt: skip
        compare("challenge_progress", got, expect["challenge_progress"])
    if "taken_back" in expect:
        got = [{"member": e.member_id, "challenge": e.challenge_id, "points": e.points_taken_back}
               for e in outputs if isinstance(e, ChallengeAwardTakenBack)]  # fmt: skip
        compare("taken_back", got, expect["taken_back"])
    if "preferences" in expect:
        got = [{"member": e.member_id, "channel": c.channel.value, "was": c.was_opted_in,
                "now": c.opted_in, "by": e.changed_by_id}
               for e in outputs if isinstance(e, PreferencesChanged)
               for c in e.changes]  # fmt: skip
        compare("preferences", got, expect["preferences"])
    if "messages" in expect:
        got = [{"member": e.member_id, "title": e.title}
               for e in outputs if isinstance(e, MessagePosted) and e.member_id]  # fmt: skip
        compare("messages", got, expect["messages"])
    if "expired" in expect:
        got = [{"member": e.member_id, "reward": e.reward_id}
               for e in outputs if isinstance(e, RewardExpired)]  # fmt: skip
        compare("expired", got, expect["expired"])
    return problems


def _per_member(value: Any) -> Any:
    if not isinstance(value, list) or not all(isinstance(i, dict) for i in value):
        return value
    grouped: dict[Any, list[Any]] = {}
    for item in value:
        grouped.setdefault(item.get("member"), []).append(item)
    return grouped


_AWARD_FIELDS = {
    "member": "member_id",
    "offer": "offer_id",
    "points": "points_awarded",
    "due": "points_due",
    "multiples": "multiples",
    "tier": "tier",
    "use": "use_number",
    "cents": "discount_cents",
    "control": "in_control_group",
}


def _described(events: list[OfferCompleted], wanted: Any) -> list[dict[str, Any]]:
    """Each event as the keys the expectation names (member, offer, points by default; a
    scenario may also name due, multiples, tier, use, cents, control)."""
    keys = set().union(*(item.keys() for item in wanted if isinstance(item, dict)))
    keys = (keys & set(_AWARD_FIELDS)) or {"member", "offer", "points"}
    return [{k: getattr(e, _AWARD_FIELDS[k]) for k in _AWARD_FIELDS if k in keys} for e in events]


def balances(ledger: list[LedgerEventRecorded]) -> dict[str, int]:
    """Each member's REGULAR balance (all programmes) after their last ledger event."""
    regular: dict[str, dict[str, int]] = {}
    for event in ledger:
        accounts = regular.setdefault(event.member_id, {})
        for account in event.balances_after:
            if account.category.value == "REGULAR":
                accounts[account.program_id] = account.balance
    return {member: sum(accounts.values()) for member, accounts in regular.items()}
