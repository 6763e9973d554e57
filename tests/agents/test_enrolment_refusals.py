"""An enrolment no programme would accept is refused whole, with its reason, and opens
nothing (issue #15): a programme that does not exist, another market's, or a closed one.
The member agent dead-letters it (`REFUSED`) with the stable reason first in the error."""

from __future__ import annotations

import pytest

from processors.agents.members import Members
from processors.contract.deadletter import DeadLettered, DeadLetterReason
from processors.rules.member import Config
from tests.agents.harness import Harness, record
from tests.rules.given import PROGRAM, enrolled, program, programs


@pytest.mark.parametrize(
    ("programme", "joined", "reason"),
    [
        (program(), "NOWHERE", "unknown_programme"),
        (program(market="US", currency="USD", time_zone="America/New_York"), PROGRAM,
         "market_mismatch"),
        (program(enrolment_open=False), PROGRAM, "programme_disabled"),
    ],
)  # fmt: skip
async def test_an_enrolment_no_programme_accepts_is_refused_and_opens_nothing(
    programme, joined, reason
):  # type: ignore[no-untyped-def]
    h = Harness(Members(Config(dict(programs(programme)))))
    report = await h.run(record(enrolled("m1", programs=[joined]), 0))
    (dead,) = h.outputs()
    assert isinstance(dead, DeadLettered)
    assert dead.reason is DeadLetterReason.REFUSED
    assert dead.error.startswith(reason)
    assert (report.saved, h.table.get("m1")) == (0, None)


async def test_an_enrolment_into_an_open_programme_of_the_members_market_opens_it():
    h = Harness(Members(Config(dict(programs()))))
    await h.run(record(enrolled("m1"), 0))
    assert h.table.get("m1") is not None
