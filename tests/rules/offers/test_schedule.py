"""When an offer is live, and the end-date extension rules, one test per rule (DESIGN.md §5.10,
§5.11; seed 003, "Offer end date extension (hold over)").

The offer is the published example with its schedule replaced: live from 2026-11-02 to
2026-11-30, 05:00 UTC.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from processors.contract.config import OfferPublished
from processors.contract.offer_definition import EVERGREEN_ENDS_AT
from processors.rules.offers.schedule import ExtensionRefusal, extension_refusal, is_live

EXAMPLE = Path(__file__).resolve().parents[3] / "schemas" / "examples" / "OfferPublished.json"
STARTS = datetime(2026, 11, 2, 5, tzinfo=UTC)
ENDS = datetime(2026, 11, 30, 5, tzinfo=UTC)
MID = datetime(2026, 11, 15, 12, tzinfo=UTC)
LATER = datetime(2026, 12, 31, 5, tzinfo=UTC)


def an_offer(starts_at: datetime = STARTS, ends_at: datetime = ENDS) -> OfferPublished:
    body = json.loads(EXAMPLE.read_text())
    body.pop("type")
    body["schedule"] = {"starts_at": starts_at, "ends_at": ends_at, "display_at": None}
    return OfferPublished.model_validate(body)


def refusal(
    new_ends_at: datetime = LATER,
    *,
    current_ends_at: datetime = ENDS,
    at: datetime = MID,
    enabled: bool = True,
    completed: bool = False,
    **changes: Any,
) -> str | None:
    return extension_refusal(
        an_offer(),
        current_ends_at,
        new_ends_at,
        at=at,
        enabled=enabled,
        completed=completed,
        **changes,
    )


# --- liveness ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "live"),
    [
        (STARTS - timedelta(milliseconds=1), False),
        (STARTS, True),
        (ENDS - timedelta(milliseconds=1), True),
        (ENDS, False),
    ],
)
def test_an_offer_is_live_from_its_start_up_to_but_not_at_its_end(at, live):
    assert is_live(an_offer(), at) is live


def test_an_offer_whose_end_was_extended_is_live_until_the_new_end():
    assert not is_live(an_offer(), ENDS)
    assert is_live(an_offer(), ENDS, ends_at=LATER)


def test_an_evergreen_offer_is_live_forever_after_its_start():
    assert is_live(an_offer(ends_at=EVERGREEN_ENDS_AT), datetime(2999, 1, 1, tzinfo=UTC))


# --- extension rules, in the order they are checked --------------------------------------


def test_a_later_end_asked_for_a_live_offer_with_the_feature_on_is_allowed():
    assert refusal(LATER) is None


def test_extension_is_refused_when_the_feature_is_off_which_is_the_default():
    assert refusal(enabled=False) == (
        "FEATURE_DISABLED: offers can be extended only if the feature is enabled for the "
        "offer's programme; it is disabled by default"
    )


def test_a_completed_offer_s_end_date_cannot_be_changed():
    assert refusal(completed=True) == (
        "OFFER_COMPLETED: the end date of a completed offer can't be changed"
    )


@pytest.mark.parametrize("at", [STARTS - timedelta(days=1), ENDS, ENDS + timedelta(days=1)])
def test_only_a_live_offer_can_be_extended(at):
    assert refusal(at=at) == "NOT_LIVE: only a live offer's end date can be extended"


def test_liveness_is_judged_on_the_current_end_after_earlier_extensions():
    assert refusal(LATER + timedelta(days=7), current_ends_at=LATER, at=ENDS) is None


def test_the_start_date_cannot_be_edited():
    moved = refusal(starts_at=STARTS + timedelta(days=1))
    assert moved == "START_DATE_IMMUTABLE: the start date can't be edited"
    assert refusal(starts_at=STARTS) is None


@pytest.mark.parametrize("new_ends_at", [STARTS, STARTS - timedelta(days=1)])
def test_the_end_date_cannot_be_set_before_the_start_date(new_ends_at):
    assert refusal(new_ends_at) == (
        "BEFORE_START: the end date can't be changed to a date before the start date"
    )


@pytest.mark.parametrize("new_ends_at", [ENDS, ENDS - timedelta(days=1)])
def test_only_extensions_are_allowed_never_the_same_or_an_earlier_end(new_ends_at):
    assert refusal(new_ends_at) == (
        "NOT_LATER: only extensions are allowed: the new end date must be later than the "
        "current end date"
    )


@pytest.mark.parametrize(
    "at", [ENDS - timedelta(hours=24), ENDS - timedelta(hours=1), ENDS - timedelta(seconds=1)]
)
def test_last_minute_changes_within_24_hours_of_the_current_end_are_refused(at):
    assert refusal(at=at) == (
        "WITHIN_24_HOURS: last-minute changes, within 24 hours of the current end date, "
        "aren't possible"
    )


def test_a_change_just_over_24_hours_before_the_current_end_is_allowed():
    assert refusal(at=ENDS - timedelta(hours=24, milliseconds=1)) is None


def test_the_end_date_can_be_set_to_does_not_expire():
    assert refusal(EVERGREEN_ENDS_AT) is None
    assert refusal(datetime(3050, 1, 1, tzinfo=UTC)) is None


def test_an_evergreen_offer_has_no_later_end_to_move_to():
    beyond = datetime(3050, 1, 1, tzinfo=UTC)
    assert (
        refusal(beyond, current_ends_at=EVERGREEN_ENDS_AT) == ExtensionRefusal.NOT_LATER.explained()
    )


def test_the_first_rule_broken_is_the_reason():
    assert refusal(ENDS, at=ENDS, enabled=False, completed=True).startswith("FEATURE_DISABLED")
    assert refusal(ENDS, at=ENDS, completed=True).startswith("OFFER_COMPLETED")
    assert refusal(ENDS, at=ENDS).startswith("NOT_LIVE")
    assert refusal(ENDS, at=ENDS - timedelta(hours=1)).startswith("NOT_LATER")


def test_every_refusal_code_is_its_own_name_and_has_a_sentence():
    for code in ExtensionRefusal:
        assert code.value == code.name
        assert code.explained() == f"{code.name}: {code.sentence}"
