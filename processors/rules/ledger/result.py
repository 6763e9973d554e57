"""What a ledger rule returns, and the helpers every rule shares."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from processors.contract.base import Event
from processors.contract.config import ProgramConfigured
from processors.rules.ledger.draft import Draft
from processors.rules.ledger.state import MemberLedger

Programs = Mapping[str, ProgramConfigured]


@dataclass
class Result:
    """The member's next state (None: still unknown) and what to emit, in order."""

    state: MemberLedger | None
    emitted: list[Event] = field(default_factory=list)
    note: str = ""  # why nothing happened, for the processor's log and metrics


def required(state: MemberLedger | None) -> MemberLedger:
    assert state is not None
    return state


def emit(result: Result, draft: Draft) -> None:
    event = draft.seal()
    if event is not None:
        result.emitted.append(event)
