"""Every scenario file through the real stack: the worker, not the simulator, on the real
broker. Its outputs must be the simulator's, event for event, and hold the scenario's
expectations (ADR 10).

All scenarios run at once in one worker: each gets its own namespace (its ids, programmes and
market prefixed), so their offers, members and days never meet. Every field of the contract
that names a member is renamed (found in the contract, not listed here), and an output that
names a member outside its scenario's namespace fails the test: a comparison must not pass
because two scenarios met. A generated promo code derives from its promotion's and issue's
ids, so the codes a scenario names are replaced by those of its namespaced issue (and back in
the outputs). Topics are not ordered with each other, so each scenario's steps
are published in waves (consecutive steps on one topic) and every wave waits for the outputs
the simulator says it causes.
"""

from __future__ import annotations

import asyncio
import re
import types
import typing
import uuid
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from loyalty import stack
from loyalty.audit import uncommitted
from loyalty.producing import publish_events
from loyalty.services import Services
from processors import scenarios
from processors.codec.json_form import from_json_object, to_json_object
from processors.contract.base import Event
from processors.contract.catalogue import all_events
from processors.contract.config import OfferPublished, PromotionCodesIssued
from processors.contract.ledger import LedgerEventRecorded
from processors.contract.notifications import MessagePosted, PreferencesChanged
from processors.contract.offers import (
    ChallengeAwardTakenBack,
    ChallengeCompleted,
    ChallengeProgressed,
    OfferCompleted,
    OfferLoaded,
    OfferProgressed,
    OfferTargeted,
    PromoCodeRedeemed,
    PromoCodeRefused,
    PromoCodeReserved,
)
from processors.contract.outcomes import RequestAccepted, RequestRejected
from processors.contract.redemptions import (
    IssuedOfferLockRequested,
    IssuedOfferRedeemRequested,
    IssuedOfferUnlockRequested,
    RewardStoreOfferPurchaseRequested,
)
from processors.contract.rewards import RewardExpired, RewardGranted, RewardRedeemed
from processors.contract.transactions import TransactionCompleted
from processors.rules.codes.generation import GeneratedCodes
from processors.rules.rewards.store import issued_offer_id
from processors.simulation import Simulation
from tests.integration.test_worker_ledger import Collector

pytestmark = pytest.mark.integration

SCENARIOS = sorted((Path(__file__).parents[1] / "scenarios").glob("*.yaml"))
NAMES_A_MEMBER = re.compile(r"(.+_)?member_ids?")
"""The contract's naming rule for a field that holds members' ids (STYLE.md: the qualifier
first, `_member_id` last): `member_id`, `recipient_member_id`, `member_ids`, ..."""


@cache
def member_fields() -> frozenset[str]:
    """Every field, in every event of the contract and the records nested in them, that names
    members."""
    found: set[str] = set()
    seen: set[type[BaseModel]] = set()

    def walk(model: type[BaseModel]) -> None:
        if model in seen:
            return
        seen.add(model)
        for name, field in model.model_fields.items():
            if NAMES_A_MEMBER.fullmatch(name):
                found.add(name)
            for nested in _models_in(field.annotation):
                walk(nested)

    for event in all_events():
        walk(event)
    return frozenset(found)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    return []


RENAMED = {"program_id", "offer_id", "market", "event_id", "transaction_id", "return_id",
           "command_id", "stacking_group", "audience_id", "upload_id", "reward_id",
           "promotion_id", "program_ids", "challenge_id", "award_reward_id",
           "birthday_reward_id", "enrolment_reward_id", "changed_by_id", "reward_store_id",
           *member_fields()}  # fmt: skip
OUTPUTS = (LedgerEventRecorded, OfferCompleted, OfferProgressed, OfferTargeted, OfferLoaded,
           RequestAccepted, RequestRejected, RewardGranted, RewardRedeemed,
           RewardExpired, PromoCodeRedeemed, PromoCodeRefused, PromoCodeReserved,
           ChallengeProgressed, ChallengeCompleted, ChallengeAwardTakenBack, PreferencesChanged,
           MessagePosted)  # fmt: skip
"""The outputs compared, and waited for before the next wave: a till's reservation settles (its
answer, and the member's hold of an offer's use sent before it) before the purchase after it."""


