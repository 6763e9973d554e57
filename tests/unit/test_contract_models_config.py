"""The configuration topic's events refuse definitions no back office may publish (DESIGN.md
§5.10, §6; seed 003).

Each test starts from the event's published example in `schemas/examples/`, changes one thing,
and checks the model's verdict, so the examples are executed too.
"""

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from processors.contract import config
from processors.contract.base import Event
from processors.contract.config import (
    AudienceUploaded,
    ChallengePublished,
    OfferEndDateExtended,
    OfferPublished,
    OfferWithdrawn,
    ProgramConfigured,
    PromotionCodesIssued,
    RewardCodesAdded,
    RewardPublished,
    RewardStoreConfigured,
)
from processors.contract.offer_definition import (
    COPY_LIMITS,
    EVERGREEN_ENDS_AT,
    Behaviour,
    BehaviourKind,
    OfferTargeting,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples"
CONFIG_EVENTS = [
    value
    for value in vars(config).values()
    if isinstance(value, type) and issubclass(value, Event) and value.__module__ == config.__name__
]


def example(event: type[Event]) -> dict:
    """The event's published example in its JSON form, without the `type` tag."""
    body = json.loads((EXAMPLES / f"{event.__name__}.json").read_text())
    assert body.pop("type") == event.__name__
    return body


def an_offer(**changes) -> dict:
    """The published example offer ("100 pts for every $10 on coffee"), fields replaced."""
    return {**example(OfferPublished), **changes}


def with_copy(locale: str, **fields) -> list[dict]:
    """The example offer's copy, with `fields` replaced in the copy of `locale`."""
    copies = copy.deepcopy(example(OfferPublished)["localized_copy"])
    for item in copies:
        if item["locale"] == locale:
            item.update(fields)
    return copies


def a_behaviour(**fields) -> dict:
    """A behaviour of the example offer's fields, with `fields` replaced."""
    return {**example(OfferPublished)["behaviours"][0], **fields}


# --- every event --------------------------------------------------------------------------


def test_the_configuration_topic_has_exactly_the_events_the_design_names():
    assert {event.__name__ for event in CONFIG_EVENTS} == {
        "ProgramConfigured",
        "OfferPublished",
        "OfferEndDateExtended",
        "OfferWithdrawn",
        "OfferClosed",  # produced by the engine when an offer is spent (ADR 29)
        "AudienceDefined",  # a saved query audience (ADR 29)
        "RewardPublished",
        "RewardCodesAdded",
        "RewardStoreConfigured",  # a reward store (ADR 33)
        "PromotionCodesIssued",
        "ChallengePublished",
        "AudienceUploaded",
    }
    assert {event.topic for event in CONFIG_EVENTS} == {"loyalty.config.v1"}


@pytest.mark.parametrize("event", CONFIG_EVENTS, ids=lambda event: event.__name__)
def test_every_example_validates_and_dumps_back_to_itself(event):
    given = example(event)
    model = event.model_validate(given)
    assert model.model_dump(mode="json") == given


@pytest.mark.parametrize(
    ("event", "key_field"),
    [
        (ProgramConfigured, "program_id"),
        (OfferPublished, "offer_id"),
        (RewardPublished, "reward_id"),
        (RewardStoreConfigured, "reward_store_id"),
        (ChallengePublished, "challenge_id"),
    ],
)
def test_a_definition_is_keyed_by_its_entity_so_republishing_replaces_it(event, key_field):
    model = event.model_validate(example(event))
    assert model.partition_key() == getattr(model, key_field)


@pytest.mark.parametrize(
    "event",
    [
        OfferEndDateExtended,
        OfferWithdrawn,
        RewardCodesAdded,
        PromotionCodesIssued,
        AudienceUploaded,
    ],
)
def test_an_addition_is_keyed_by_its_event_id_so_compaction_keeps_the_definition(event):
    model = event.model_validate(example(event))
    assert model.partition_key() == model.event_id


# --- offer id -----------------------------------------------------------------------------


@pytest.mark.parametrize("offer_id", ["abc", "COFFEE_100", "a" * 128, "2026_Q4_fuel"])
def test_an_offer_id_of_3_to_128_ascii_letters_digits_or_underscores_is_accepted(offer_id):
    assert OfferPublished.model_validate(an_offer(offer_id=offer_id)).offer_id == offer_id


@pytest.mark.parametrize(
    "offer_id",
    [
        "ab",  # too short
        "a" * 129,  # too long
        "COFFEE_100\n",  # a trailing newline must not slip through a `$` anchor
        "CAFÉ_100",  # non-ASCII letter
        "COFFEE_١٠٠",  # non-ASCII digits
        "COFFEE-100",  # dash
        "COFFEE 100",  # space
    ],
)
def test_an_offer_id_outside_the_pattern_is_rejected(offer_id):
    with pytest.raises(ValidationError, match="offer_id"):
        OfferPublished.model_validate(an_offer(offer_id=offer_id))


# --- copy ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "limit"), COPY_LIMITS.items())
@pytest.mark.parametrize("locale", ["en", "fr"])
def test_copy_over_its_limit_is_rejected_naming_field_limit_and_locale(field, limit, locale):
    too_long = (
        "https://images.example.com/" + "a" * limit if field == "image_url" else "é" * (limit + 1)
    )
    given = an_offer(localized_copy=with_copy(locale, **{field: too_long}))

    with pytest.raises(ValidationError) as rejected:
        OfferPublished.model_validate(given)

    message = str(rejected.value)
    assert f"{field} ({locale})" in message
    assert f"the limit is {limit}" in message


@pytest.mark.parametrize(("field", "limit"), COPY_LIMITS.items())
def test_copy_exactly_at_its_limit_is_accepted(field, limit):
    at_limit = (
        "https://images.example.com/" + "a" * (limit - 27) if field == "image_url" else "é" * limit
    )
    offer = OfferPublished.model_validate(
        an_offer(localized_copy=with_copy("fr", **{field: at_limit}))
    )
    assert len(getattr(offer.localized_copy[1], field)) == limit


@pytest.mark.parametrize(
    "text",
    [
        "<b>100 points</b> on coffee",
        "100 points<br/>on coffee",
        '<a href="https://example.com">Load it</a>',
        "100 points <!-- draft --> on coffee",
        "Coffee &amp; tea",
        "Caf&#233; bonus",
    ],
)
def test_copy_with_html_is_rejected_because_copy_is_plain_text(text):
    given = an_offer(localized_copy=with_copy("en", short_description=text))
    with pytest.raises(ValidationError, match=r"short_description \(en\) must be plain text"):
        OfferPublished.model_validate(given)


@pytest.mark.parametrize("text", ["Spend < $10 more > get 100 pts", "Coffee & tea", "3 > 2"])
def test_copy_with_angle_brackets_or_ampersands_that_are_not_html_is_accepted(text):
    given = an_offer(localized_copy=with_copy("en", short_description=text))
    assert OfferPublished.model_validate(given).localized_copy[0].short_description == text


def test_a_headline_on_two_lines_is_rejected_while_long_copy_may_break_lines():
    two_lines = an_offer(localized_copy=with_copy("fr", headline="100 points\nsur le café"))
    with pytest.raises(ValidationError, match=r"headline \(fr\) must not contain control"):
        OfferPublished.model_validate(two_lines)

    paragraphs = an_offer(localized_copy=with_copy("fr", terms="Premier.\nSecond."))
    assert OfferPublished.model_validate(paragraphs)


def test_an_image_url_that_is_not_https_is_rejected():
    given = an_offer(localized_copy=with_copy("en", image_url="http://images.example.com/a.png"))
    with pytest.raises(ValidationError, match=r"image_url \(en\) must be an absolute https URL"):
        OfferPublished.model_validate(given)


def test_copy_missing_the_french_locale_is_rejected():
    english_only = [c for c in example(OfferPublished)["localized_copy"] if c["locale"] == "en"]
    with pytest.raises(ValidationError, match="must be given in en and fr; missing: fr"):
        OfferPublished.model_validate(an_offer(localized_copy=english_only))


def test_copy_giving_a_locale_twice_is_rejected():
    english_twice = [
        c for c in example(OfferPublished)["localized_copy"] if c["locale"] == "en"
    ] * 2
    with pytest.raises(ValidationError, match="gives locale en more than once"):
        OfferPublished.model_validate(an_offer(localized_copy=english_twice))


# --- rank and schedule --------------------------------------------------------------------


@pytest.mark.parametrize("rank", [1, 9])
def test_a_rank_from_1_to_9_is_accepted(rank):
    assert OfferPublished.model_validate(an_offer(rank=rank)).rank == rank


@pytest.mark.parametrize("rank", [0, 10, -1])
def test_a_rank_outside_1_to_9_is_rejected(rank):
    with pytest.raises(ValidationError, match="rank"):
        OfferPublished.model_validate(an_offer(rank=rank))


def test_a_display_date_after_the_start_is_rejected_naming_both_dates():
    given = an_offer(
        schedule={
            "starts_at": "2026-11-02T05:00:00Z",
            "ends_at": "2026-11-30T05:00:00Z",
            "display_at": "2026-11-03T05:00:00Z",
        }
    )
    with pytest.raises(ValidationError) as rejected:
        OfferPublished.model_validate(given)
    assert (
        "display_at (2026-11-03T05:00:00Z) must not be after starts_at (2026-11-02T05:00:00Z)"
        in str(rejected.value)
    )


def test_a_display_date_left_blank_defaults_to_the_start():
    given = an_offer(
        schedule={"starts_at": "2026-11-02T05:00:00Z", "ends_at": "2026-11-30T05:00:00Z"}
    )
    schedule = OfferPublished.model_validate(given).schedule
    assert schedule.display_at == schedule.starts_at == datetime(2026, 11, 2, 5, tzinfo=UTC)


def test_an_offer_without_an_end_is_evergreen_and_ends_in_the_year_3001():
    given = an_offer(schedule={"starts_at": "2026-11-02T05:00:00Z", "ends_at": None})
    schedule = OfferPublished.model_validate(given).schedule
    assert schedule.ends_at == EVERGREEN_ENDS_AT == datetime(3001, 1, 1, tzinfo=UTC)
    assert schedule.is_evergreen
    assert schedule.model_dump(mode="json")["ends_at"] == "3001-01-01T00:00:00Z"


def test_an_offer_ending_before_it_starts_is_rejected():
    given = an_offer(
        schedule={"starts_at": "2026-11-02T05:00:00Z", "ends_at": "2026-11-02T05:00:00Z"}
    )
    with pytest.raises(ValidationError, match=r"ends_at .* must be after starts_at"):
        OfferPublished.model_validate(given)


def test_an_extension_to_does_not_expire_is_stored_as_the_year_3001():
    extension = OfferEndDateExtended.model_validate(
        {**example(OfferEndDateExtended), "ends_at": None}
    )
    assert extension.ends_at == EVERGREEN_ENDS_AT


# --- behaviours ---------------------------------------------------------------------------


COMPLETE_BEHAVIOURS = {
    "SPEND": {"spend_min_cents": 1000, "accumulation": "ACCUMULATED"},
    "QUANTITY": {
        "quantity_min": "25",
        "accumulation": "SINGLE_TRANSACTION",
        "products": {"categories": ["FUEL"]},
    },
    "POINTS_REDEMPTION": {"points_min": 5000, "accumulation": "SINGLE_TRANSACTION"},
    "VISITS": {"count_min": 5},
    "ACTIVITY": {"activity_kind": "PROFILE_COMPLETED"},
}


@pytest.mark.parametrize(
    ("kind", "missing"),
    [(kind, field) for kind, fields in COMPLETE_BEHAVIOURS.items() for field in fields],
)
def test_a_behaviour_without_a_field_its_kind_needs_is_rejected_naming_it(kind, missing):
    complete = {"kind": kind, **COMPLETE_BEHAVIOURS[kind]}
    assert Behaviour.model_validate(complete).kind == kind

    incomplete = {name: value for name, value in complete.items() if name != missing}
    with pytest.raises(ValidationError, match=f"behaviour of kind {kind} needs {missing}"):
        Behaviour.model_validate(incomplete)


def test_a_quantity_behaviour_without_products_is_rejected():
    with pytest.raises(ValidationError, match="behaviour of kind QUANTITY needs products"):
        Behaviour.model_validate(
            {"kind": "QUANTITY", "quantity_min": "25", "accumulation": "SINGLE_TRANSACTION"}
        )


def test_a_behaviour_setting_another_kinds_field_is_rejected():
    with pytest.raises(ValidationError, match="behaviour of kind ACTIVITY does not use"):
        Behaviour.model_validate(
            {"kind": "ACTIVITY", "activity_kind": "FIRST_LOGIN", "spend_min_cents": 1000}
        )


def test_a_fuel_fill_up_is_a_quantity_behaviour_in_litres():
    fill_up = Behaviour.model_validate(
        {
            "kind": "QUANTITY",
            "quantity_min": "25",
            "accumulation": "SINGLE_TRANSACTION",
            "products": {"categories": ["FUEL"]},
        }
    )
    assert fill_up.threshold == 25


def test_a_behaviour_of_a_kind_added_later_still_validates_in_an_older_reader():
    assert (
        Behaviour.model_validate({"kind": "UNKNOWN", "points_min": 10}).kind
        is BehaviourKind.UNKNOWN
    )


def test_an_offer_with_a_behaviour_missing_its_fields_is_rejected():
    given = an_offer(behaviours=[a_behaviour(spend_min_cents=None)])
    with pytest.raises(ValidationError, match="needs spend_min_cents"):
        OfferPublished.model_validate(given)


def test_for_every_needs_exactly_one_measurable_behaviour():
    login = {"kind": "ACTIVITY", "activity_kind": "FIRST_LOGIN"}
    given = an_offer(behaviours=[a_behaviour(), login], behaviour_operator="ALL")
    with pytest.raises(ValidationError, match=r"FOR_EVERY .* needs exactly one"):
        OfferPublished.model_validate(given)


def test_several_behaviours_combine_with_one_operator_under_minimum_payout():
    login = {"kind": "ACTIVITY", "activity_kind": "FIRST_LOGIN"}
    reward = {**example(OfferPublished)["reward"], "payout": "MINIMUM"}
    offer = OfferPublished.model_validate(
        an_offer(behaviours=[a_behaviour(), login], behaviour_operator="ANY", reward=reward)
    )
    assert [b.kind for b in offer.behaviours] == [BehaviourKind.SPEND, BehaviourKind.ACTIVITY]


# --- rewards ------------------------------------------------------------------------------


def test_reward_tiers_pay_the_highest_tier_and_start_at_the_behaviours_threshold():
    tiers = [
        {"threshold_cents": 1000, "points": 100},
        {"threshold_cents": 2500, "points": 300},
    ]
    reward = {"kind": "FLAT_POINTS", "payout": "MINIMUM", "tiers": tiers}
    offer = OfferPublished.model_validate(an_offer(reward=reward))
    assert [t.points for t in offer.reward.tiers] == [100, 300]

    late_start = [{"threshold_cents": 1500, "points": 100}, tiers[1]]
    with pytest.raises(ValidationError, match="first tier's threshold_cents must equal"):
        OfferPublished.model_validate(an_offer(reward={**reward, "tiers": late_start}))


def test_a_fractional_multiplier_has_one_decimal_place():
    reward = {"kind": "BASE_MULTIPLIER", "multiplier": "1.5"}
    offer = OfferPublished.model_validate(an_offer(reward=reward))
    assert str(offer.reward.multiplier) == "1.5"

    with pytest.raises(ValidationError, match="decimal place"):
        OfferPublished.model_validate(an_offer(reward={**reward, "multiplier": "1.25"}))


def test_points_caps_on_a_discount_offer_are_rejected():
    reward = {"kind": "DISCOUNT", "discount": {"kind": "AMOUNT_OFF_CART", "amount_off_cents": 500}}
    usage = {"points_per_member_max": 1000}
    with pytest.raises(ValidationError, match="points caps and budgets apply to points rewards"):
        OfferPublished.model_validate(an_offer(reward=reward, usage=usage))


# --- targeting ----------------------------------------------------------------------------


@pytest.mark.parametrize("share", [0, 10, 20, 50])
def test_a_control_share_from_0_to_50_percent_is_accepted(share):
    targeting = OfferTargeting.model_validate(
        {"kind": "MASS", "timing": "DYNAMIC", "control_share_percent": share}
    )
    assert targeting.control_share_percent == share


@pytest.mark.parametrize("share", [-1, 51, 100])
def test_a_control_share_outside_0_to_50_percent_is_rejected(share):
    targeting = {**example(OfferPublished)["targeting"], "control_share_percent": share}
    with pytest.raises(ValidationError, match="control_share_percent"):
        OfferPublished.model_validate(an_offer(targeting=targeting))


def test_list_targeting_needs_the_audience_and_delayed_targeting_its_time():
    with pytest.raises(ValidationError, match="targeting of kind AUDIENCE_LIST needs audience_id"):
        OfferTargeting.model_validate({"kind": "AUDIENCE_LIST", "timing": "STATIC"})
    with pytest.raises(ValidationError, match="kind DELAYED_STATIC needs targeting_at"):
        OfferTargeting.model_validate(
            {"kind": "AUDIENCE_LIST", "timing": "DELAYED_STATIC", "audience_id": "A1"}
        )


def test_delayed_targeting_after_the_start_is_rejected():
    targeting = {
        **example(OfferPublished)["targeting"],
        "timing": "DELAYED_STATIC",
        "targeting_at": "2026-11-03T05:00:00Z",
    }
    with pytest.raises(ValidationError, match=r"targeting_at .* must not be after starts_at"):
        OfferPublished.model_validate(an_offer(targeting=targeting))


# --- activation ---------------------------------------------------------------------------


def test_coupon_activation_needs_an_upper_case_code():
    with pytest.raises(ValidationError, match="activation of kind COUPON_CODE needs coupon_code"):
        OfferPublished.model_validate(an_offer(activation={"kind": "COUPON_CODE"}))
    with pytest.raises(ValidationError, match="coupon_code"):
        OfferPublished.model_validate(
            an_offer(activation={"kind": "COUPON_CODE", "coupon_code": "coffee10"})
        )


# --- programmes, rewards, promo codes, challenges, audiences ------------------------------


def test_a_programme_without_the_regular_category_is_rejected():
    given = {**example(ProgramConfigured), "categories": ["PROMISED"]}
    with pytest.raises(ValidationError, match="must include REGULAR"):
        ProgramConfigured.model_validate(given)


def test_promised_points_need_their_category_configured():
    given = {**example(ProgramConfigured), "categories": ["REGULAR"]}
    with pytest.raises(ValidationError, match="held in PROMISED"):
        ProgramConfigured.model_validate(given)


def test_an_expiry_policy_in_days_needs_its_days():
    given = {**example(ProgramConfigured), "expiry": {"kind": "DAYS_AFTER_EARN"}}
    with pytest.raises(ValidationError, match="expiry policy of kind DAYS_AFTER_EARN needs days"):
        ProgramConfigured.model_validate(given)


def test_the_earn_rate_is_a_decimal_with_four_places():
    given = {**example(ProgramConfigured), "points_per_currency_unit": "0.3333"}
    assert str(ProgramConfigured.model_validate(given).points_per_currency_unit) == "0.3333"


def test_a_reward_giving_neither_a_discount_nor_a_code_is_rejected():
    given = {**example(RewardPublished), "discount": None, "uses_code_stock": False}
    with pytest.raises(ValidationError, match="a discount, a code from its stock, or both"):
        RewardPublished.model_validate(given)


def test_promo_codes_are_listed_or_generated_from_a_pattern_not_both():
    listed = example(PromotionCodesIssued)
    with pytest.raises(ValidationError, match="either codes or a code_pattern"):
        PromotionCodesIssued.model_validate(
            {**listed, "code_pattern": "HOLI-####-??", "code_count": 10}
        )

    generated = {**listed, "codes": [], "code_pattern": "HOLI-####-??", "code_count": 5000}
    assert PromotionCodesIssued.model_validate(generated).code_count == 5000


def test_a_code_pattern_too_small_for_its_count_is_rejected_as_guessable():
    given = {
        **example(PromotionCodesIssued),
        "codes": [],
        "code_pattern": "HOLI-##",
        "code_count": 50,
    }
    with pytest.raises(ValidationError, match="allows 100 codes: too few for 50"):
        PromotionCodesIssued.model_validate(given)


def test_promo_codes_link_to_an_offer_or_carry_a_discount_exactly():
    given = {**example(PromotionCodesIssued), "offer_id": "COFFEE_100_PER_10_NOV26"}
    with pytest.raises(ValidationError, match="exactly one"):
        PromotionCodesIssued.model_validate(given)


def test_a_challenge_awards_points_or_a_reward_not_both():
    given = {**example(ChallengePublished), "award_reward_id": "FREE_MUFFIN"}
    with pytest.raises(ValidationError, match="award_points or award_reward_id, exactly one"):
        ChallengePublished.model_validate(given)


def test_an_audience_part_beyond_the_upload_is_rejected():
    given = {**example(AudienceUploaded), "part_number": 2, "part_count": 1}
    with pytest.raises(ValidationError, match="part_number must not exceed part_count"):
        AudienceUploaded.model_validate(given)


# --- reward stores --------------------------------------------------------------------------


def test_a_reward_store_is_paid_from_spendable_points_only():
    given = {**example(RewardStoreConfigured), "category": "PROMISED"}
    with pytest.raises(ValidationError, match="REGULAR or TRIGGER, not PROMISED"):
        RewardStoreConfigured.model_validate(given)


def test_a_reward_store_closes_after_it_opens_and_is_open_inside_its_window_only():
    given = example(RewardStoreConfigured)
    with pytest.raises(ValidationError, match="available_until must be after available_from"):
        RewardStoreConfigured.model_validate({**given, "available_until": given["available_from"]})
    store = RewardStoreConfigured.model_validate(
        {**given, "available_until": "2026-12-01T05:00:00Z"}
    )
    assert store.is_open(datetime(2026, 11, 1, 5, tzinfo=UTC))
    assert not store.is_open(datetime(2026, 11, 1, 4, 59, tzinfo=UTC))
    assert not store.is_open(datetime(2026, 12, 1, 5, tzinfo=UTC))
    withdrawn = RewardStoreConfigured.model_validate({**given, "withdrawn": True})
    assert not withdrawn.is_open(datetime(2026, 11, 15, tzinfo=UTC))
