"""The contract's member-facing events refuse what no producer may send (DESIGN.md §5, §6).

Each test starts from the event's published example in `schemas/examples/`, changes one thing,
and checks the model's verdict, so the examples are executed too.
"""

import json
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from processors.contract import (
    activities,
    clock,
    enrolments,
    ledger,
    notifications,
    offers,
    outcomes,
    redemptions,
    rewards,
    transactions,
)
from processors.contract.activities import ActivityRecorded
from processors.contract.base import ContractEnum, Event, Record
from processors.contract.clock import DayStarted
from processors.contract.enrolments import MemberEnrolled, MemberProfileUpdated, MembersMerged
from processors.contract.notifications import MessagePosted, PreferencesChanged
from processors.contract.offers import ChallengeCompleted, OfferCompleted, OfferProgressed
from processors.contract.outcomes import RejectionReason, RequestRejected
from processors.contract.redemptions import (
    PointsRedemptionRequested,
    PointsTransferRequested,
    RequestType,
)
from processors.contract.rewards import RewardExpired, RewardGranted
from processors.contract.transactions import TransactionCompleted, TransactionReturned

EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples"

MEMBER_MODULES = (
    enrolments,
    activities,
    redemptions,
    clock,
    rewards,
    offers,
    outcomes,
    notifications,
)
EXAMPLED_MODULES = (*MEMBER_MODULES, transactions, ledger)


def defined_in(module, kind):
    return [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, kind)
        and value.__module__ == module.__name__
    ]


def events_of(*modules) -> list[type[Event]]:
    return [cls for module in modules for cls in defined_in(module, Event)]


REQUESTS = events_of(redemptions)


def example(cls: type[Event]) -> dict:
    """The published example's fields (without its `type`)."""
    document = json.loads((EXAMPLES / f"{cls.__name__}.json").read_text())
    assert document.pop("type") == cls.__name__
    return document


# --- the examples and the conventions -------------------------------------------------------


@pytest.mark.parametrize("cls", events_of(*EXAMPLED_MODULES), ids=lambda c: c.__name__)
def test_every_example_is_valid_and_is_exactly_the_json_form(cls):
    given = json.loads((EXAMPLES / f"{cls.__name__}.json").read_text())
    fields = {k: v for k, v in given.items() if k != "type"}
    event = cls.model_validate(fields)
    assert {"type": cls.__name__, **event.model_dump(mode="json")} == given


@pytest.mark.parametrize("cls", events_of(*MEMBER_MODULES), ids=lambda c: c.__name__)
def test_every_field_is_documented_for_the_avro_doc(cls):
    models: list[type[BaseModel]] = [cls]
    seen: set[type[BaseModel]] = set()
    while models:
        model = models.pop()
        seen.add(model)
        for name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{name} has no description"
            for nested in _records_in(info.annotation):
                if nested not in seen:
                    models.append(nested)


def _records_in(annotation) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, Record):
        return [annotation]
    return [r for arg in getattr(annotation, "__args__", ()) for r in _records_in(arg)]


@pytest.mark.parametrize(
    "enum",
    [e for m in MEMBER_MODULES for e in defined_in(m, ContractEnum)],
    ids=lambda e: e.__name__,
)
def test_every_closed_set_ends_with_unknown_so_old_readers_decode_new_symbols(enum):
    assert list(enum)[-1].name == "UNKNOWN"
    assert issubclass(enum, StrEnum)
    assert all(member.name == member.value for member in enum)


def test_record_and_enum_names_are_unique_because_they_share_one_avro_namespace():
    named = [
        cls.__name__
        for module in EXAMPLED_MODULES
        for cls in (*defined_in(module, Record), *defined_in(module, ContractEnum))
    ]
    assert len(named) == len(set(named))


# --- requests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", REQUESTS, ids=lambda c: c.__name__)
def test_every_request_needs_a_client_command_id(cls):
    given = example(cls)
    del given["command_id"]
    with pytest.raises(ValidationError, match="command_id"):
        cls.model_validate(given)


