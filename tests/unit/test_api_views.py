"""The ledger view's parameters: strict RFC 3339, the default window, the opaque cursor."""

from datetime import UTC, datetime, timedelta

import pytest

from projections.api.errors import BadParameterError
from projections.api.views import decode_cursor, encode_cursor, ledger_view, parse_instant

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_with_no_dates_the_view_is_the_seven_days_ending_now():
    view = ledger_view(now=NOW)
    assert (view.recorded_from, view.recorded_to) == (NOW - timedelta(days=7), NOW)
    assert view.is_unfiltered


def test_with_only_to_the_view_is_the_seven_days_ending_then():
    view = ledger_view(now=NOW, recorded_to="2026-01-08T00:00:00Z")
    assert view.recorded_from == datetime(2026, 1, 1, tzinfo=UTC)
    assert not view.is_unfiltered


def test_include_till_concept_events_alone_is_no_filter():
    assert ledger_view(now=NOW, include_till_concept_events=True).is_unfiltered
    assert not ledger_view(now=NOW, include_till_concept_events=True).widens_to_till_concept_events


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-02T14:31:08Z", datetime(2026, 11, 2, 14, 31, 8, tzinfo=UTC)),
        ("2026-11-02t14:31:08.250z", datetime(2026, 11, 2, 14, 31, 8, 250000, tzinfo=UTC)),
        ("2026-11-02T09:31:08-05:00", datetime(2026, 11, 2, 14, 31, 8, tzinfo=UTC)),
    ],
)
def test_rfc3339_instants_are_read_as_utc(text, expected):
    assert parse_instant("from", text) == expected


@pytest.mark.parametrize(
    "text",
    ["2026-11-02", "2026-11-02T14:31:08", "1762094000", "2026-11-02T14:31:08Z\n", "now"],
)
def test_anything_but_rfc3339_with_a_zone_is_refused(text):
    with pytest.raises(BadParameterError) as refusal:
        parse_instant("to", text)
    assert refusal.value.parameter == "to"


def test_a_cursor_round_trips_and_is_not_the_bare_number():
    cursor = encode_cursor(42)
    assert cursor != "42"
    assert decode_cursor(cursor) == 42


@pytest.mark.parametrize(
    "cursor", ["", "42", "YWZ0ZXI6", "YWZ0ZXI6LTE", "!!!", "YWZ0ZXI6OTk5OTk5OTk5OTk"]
)
def test_a_cursor_this_api_did_not_issue_is_refused(cursor):
    with pytest.raises(BadParameterError) as refusal:
        decode_cursor(cursor)
    assert refusal.value.parameter == "cursor"
