"""The offer report's arithmetic: the named tests, their intervals and the chart's series."""

from datetime import date

import pytest

from projections.offer_report import cumulative_rates, two_proportions, welch


def test_the_two_proportion_z_test_matches_the_textbook():
    # 60 of 100 against 45 of 100: pooled 0.525, z = 0.15 / 0.070622 = 2.1240, p = 0.0337.
    result = two_proportions("qualifying rate", 60, 100, 45, 100)
    assert result.test_name == "two-proportion z-test"
    assert result.difference == pytest.approx(0.15)
    assert result.statistic == pytest.approx(2.1240, abs=1e-4)
    assert result.p_value == pytest.approx(0.0337, abs=1e-4)
    assert result.is_significant
    # Unpooled 95% interval: 0.15 ± 1.96 × sqrt(0.6 × 0.4 / 100 + 0.45 × 0.55 / 100).
    assert (result.low, result.high) == (
        pytest.approx(0.15 - 0.136847, abs=1e-5),
        pytest.approx(0.15 + 0.136847, abs=1e-5),
    )


def test_a_small_difference_on_few_members_is_called_noise():
    result = two_proportions("qualifying rate", 3, 10, 2, 10)
    assert result.p_value is not None
    assert result.p_value > 0.05
    assert not result.is_significant
    assert result.low is not None
    assert result.low < 0 < result.high


def test_an_empty_group_is_not_tested():
    assert two_proportions("qualifying rate", 3, 10, 0, 0).p_value is None
    assert welch("spend", [1.0, 2.0], [3.0]).p_value is None


def test_welchs_test_on_two_samples():
    # Means 5 and 3, variances 2.5 and 2.5, n 5 each: se = 1, statistic 2, p = 0.0455.
    result = welch("visits per member", [3, 4, 5, 6, 7], [1, 2, 3, 4, 5])
    assert result.difference == pytest.approx(2.0)
    assert result.statistic == pytest.approx(2.0)
    assert result.p_value == pytest.approx(0.0455, abs=1e-4)
    assert (result.low, result.high) == (
        pytest.approx(0.04, abs=1e-3),
        pytest.approx(3.96, abs=1e-3),
    )


def test_the_chart_shows_each_groups_share_qualified_so_far():
    firsts = [
        (False, date(2026, 3, 2), 2),
        (True, date(2026, 3, 2), 1),
        (False, date(2026, 3, 4), 2),
    ]
    days = cumulative_rates(firsts, test_members=8, control_members=2)
    assert [(d.day.day, d.test_rate, d.control_rate) for d in days] == [
        (2, 0.25, 0.5),
        (4, 0.5, 0.5),
    ]
