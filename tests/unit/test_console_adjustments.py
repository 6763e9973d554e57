"""What a submitted points adjustment becomes, and the request an approved one publishes
(docs/adr/0036-member-care-console.md)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from processors.base.settings import Settings
from processors.contract.redemptions import PointsAdjustmentKind
from projections.console.adjustments import (
    Adjustment,
    AdjustmentPolicy,
    OverLimitError,
    Today,
    route,
)

POLICY = AdjustmentPolicy(approval_over=1_000, daily_limit=5_000, limits={"lead": 50_000})
T = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


NOTHING = Today(used=0, unreviewed=0)


def test_at_the_threshold_it_is_approved_at_once_and_one_point_more_waits():
    assert route(POLICY, "ava", 1_000, NOTHING) == "approved"
    assert route(POLICY, "ava", 1_001, NOTHING) == "pending"


def test_the_threshold_counts_the_day_s_unreviewed_points_so_splitting_does_not_pass_it():
    assert route(POLICY, "ava", 400, Today(used=600, unreviewed=600)) == "approved"
    assert route(POLICY, "ava", 401, Today(used=600, unreviewed=600)) == "pending"
    assert route(POLICY, "ava", 1, Today(used=1_000, unreviewed=1_000)) == "pending"


def test_points_a_checker_saw_or_waits_to_see_do_not_count_towards_the_threshold():
    assert route(POLICY, "ava", 1_000, Today(used=3_000, unreviewed=0)) == "approved"


def test_the_daily_limit_counts_what_was_used_today_and_names_what_is_left():
    assert route(POLICY, "ava", 1_000, Today(used=4_000, unreviewed=0)) == "approved"
    with pytest.raises(OverLimitError, match="1000 of 5000 points left today"):
        route(POLICY, "ava", 1_001, Today(used=4_000, unreviewed=0))
    with pytest.raises(OverLimitError, match="0 of 5000 points left today"):
        route(POLICY, "ava", 1, Today(used=6_000, unreviewed=0))


def test_a_staff_member_s_own_limit_overrides_the_default():
    assert route(POLICY, "lead", 20_000, NOTHING) == "pending"


def test_the_limits_come_from_the_settings():
    settings = Settings(
        console_adjustment_approval_points=200,
        console_adjustment_daily_limit_points=900,
        console_adjustment_limits="lead=50000,new-hire=100",
    )
    policy = AdjustmentPolicy.from_settings(settings)
    assert policy == AdjustmentPolicy(200, 900, {"lead": 50_000, "new-hire": 100})


def adjustment(**changes: object) -> Adjustment:
    values: dict[str, object] = {
        "adjustment_id": "a1", "member_id": "m1", "program_id": "MAIN", "direction": "debit",
        "points": 300, "reason_code": "fraud reversal", "note": "points farmed",
        "requested_by": "ava", "requested_by_role": "agent", "requested_at": T,
        "state": "approved", "decided_by": "root", "decided_at": T, "decision_reason": None,
        "published_at": None,
    }  # fmt: skip
    return Adjustment(**{**values, **changes})  # type: ignore[arg-type]


def test_every_attempt_publishes_the_same_request():
    first, again = adjustment().request(), adjustment(published_at=T).request()
    assert first == again
    assert first.command_id == "console-a1"
    assert first.kind is PointsAdjustmentKind.MANUAL_DEBIT
    assert first.reason == "fraud reversal: points farmed (by ava, approved by root)"
    assert first.campaign_id == "console:fraud-reversal"


def test_a_credit_is_published_as_a_manual_credit():
    assert adjustment(direction="credit").request().kind is PointsAdjustmentKind.MANUAL_CREDIT