def test_each_request_names_its_own_request_type_for_the_outcome():
    # An enrolment (its own topic) is answered as ENROLMENT, its event_id the command id; a
    # member's return (the transactions topic) as RETURN, its return_id the command id.
    types = [cls.request_type for cls in REQUESTS] + [RequestType.ENROLMENT, RequestType.RETURN]
    assert len(types) == len(set(types)) == len(RequestType) - 1
    assert RequestType.UNKNOWN not in types


def test_a_member_cannot_transfer_points_to_themselves():
    given = example(PointsTransferRequested)
    given["recipient_member_id"] = given["member_id"]
    with pytest.raises(ValidationError, match="to themselves"):
        PointsTransferRequested.model_validate(given)


@pytest.mark.parametrize("points", [0, -750])
def test_a_transfer_moves_a_positive_number_of_points(points):
    given = example(PointsTransferRequested)
    given["points"] = points
    with pytest.raises(ValidationError, match="points"):
        PointsTransferRequested.model_validate(given)


def test_a_transfer_is_decided_on_the_senders_partition():
    transfer = PointsTransferRequested.model_validate(example(PointsTransferRequested))
    assert transfer.partition_key() == transfer.member_id != transfer.recipient_member_id


def test_a_group_redemption_takes_from_each_programme_once():
    given = example(PointsRedemptionRequested)
    given["allocations"] = [
        {"program_id": "CA_REWARDS", "points": 1000},
        {"program_id": "CA_REWARDS", "points": 500},
    ]
    with pytest.raises(ValidationError, match="at most once"):
        PointsRedemptionRequested.model_validate(given)


@pytest.mark.parametrize(
    "allocations",
    [[], [{"program_id": "CA_REWARDS", "points": 0}]],
    ids=["no allocation", "zero points"],
)
def test_a_points_redemption_spends_some_points(allocations):
    given = example(PointsRedemptionRequested)
    given["allocations"] = allocations
    with pytest.raises(ValidationError, match="allocations"):
        PointsRedemptionRequested.model_validate(given)


# --- members ----------------------------------------------------------------------------------


def test_a_member_cannot_be_merged_into_themselves():
    given = example(MembersMerged)
    given["survivor_member_id"] = given["victim_member_id"]
    with pytest.raises(ValidationError, match="into themselves"):
        MembersMerged.model_validate(given)


def test_a_merge_is_keyed_by_its_victim_whose_partition_moves_the_points_out():
    merge = MembersMerged.model_validate(example(MembersMerged))
    assert merge.partition_key() == merge.victim_member_id


def test_an_enrolment_names_each_programme_once():
    given = example(MemberEnrolled)
    given["program_ids"] = ["CA_REWARDS", "CA_REWARDS"]
    given["imported_balances"] = []
    with pytest.raises(ValidationError, match="must not repeat a programme"):
        MemberEnrolled.model_validate(given)


def test_a_balance_cannot_be_imported_into_a_programme_the_member_did_not_join():
    given = example(MemberEnrolled)
    given["program_ids"] = ["CA_FUEL"]
    with pytest.raises(ValidationError, match="programmes not joined"):
        MemberEnrolled.model_validate(given)


def test_an_account_is_imported_at_most_once():
    given = example(MemberEnrolled)
    balance = given["imported_balances"][0]
    given["imported_balances"] = [balance, {**balance, "points": 10}]
    with pytest.raises(ValidationError, match="must not repeat an account"):
        MemberEnrolled.model_validate(given)


def test_a_member_cannot_refer_themselves():
    given = example(MemberEnrolled)
    given["referrer_member_id"] = given["member_id"]
    with pytest.raises(ValidationError, match="refer themselves"):
        MemberEnrolled.model_validate(given)


@pytest.mark.parametrize("event", [MemberEnrolled, MemberProfileUpdated])
@pytest.mark.parametrize(
    ("born", "problem"),
    [("2030-01-01", "is in the future"), ("1899-12-31", "is before 1900-01-01")],
)
def test_a_date_of_birth_in_the_future_or_before_1900_is_refused(event, born, problem):
    # Found by a user's trial: an enrolment with a birth date in 2030 was accepted.
    given = example(event)
    given["profile"]["birth_date"] = born
    with pytest.raises(ValidationError, match=problem):
        event.model_validate(given)


