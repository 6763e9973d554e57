"""A switch read from the environment is on unless it says off (`processors.base.switches`)."""

import pytest

from processors.base.switches import switched_on


@pytest.mark.parametrize("value", ["0", "false", "No", " OFF ", "off"])
def test_a_switch_set_to_off_in_any_spelling_is_off(monkeypatch, value):
    monkeypatch.setenv("LOYALTY_SOME_SWITCH", value)
    assert not switched_on("LOYALTY_SOME_SWITCH")


@pytest.mark.parametrize("value", ["1", "true", "yes", "on", "", "anything"])
def test_a_switch_set_to_anything_else_is_on(monkeypatch, value):
    monkeypatch.setenv("LOYALTY_SOME_SWITCH", value)
    assert switched_on("LOYALTY_SOME_SWITCH")


def test_a_switch_not_set_is_on(monkeypatch):
    monkeypatch.delenv("LOYALTY_SOME_SWITCH", raising=False)
    assert switched_on("LOYALTY_SOME_SWITCH")
