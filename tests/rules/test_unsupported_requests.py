"""Requests the contract carries but the engine does not act on yet are answered, never
raised: a `RequestRejected` with the stable reason `not_supported`, remembered like any
outcome so a repeated command_id gets the same answer again (DESIGN.md §5.27)."""

from __future__ import annotations

import json

import pytest

from processors.codec.json_form import from_json_object
from processors.contract.outcomes import RejectionReason, RequestRejected
from processors.rules import member as rules
from processors.rules.member import Config, MemberState
from tests.rules.given import enrolled, programs

UNSUPPORTED = [
    "PromoCodeLinkRequested",
]


def request(kind: str, member: str):  # type: ignore[no-untyped-def]
    with open(f"schemas/examples/{kind}.json") as example:
        fields = json.load(example)
    return from_json_object({**fields, "member_id": member})


@pytest.mark.parametrize("kind", UNSUPPORTED)
def test_an_unsupported_request_is_refused_not_supported_and_a_repeat_gets_the_same_answer(kind):
    config = Config(dict(programs()))
    state = rules.handle(MemberState("m1"), enrolled("m1"), config).state
    first = rules.handle(state, request(kind, "m1"), config)
    (answer,) = first.emitted
    assert isinstance(answer, RequestRejected)
    assert (answer.reason, answer.member_id) == (RejectionReason.not_supported, "m1")
    assert kind in (answer.detail or "")
    again = rules.handle(first.state, request(kind, "m1"), config)
    assert again.emitted == [answer]


@pytest.mark.parametrize("kind", UNSUPPORTED)
def test_an_unsupported_request_from_a_stranger_is_answered_too(kind):
    result = rules.handle(MemberState("nobody"), request(kind, "nobody"), Config())
    (answer,) = result.emitted
    assert isinstance(answer, RequestRejected)
    assert answer.reason is RejectionReason.not_supported