def test_a_date_of_birth_on_the_day_after_in_utc_is_a_birthday_ahead_of_utc():
    given = example(MemberEnrolled)
    at = datetime.fromisoformat(given["occurred_at"].replace("Z", "+00:00"))
    given["profile"]["birth_date"] = (at.date() + timedelta(days=1)).isoformat()
    assert MemberEnrolled.model_validate(given).profile.birth_date is not None


def test_an_imported_balance_may_be_negative_when_the_old_system_was_owed_points():
    given = example(MemberEnrolled)
    given["imported_balances"][0]["points"] = -120
    enrolled = MemberEnrolled.model_validate(given)
    assert enrolled.imported_balances[0].points == -120


# --- activities -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "missing"),
    [("CUSTOM", "custom_name"), ("CHALLENGE_STEP", "challenge_id")],
)
def test_an_activity_names_what_its_kind_needs(kind, missing):
    given = example(ActivityRecorded)
    given["kind"] = kind
    with pytest.raises(ValidationError, match=missing):
        ActivityRecorded.model_validate(given)


def test_an_activity_of_a_kind_added_later_still_validates_as_unknown():
    given = example(ActivityRecorded)
    given.update(kind="UNKNOWN", custom_name="survey_answered", challenge_id="FIVE_VISITS_NOV")
    assert ActivityRecorded.model_validate(given).kind is activities.ActivityKind.UNKNOWN


# --- clock ------------------------------------------------------------------------------------


def test_a_day_is_keyed_by_its_market():
    day = DayStarted.model_validate(example(DayStarted))
    assert day.partition_key() == "CA"
    assert day.business_date == date(2026, 11, 14)


def test_a_day_starts_at_local_midnight_of_its_business_date():
    given = example(DayStarted)
    given["business_date"] = "2026-11-13"  # an off-by-one date: started_at is 29 h after it
    with pytest.raises(ValidationError, match="local midnight"):
        DayStarted.model_validate(given)


def test_a_days_tick_is_not_emitted_before_the_day_started():
    given = example(DayStarted)
    given["occurred_at"] = "2026-11-14T04:59:59Z"
    with pytest.raises(ValidationError, match="before the day started"):
        DayStarted.model_validate(given)


def test_the_day_start_is_kept_in_utc_whatever_offset_it_was_given_in():
    given = example(DayStarted)
    given["started_at"] = "2026-11-14T00:00:00-05:00"
    day = DayStarted.model_validate(given)
    assert day.started_at == datetime(2026, 11, 14, 5, tzinfo=UTC)
    assert day.started_at.tzinfo is UTC


# --- rewards ----------------------------------------------------------------------------------


def test_a_reward_bought_with_points_names_the_request_that_bought_it():
    given = example(RewardGranted)
    given["command_id"] = None
    with pytest.raises(ValidationError, match="command_id"):
        RewardGranted.model_validate(given)


def test_a_reward_cannot_expire_before_it_is_granted():
    given = example(RewardGranted)
    given["expires_at"] = given["occurred_at"]
    with pytest.raises(ValidationError, match="expire before it is granted"):
        RewardGranted.model_validate(given)


def test_a_reward_is_reported_expired_only_once_its_expiry_has_passed():
    given = example(RewardExpired)
    given["occurred_at"] = "2026-12-14T05:00:03Z"
    with pytest.raises(ValidationError, match="before its expires_at"):
        RewardExpired.model_validate(given)


# --- offers and challenges --------------------------------------------------------------------


def test_caps_only_clip_an_offer_award():
    given = example(OfferCompleted)
    given["points_awarded"] = given["points_due"] + 1
    with pytest.raises(ValidationError, match="cannot exceed points_due"):
        OfferCompleted.model_validate(given)


@pytest.mark.parametrize(
    "award", [{"points_awarded": 500}, {"points_awarded": 0, "discount_cents": 200}]
)
def test_a_control_group_member_is_never_awarded_anything(award):
    given = example(OfferCompleted)
    given.update(in_control_group=True, **award)
    with pytest.raises(ValidationError, match="never awarded"):
        OfferCompleted.model_validate(given)


