"""The console's offer form reads into an offer file's data and is checked by the CLI's
validator: a published offer's definition, shown in the form and submitted again unchanged,
is the same offer, whatever parts of it only the advanced box holds."""

from __future__ import annotations

from typing import Any

import pytest

from processors.codec.json_form import from_json_object
from processors.contract.config import OfferPublished
from projections.console.offer_form import (
    ADVANCED,
    check,
    empty_form,
    form_of_definition,
    read_form,
)
from tests.cart_given import AT, offers

CONTENT = {"event_id", "occurred_at"}


def tiered() -> OfferPublished:
    event = from_json_object(
        {
            **offers()[0].model_dump(mode="json"),
            "type": "OfferPublished",
            "offer_id": "TIERED",
            "behaviours": [
                {"kind": "SPEND", "accumulation": "ACCUMULATED", "spend_min_cents": 1000}
            ],
            "reward": {
                "kind": "FLAT_POINTS",
                "tiers": [
                    {"threshold_cents": 1000, "points": 100},
                    {"threshold_cents": 5000, "points": 700},
                ],
            },
            "targeting": {
                "kind": "CRITERIA",
                "timing": "DYNAMIC",
                "criteria": [{"attribute": "PROVINCE", "values": ["QC"]}],
            },
        }
    )
    assert isinstance(event, OfferPublished)
    return event


@pytest.mark.parametrize("event", [*offers(), tiered()], ids=lambda e: e.offer_id)
def test_a_published_offer_shown_in_the_form_and_submitted_again_is_the_same_offer(event):
    form = form_of_definition(event.model_dump(mode="json"))
    submitted = read_form(form.values, {})
    check(submitted, published_at=AT)
    assert submitted.errors == []
    assert submitted.checked is not None
    again = submitted.checked.events[0]
    assert again.model_dump(exclude=CONTENT) == event.model_dump(exclude=CONTENT)


def test_what_the_inputs_do_not_hold_is_in_the_advanced_box():
    form = form_of_definition(tiered().model_dump(mode="json"))
    assert "tiers:" in form.values[ADVANCED]
    assert "criteria:" in form.values[ADVANCED]
    assert "offer_id" not in form.values[ADVANCED]


def values(**changes: Any) -> dict[str, str]:
    base = {
        **empty_form().values,
        "offer_id": "NEW_ONE",
        "program_id": "MAIN",
        "market": "CA",
        "schedule.starts_at": "2026-03-01T10:00",
        "reward.points": "100",
        "behaviours[0].spend_min_cents": "2000",
        "localized_copy[en].headline": "Hello",
        "localized_copy[en].short_description": "Hi",
        "localized_copy[fr].headline": "Bonjour",
        "localized_copy[fr].short_description": "Salut",
    }
    return {**base, **changes}


def test_each_problem_is_placed_at_its_input_and_the_rest_at_the_top():
    form = read_form(
        values(
            **{"localized_copy[fr].headline": "x" * 81, "rank": "12", ADVANCED: "stacking_grup: A"}
        ),
        {},
    )
    check(form, published_at=AT)
    placed = form.by_path
    assert [p.reason for p in placed["localized_copy[fr].headline"]] == [
        "81 characters, at most 80"
    ]
    assert placed["rank"][0].reason.startswith("12, must be 1 to 9")
    assert "did you mean stacking_group?" in placed[""][0].reason


def test_a_minute_in_a_datetime_input_is_a_utc_instant():
    form = read_form(values(), {})
    check(form, published_at=AT)
    assert form.errors == []
    assert form.checked is not None
    assert form.checked.events[0].schedule.starts_at.isoformat() == "2026-03-01T10:00:00+00:00"
