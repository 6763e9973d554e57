"""One id means one event (docs/adr/0019-one-id-one-event.md): the one place the rules tell a
repeat from a conflict.

Every input the engine deduplicates has an identity: a purchase its `transaction_id`, a return
its `return_id`, a request its `command_id`, an enrolment or an activity its `event_id`. The
rules keep a digest of the body they accepted beside the identity. The same identity again
with the same body is a repeat (nothing new happens; a request gets its outcome again); with
another body it is a `ConflictError`: the agent dead-letters that input with both digests
(reason `CONFLICT`) and nothing of it reaches the state or the outputs.

What a digest covers:
- a fact (purchase, return, enrolment, activity): everything but the `event_id`, so a producer
  that resends the same fact under a new event id sends a repeat;
- a request: everything but the `event_id` and `occurred_at`, so a client retrying with the
  same Idempotency-Key at another moment (the API stamps the time) sends a repeat, while the
  same key with other parameters is a conflict, as the Idempotency-Key draft (IETF) says.

Each rule checks an identity before it changes anything, so a conflict leaves the state as it
was even where nobody rolls back (`loyalty simulate`). Digests kept before this rule existed
are None: such an identity cannot be compared and is
treated as a repeat, as it was then. Pure: no clock, no randomness.
"""

from __future__ import annotations

import hashlib

from processors.contract.base import Event

FACT = frozenset({"event_id"})
"""Fields outside a fact's body."""

REQUEST = frozenset({"event_id", "occurred_at"})
"""Fields outside a request's body."""


class ConflictError(Exception):
    """An input reuses an identity already given to another body: refused, never applied."""

    def __init__(self, kind: str, identity: str, first: str, second: str):
        super().__init__(kind, identity, first, second)
        self.kind = kind
        self.identity = identity
        self.first = first
        self.second = second

    def __str__(self) -> str:
        return (
            f"{self.kind} {self.identity!r} already names another body: "
            f"first digest {self.first}, this one {self.second}"
        )


def digest(event: Event, envelope: frozenset[str] = FACT) -> str:
    """A short, stable digest of `event`'s body (its JSON form without `envelope`)."""
    body = event.__pydantic_serializer__.to_json(event, exclude=set(envelope))
    return hashlib.blake2b(body, digest_size=12).hexdigest()


def check(
    kind: str, identity: str, kept: str | None, event: Event, envelope: frozenset[str] = FACT
) -> None:
    """Raise `ConflictError` if `kept`, the digest kept for `identity`, is not `event`'s."""
    if kept is None:
        return
    now = digest(event, envelope)
    if now != kept:
        raise ConflictError(kind, identity, kept, now)