def _renamed(value: Any, ns: str) -> Any:
    if isinstance(value, dict):
        return {
            key: (
                [f"{ns}{v}" for v in item]
                if key in RENAMED and isinstance(item, list)
                else f"{ns}{item}"
                if key in RENAMED and isinstance(item, str)
                else _renamed(item, ns)
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_renamed(item, ns) for item in value]
    return value


def members_named(value: Any) -> list[str]:
    """Every member id an event's JSON form names, in any field that names members."""
    if isinstance(value, dict):
        named: list[str] = []
        for key, item in value.items():
            if key in member_fields() and isinstance(item, str):
                named.append(item)
            elif key in member_fields() and isinstance(item, list):
                named += [v for v in item if isinstance(v, str)]
            else:
                named += members_named(item)
        return named
    if isinstance(value, list):
        return [member for item in value for member in members_named(item)]
    return []


def strays(outputs: list[Event]) -> list[str]:
    """Outputs naming a member outside the namespace of the scenario the output belongs to
    (the namespace its record key starts with)."""
    found = []
    for event in outputs:
        ns = re.match(r"S\d+_", event.partition_key())
        outside = [m for m in members_named(to_json_object(event))
                   if ns is None or not m.startswith(ns.group())]  # fmt: skip
        if outside:
            found.append(f"{type(event).__name__} {event.event_id} names {outside}")
    return found


def namespaced(event: Event, ns: str) -> Event:
    """The event with every id, programme and market under `ns` (markets: `ns` + market)."""
    return from_json_object(_renamed(to_json_object(event), ns))


def generated_codes(config: list[Event], ns: str) -> dict[str, str]:
    """Each code a scenario's issue generates → the code of the same index its namespaced issue
    generates: a generated code derives from the promotion and issue ids, which `ns` renames."""
    out: dict[str, str] = {}
    for e in config:
        if isinstance(e, PromotionCodesIssued) and e.code_pattern and e.code_count:
            plain = GeneratedCodes(e.promotion_id, e.event_id, e.code_pattern, e.code_count)
            named = GeneratedCodes(f"{ns}{e.promotion_id}", f"{ns}{e.event_id}",
                                   e.code_pattern, e.code_count)  # fmt: skip
            out |= {plain.code(i): named.code(i) for i in range(e.code_count)}
    return out


def issued_instances(events: list[Event], ns: str) -> dict[str, str]:
    """Each reward-store instance a scenario's purchase issues → the one its namespaced purchase
    issues: an instance id derives from the member and command ids, which `ns` renames."""
    return {
        issued_offer_id(e.member_id, e.command_id): issued_offer_id(
            f"{ns}{e.member_id}", f"{ns}{e.command_id}"
        )
        for e in events
        if isinstance(e, RewardStoreOfferPurchaseRequested)
    }


def recoded(event: Event, codes: dict[str, str], instances: dict[str, str] | None = None) -> Event:
    """The event with each code of `codes` replaced (a purchase's, or an answer's), and each
    store instance of `instances` (a lock's, a use's, a purchase's tokens)."""
    instances = instances or {}
    if isinstance(
        event, IssuedOfferLockRequested | IssuedOfferRedeemRequested | IssuedOfferUnlockRequested
    ):
        named = instances.get(event.issued_offer_id, event.issued_offer_id)
        return event.model_copy(update={"issued_offer_id": named})
    if isinstance(event, TransactionCompleted):
        mapped = [codes.get(c.strip().upper(), c) for c in event.promo_codes]
        tokens = [instances.get(t, t) for t in event.redemption_tokens]
        return event.model_copy(update={"promo_codes": mapped, "redemption_tokens": tokens})
    if isinstance(event, PromoCodeRedeemed | PromoCodeRefused | PromoCodeReserved):
        return event.model_copy(update={"code": codes.get(event.code, event.code)})
    return event


def waves(events: list[Event]) -> list[list[Event]]:
    """Consecutive events on one topic; a wave is published only after the last settled."""
    out: list[list[Event]] = []
    for event in events:
        if out and out[-1][-1].topic == event.topic:
            out[-1].append(event)
        else:
            out.append([event])
    return out


def by_member(events: list[Event]) -> dict[tuple[str, str], list[str]]:
    """Each member's outputs per topic, in order (the order Kafka keeps: one key, one
    partition), as JSON."""
    out: dict[tuple[str, str], list[str]] = {}
    for event in events:
        out.setdefault((event.topic, event.partition_key()), []).append(event.model_dump_json())
    return out


def _holds_out(scenario: scenarios.Scenario) -> bool:
    return any(
        isinstance(e, OfferPublished) and e.targeting.control_share_percent > 0
        for e in scenario.config
    )


def _plain(event: Event, ns: str) -> Event:
    """The event with the member, offer and reward names the scenario file uses."""
    update: dict[str, Any] = {
        name: _unprefixed(getattr(event, name), ns)
        for name in member_fields()
        if name in type(event).model_fields
    }
    if isinstance(event, OfferCompleted | OfferTargeted | OfferLoaded):
        update["offer_id"] = event.offer_id.removeprefix(ns)
    if isinstance(event, RewardGranted | RewardRedeemed | RewardExpired):
        update["reward_id"] = event.reward_id.removeprefix(ns)
    if isinstance(event, ChallengeProgressed | ChallengeCompleted | ChallengeAwardTakenBack):
        update["challenge_id"] = event.challenge_id.removeprefix(ns)
    if isinstance(event, PreferencesChanged):
        update["changed_by_id"] = event.changed_by_id.removeprefix(ns)
    return event.model_copy(update=update)


def _unprefixed(value: Any, ns: str) -> Any:
    if isinstance(value, str):
        return value.removeprefix(ns)
    if isinstance(value, list):
        return [v.removeprefix(ns) for v in value]
    return value


def test_every_field_of_the_contract_that_names_a_member_is_renamed():
    named = {"member_id", "recipient_member_id", "member_ids", "sender_member_id",
             "victim_member_id", "survivor_member_id", "referrer_member_id"}  # fmt: skip
    assert named <= member_fields()
    assert "uses_per_member_max" not in member_fields()
    transfer = from_json_object({
        "type": "PointsTransferRequested", "event_id": "e1", "occurred_at": "2026-03-02T10:00:00Z",
        "command_id": "c1", "member_id": "M1", "recipient_member_id": "M2",
        "program_id": "MAIN", "points": 20, "source": "APP",
    })  # fmt: skip
    renamed = namespaced(transfer, "S3_")
    assert members_named(to_json_object(renamed)) == ["S3_M1", "S3_M2"]
    assert strays([renamed]) == []


def test_an_output_naming_a_member_outside_its_scenario_is_found():
    transfer = from_json_object({
        "type": "PointsTransferRequested", "event_id": "e1", "occurred_at": "2026-03-02T10:00:00Z",
        "command_id": "c1", "member_id": "S3_M1", "recipient_member_id": "M2",
        "program_id": "S3_MAIN", "points": 20, "source": "APP",
    })  # fmt: skip
    assert strays([transfer]) == ["PointsTransferRequested e1 names ['M2']"]


@pytest.fixture
def isolated(stack_settings):  # type: ignore[no-untyped-def]
    settings = stack_settings.model_copy(update={"topic_prefix": f"s{uuid.uuid4().hex[:8]}."})
    stack.up(settings)
    return settings


async def test_every_scenario_gives_the_simulators_events_on_the_real_stack(isolated, tmp_path):
    runs = []
    for n, path in enumerate(SCENARIOS):
        scenario = scenarios.load(path)
        ns = f"S{n}_"
        codes = generated_codes(scenario.config, ns)
        instances = issued_instances(scenario.events, ns)
        runs.append(
            (
                scenario,
                [namespaced(e, ns) for e in scenario.config],
                [recoded(namespaced(e, ns), codes, instances) for e in scenario.events],
            )
        )
    await publish_events(isolated, [event for _, config, _ in runs for event in config])

    collectors = [
        Collector(isolated.bootstrap_servers, isolated.topic(topic), isolated.partitions,
                  lambda e: isinstance(e, OUTPUTS))
        for topic in ("loyalty.ledger.v1", "loyalty.offers.v1", "loyalty.outcomes.v1",
                      "loyalty.rewards.v1", "loyalty.notifications.v1")
    ]  # fmt: skip
    for collector in collectors:
        await collector.start()
    simulations = []
    for _, config, _ in runs:
        simulation = Simulation()
        simulation.run(config)
        simulations.append(simulation)
    expected: list[Event] = []
    services = Services(isolated, tmp_path)
    worker = services.start("worker", "worker")
    try:
        # The configuration settles first (reward codes reach their reward's agent through the
        # config fan-out), as the simulator applied it before any step.
        for _ in range(240):
            if await uncommitted(isolated) == 0:
                break
            await asyncio.sleep(0.5)
        planned = [waves(events) for _, _, events in runs]
        for k in range(max(len(p) for p in planned)):
            wave = [event for p in planned if k < len(p) for event in p[k]]
            for simulation, p in zip(simulations, planned, strict=True):
                for event in p[k] if k < len(p) else []:
                    expected += [o for o in simulation.feed(event) if isinstance(o, OUTPUTS)]
            await publish_events(isolated, wave)
            want = {e.event_id for e in expected}
            for collector in collectors:
                await collector.poll(0.1)
            got = lambda: {e.event_id for c in collectors for e in c.events}  # noqa: E731
            for _ in range(240):
                if got() >= want:
                    break
                for collector in collectors:
                    await collector.poll(0.25)
            assert got() >= want, f"wave {k}: {len(want - got())} missing\n{worker.log_tail()}"
    finally:
        services.stop()
        for collector in collectors:
            await collector.stop()

    outputs = [e for c in collectors for e in c.events]
    assert strays(outputs) == []
    assert by_member(outputs) == by_member(expected)
    for (scenario, _, _), n in zip(runs, range(len(runs)), strict=True):
        ns = f"S{n}_"
        mine = [e for e in outputs if e.partition_key().startswith(ns)]  # anonymous: by tx
        back = {named: code for code, named in generated_codes(scenario.config, ns).items()}
        plain = [recoded(_plain(e, ns), back) for e in mine]
        if _holds_out(scenario):
            # Hold-outs hash the (renamed) member and offer ids: the groups differ from the
            # file's, so only the equality with the simulator above speaks for this one.
            continue
        assert scenarios.check(scenario, plain) == [], scenario.path.name