def test_a_control_group_member_still_shows_what_they_would_have_earned():
    given = example(OfferCompleted)
    given.update(in_control_group=True, points_awarded=0, program_id=None)
    completed = OfferCompleted.model_validate(given)
    assert (completed.points_due, completed.points_awarded) == (500, 0)


def test_offer_progress_lists_each_behaviour_once():
    given = example(OfferProgressed)
    given["progress"] = [given["progress"][0], given["progress"][0]]
    with pytest.raises(ValidationError, match="at most once"):
        OfferProgressed.model_validate(given)


def test_awarded_points_name_the_programme_credited():
    given = example(ChallengeCompleted)
    given["program_id"] = None
    with pytest.raises(ValidationError, match="program_id"):
        ChallengeCompleted.model_validate(given)


def test_a_challenge_reward_names_both_the_reward_and_its_grant():
    given = example(ChallengeCompleted)
    given["reward_id"] = "RWD_FREE_COFFEE"
    with pytest.raises(ValidationError, match="go together"):
        ChallengeCompleted.model_validate(given)


# --- outcomes ---------------------------------------------------------------------------------


def test_rejection_reasons_keep_the_symbols_of_the_design():
    for symbol in ("insufficient_points", "duplicate_request", "reward_expired", "code_exhausted"):
        assert RejectionReason(symbol).value == symbol
    assert list(RejectionReason)[-1] is RejectionReason.UNKNOWN


def test_a_rejection_explains_itself_to_a_person():
    given = example(RequestRejected)
    given["detail"] = ""
    with pytest.raises(ValidationError, match="detail"):
        RequestRejected.model_validate(given)


# --- notifications ----------------------------------------------------------------------------


def test_a_preference_change_made_by_the_member_names_the_member():
    given = example(PreferencesChanged)
    given["changed_by_id"] = "M-5180377"
    with pytest.raises(ValidationError, match="names the member"):
        PreferencesChanged.model_validate(given)


def test_a_preference_change_names_each_channel_once():
    given = example(PreferencesChanged)
    given["changes"] = [given["changes"][0], {**given["changes"][0], "opted_in": False}]
    with pytest.raises(ValidationError, match="at most once"):
        PreferencesChanged.model_validate(given)


def test_an_inbox_message_cannot_expire_before_it_is_posted():
    given = example(MessagePosted)
    given["expires_at"] = "2026-11-14T05:00:00Z"
    with pytest.raises(ValidationError, match="expire before it is posted"):
        MessagePosted.model_validate(given)


@pytest.mark.parametrize("cls", [TransactionCompleted, TransactionReturned])
def test_a_line_id_names_one_line_of_a_purchase_or_a_return(cls):
    # Found by a user's trial: two lines "1" were booked, and a return could only ever
    # reach one of them (the purchase's record kept the last).
    given = example(cls)
    given["lines"] = [given["lines"][0], {**given["lines"][0]}]
    with pytest.raises(ValidationError, match=r"line_id must be unique in a .*; repeated: "):
        cls.model_validate(given)


@pytest.mark.parametrize("at", ["9999-12-31T23:00:00-14:00", "0001-01-01T00:00:00+01:00"])
def test_a_time_outside_the_years_1_to_9999_once_in_utc_is_refused_not_raised(at):
    # Found by a user's trial: an OverflowError escaped the validation (a 500 at the API).
    given = example(TransactionCompleted)
    given["occurred_at"] = at
    with pytest.raises(ValidationError, match="between years 1 and 9999 in UTC"):
        TransactionCompleted.model_validate(given)


def test_a_basket_whose_lines_add_up_past_what_an_amount_holds_is_refused():
    # Found by a user's trial: each line within bounds, their total not; a code's spend then
    # failed inside the engine (a 500 at the API, PROCESSING_FAILED at the worker).
    given = example(TransactionCompleted)
    line = given["lines"][0]
    given["lines"] = [
        {**line, "line_id": "1", "amount_cents": 10**15, "discount_cents": 0},
        {**line, "line_id": "2", "amount_cents": 1, "discount_cents": 0},
    ]
    with pytest.raises(ValidationError, match="add up to 1000000000000001 cents"):
        TransactionCompleted.model_validate(given)
