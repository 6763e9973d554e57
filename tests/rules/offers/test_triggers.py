"""Triggered offers (seed 003 "Triggered scheduling"; ADR 13): one-time and multi-fire
triggers, a per-member cap, valid days, one use per fire."""

from datetime import timedelta

from processors.contract.activities import ActivityKind
from processors.contract.common import Source
from processors.contract.enrolments import MemberProfile, MemberProfileUpdated
from processors.contract.offer_definition import (
    TargetingAttribute,
    TargetingCriterion,
    TargetingKind,
)
from processors.contract.offer_definition import TargetingTiming as Timing
from processors.rules.offers.targeting import REGISTRATION_TRIGGER, TIER_TRIGGER
from tests.rules.given import T0
from tests.rules.offers.given_offers import STARTS
from tests.rules.offers.given_targeting import Engine, targeting

H = timedelta(hours=1)


def triggered(kind: ActivityKind, fires: int = 1, custom: str | None = None,
              days: int | None = None, **fields: object):  # type: ignore[no-untyped-def]  # fmt: skip
    return targeting(
        fields.pop("target_kind", TargetingKind.MASS), Timing.TRIGGERED,  # type: ignore[arg-type]
        trigger_activity_kind=kind, trigger_activity_custom_name=custom,
        trigger_fires_per_member_max=fires, trigger_valid_days=days, **fields,
    )  # fmt: skip


def test_a_one_time_trigger_targets_once_for_one_use():
    for kind in (ActivityKind.FIRST_LOGIN, ActivityKind.PARTNER_CARD_LINKED,
                 ActivityKind.PROFILE_COMPLETED):  # fmt: skip
        engine = Engine()
        engine.publish(targeting=triggered(kind))
        engine.enrol("m1")
        engine.buy("m1", "T0", at=T0 - 3 * H)  # before the trigger: not targeted
        engine.act("m1", kind, at=T0 - 2 * H)
        engine.act("m1", kind, at=T0 - H, n="2")  # fires once only
        engine.buy("m1", "T1")
        engine.buy("m1", "T2", at=T0 + H)  # the fire was good for one use
        assert engine.targeted() == [("m1", "OFFER_T", False)], kind
        assert engine.points("m1") == 100, kind


def test_registration_and_tier_achieved_are_fired_by_the_engine():
    engine = Engine()
    engine.publish("WELCOME", targeting=triggered(ActivityKind.CUSTOM, custom=REGISTRATION_TRIGGER))
    gold = TargetingCriterion(attribute=TargetingAttribute.TIER, values=["GOLD"])
    engine.publish("GOLD", targeting=triggered(
        ActivityKind.CUSTOM, custom=TIER_TRIGGER, target_kind=TargetingKind.CRITERIA,
        criteria=[gold]))  # fmt: skip
    engine.enrol("m1", at=STARTS + H)
    for n, tier in enumerate(("SILVER", "GOLD")):
        engine.feed(MemberProfileUpdated(
            event_id=f"p{n}", occurred_at=STARTS + (2 + n) * H, member_id="m1",
            source=Source.APP, profile=MemberProfile(attributes={"tier": tier})))  # fmt: skip
    assert engine.targeted() == [("m1", "WELCOME", False), ("m1", "GOLD", False)]


def test_a_client_defined_activity_triggers_by_its_name():
    engine = Engine()
    engine.publish(targeting=triggered(ActivityKind.CUSTOM, custom="SURVEY_DONE"))
    engine.enrol("m1")
    engine.act("m1", ActivityKind.CUSTOM, custom="OTHER", at=T0 - H)
    assert engine.targeted() == []
    engine.act("m1", ActivityKind.CUSTOM, custom="SURVEY_DONE", at=T0 - H, n="2")
    assert engine.targeted() == [("m1", "OFFER_T", False)]


def test_multi_fire_is_capped_per_member_and_each_fire_is_one_use():
    engine = Engine()
    engine.publish(targeting=triggered(ActivityKind.PARTNER_CARD_LINKED, fires=2))
    engine.enrol("m1")
    for n in range(3):
        engine.act("m1", ActivityKind.PARTNER_CARD_LINKED, at=T0 + 2 * n * H, n=str(n))
        engine.buy("m1", f"T{n}a", at=T0 + (2 * n + 1) * H)
        engine.buy("m1", f"T{n}b", at=T0 + (2 * n + 1) * H + timedelta(minutes=5))
    assert len(engine.targeted()) == 2
    assert engine.points("m1") == 200


def test_a_fire_is_valid_for_its_days():
    engine = Engine()
    engine.publish(targeting=triggered(ActivityKind.FIRST_LOGIN, days=7))
    engine.enrol("m1")
    engine.act("m1", ActivityKind.FIRST_LOGIN, at=T0)
    engine.buy("m1", "T1", at=T0 + timedelta(days=7))  # [fire, fire + 7 days): too late
    assert engine.points("m1") == 0
    fresh = Engine()
    fresh.publish(targeting=triggered(ActivityKind.FIRST_LOGIN, days=7))
    fresh.enrol("m1")
    fresh.act("m1", ActivityKind.FIRST_LOGIN, at=T0)
    fresh.buy("m1", "T1", at=T0 + timedelta(days=7) - H)
    assert fresh.points("m1") == 100


def test_a_redelivered_trigger_fires_once():
    engine = Engine()
    engine.publish(targeting=triggered(ActivityKind.FIRST_LOGIN, fires=5))
    engine.enrol("m1")
    engine.act("m1", ActivityKind.FIRST_LOGIN, at=T0)
    engine.act("m1", ActivityKind.FIRST_LOGIN, at=T0)
    assert len(engine.targeted()) == 1
