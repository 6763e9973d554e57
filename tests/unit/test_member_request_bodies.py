"""The member services' request bodies as the API validates them: a choice is a JSON boolean."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from projections.api.member_schemas import PreferencesRequest


@pytest.mark.parametrize("given", ["yes", "true", 1, "on"])
def test_a_channel_choice_that_is_not_a_boolean_is_refused(given):
    """Found by trying it as a user: {"EMAIL": "yes"} was stored as an opt-in."""
    with pytest.raises(ValidationError) as refused:
        PreferencesRequest.model_validate({"channels": {"EMAIL": given}})
    assert refused.value.errors()[0]["loc"] == ("channels", "EMAIL")


def test_a_boolean_choice_per_channel_is_taken():
    body = PreferencesRequest.model_validate({"channels": {"EMAIL": False, "PUSH": True}})
    assert {c.value: v for c, v in body.channels.items()} == {"EMAIL": False, "PUSH": True}
