"""Schema names reach search paths and DDL: only plain identifiers are accepted."""

import pytest

from projections.db import check_schema_name


def test_plain_lower_case_identifiers_are_schema_names():
    assert check_schema_name("rebuild_12") == "rebuild_12"
    assert check_schema_name("public") == "public"


@pytest.mark.parametrize(
    "name", ["", "Public", "1abc", "a-b", "a b", "x; DROP TABLE members", "a" * 64, "tab\n"]
)
def test_anything_needing_quotes_is_refused(name):
    with pytest.raises(ValueError, match="schema name"):
        check_schema_name(name)
