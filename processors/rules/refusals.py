"""Inputs the rules refuse as a whole (docs/adr/0019-one-id-one-event.md): not a rejection a
member is answered with (those are `RequestRejected` facts), but an input that must not be
applied at all, which the agent dead-letters with the reason. Raised before the rules change
anything, so nothing of the input is left behind even where nobody rolls back."""

from __future__ import annotations


class InputRefused(Exception):  # noqa: N818 - a decision, not an error
    """An input that breaks a rule of the engine as a whole; `reason` is stable."""

    def __init__(self, reason: str, detail: str):
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"
