"""`loyalty dead-letters`' choices, pure: the filters, one replay per record, the summary."""

from __future__ import annotations

from loyalty.audit import Position
from loyalty.dead_letters import Letter, chosen, distinct, summary
from processors.contract.deadletter import DeadLettered, DeadLetterReason
from tests.rules.given import T0


def letter(offset: int, reason: DeadLetterReason, error: str, value: bytes = b"v1") -> Letter:
    return Letter(
        Position("p.loyalty.deadletter.v1", 0, offset),
        DeadLettered(
            event_id=f"dl-{offset}", occurred_at=T0, original_topic="p.loyalty.transactions.v1",
            original_partition=3, original_offset=100 + offset, original_key=b"m1",
            original_value=value, reason=reason, error=error, event_type="TransactionCompleted",
        ),
    )  # fmt: skip


def test_a_record_refused_again_after_a_replay_is_replayed_once():
    # Found by a user's trial: each replay of a CONFLICT doubled its letters, and the next
    # replay sent every copy.
    first = letter(0, DeadLetterReason.REFUSED, "parked_limit: 100 purchases ...")
    again = letter(1, DeadLetterReason.REFUSED, "parked_limit: 100 purchases ...")
    other = letter(2, DeadLetterReason.INVALID, "lines: too short", value=b"v2")
    assert distinct([first, again, other]) == [first, other]
    assert chosen([first, again, other], refusal="parked_limit") == [first, again]
    assert chosen([first, other], reason=DeadLetterReason.INVALID) == [other]
    assert summary([first, again, other], limit=1).splitlines()[:3] == [
        "3 dead letter(s) of 2 distinct record(s)",
        "        2  REFUSED parked_limit             TransactionCompleted",
        "        1  INVALID                          TransactionCompleted",
    ]
