"""Activation (seed 003 "Offer activation"; ADR 13): automatic, coupon code, load to card
through OfferLoadRequested → OfferLoaded and an outcome with a stable reason."""

from datetime import timedelta

from processors.contract.offer_definition import ActivationKind, OfferActivation, TargetingKind
from processors.contract.offer_definition import TargetingTiming as Timing
from processors.contract.offers import OfferLoaded
from processors.contract.outcomes import RequestAccepted, RequestRejected
from tests.rules.given import T0
from tests.rules.offers.given_offers import coupon
from tests.rules.offers.given_targeting import Engine, audience, targeting

LOAD = OfferActivation(kind=ActivationKind.LOAD_TO_CARD)


def kinds(events: list) -> list[str]:  # type: ignore[type-arg]
    return [type(e).__name__ for e in events]


def test_automatic_needs_nothing_but_the_behaviour():
    engine = Engine()
    engine.publish()
    engine.enrol("m1")
    engine.buy("m1", "T1")
    assert engine.points("m1") == 100


def test_a_coupon_offer_needs_its_code_in_the_cart():
    engine = Engine()
    engine.publish(activation=coupon("SAVE10"))
    engine.enrol("m1")
    engine.buy("m1", "T1")
    engine.buy("m1", "T2", codes=["save10"], at=T0 + timedelta(hours=1))
    assert engine.points("m1") == 100


def test_load_to_card_counts_only_after_the_member_loaded_it():
    engine = Engine()
    engine.publish(activation=LOAD)
    engine.enrol("m1")
    engine.buy("m1", "T1", at=T0 - timedelta(hours=2))
    out = engine.load("m1")
    assert kinds(out) == ["OfferLoaded", "RequestAccepted"]
    assert out[0].command_id == "C1"
    assert out[0].cause_event_id == "load-C1"
    engine.buy("m1", "T2")
    assert engine.points("m1") == 100


def test_a_member_not_targeted_cannot_load():
    engine = Engine()
    engine.feed(audience("VIP", "m2"))
    engine.publish(activation=LOAD, targeting=targeting(
        TargetingKind.AUDIENCE_LIST, Timing.STATIC, audience_id="VIP"))  # fmt: skip
    engine.enrol("m1")
    out = engine.load("m1")
    assert kinds(out) == ["RequestRejected"]
    assert out[0].reason.value == "not_eligible"


def test_load_refusals_have_stable_reasons():
    engine = Engine()
    engine.publish("AUTO")
    engine.publish("LATE", activation=LOAD, at=T0 - timedelta(days=5))
    engine.enrol("m1")
    reasons = [
        engine.load("m1", "NOPE", "C1")[0].reason.value,
        engine.load("m1", "AUTO", "C2")[0].reason.value,
        engine.load("stranger", "LATE", "C3")[0].reason.value,
        engine.load("m1", "LATE", "C4", at=T0 + timedelta(days=90))[0].reason.value,
    ]
    assert reasons == ["unknown_offer", "invalid_request", "unknown_member", "offer_not_live"]


def test_a_member_merged_away_is_told_so_with_the_survivor():
    # Found by a user's trial: told unknown_member ("not enrolled"), a client could not send
    # the member on to the survivor as every other member service does.
    from tests.rules.given import merged

    engine = Engine()
    engine.publish("LATE", activation=LOAD, at=T0 - timedelta(days=5))
    engine.enrol("m1")
    engine.enrol("m2")
    engine.feed(merged("m1", "m2", at=T0 - timedelta(days=1)))
    (refused,) = engine.load("m1", "LATE", "C9")
    assert isinstance(refused, RequestRejected)
    assert refused.reason.value == "member_merged"
    assert refused.detail == "member m1 was merged into m2: load it for them"


def test_a_repeated_command_re_emits_the_original_outcome_and_loads_once():
    engine = Engine()
    engine.publish(activation=LOAD)
    engine.enrol("m1")
    first = engine.load("m1")
    again = engine.load("m1")
    assert again == first[1:]
    assert isinstance(again[0], RequestAccepted)
    second_command = engine.load("m1", command="C2")
    assert kinds(second_command) == ["RequestAccepted"]  # already loaded: no second OfferLoaded
    assert sum(isinstance(e, OfferLoaded) for e in engine.outputs) == 1
    rejected = Engine()
    rejected.publish(activation=LOAD)
    once = rejected.load("nobody")
    assert rejected.load("nobody") == once
    assert isinstance(once[0], RequestRejected)
