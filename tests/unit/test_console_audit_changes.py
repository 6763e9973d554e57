"""The audit log's page shows before → after as the values that changed, by path."""

from projections.console.audit import changes


def test_only_what_changed_is_listed_by_its_path():
    before = {
        "usage": {"budget_points_max": 1000, "uses_total_max": None},
        "rank": 3,
        "localized_copy": [{"locale": "en", "headline": "A"}, {"locale": "fr", "headline": "B"}],
    }
    after = {
        "usage": {"budget_points_max": 2000, "uses_total_max": None},
        "rank": 3,
        "localized_copy": [{"locale": "en", "headline": "A"}, {"locale": "fr", "headline": "C"}],
    }
    assert changes(before, after) == [
        ("localized_copy[1].headline", "B", "C"),
        ("usage.budget_points_max", 1000, 2000),
    ]


def test_a_new_record_lists_what_was_set_and_not_its_empty_fields():
    assert changes(None, {"rank": 3, "stacking_group": None, "tiers": []}) == [("rank", None, 3)]


def test_nothing_before_and_after_is_no_change():
    assert changes(None, None) == []
