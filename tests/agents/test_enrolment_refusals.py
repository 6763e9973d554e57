"""An enrolment no programme would accept is refused with its reason and opens nothing (issue
#15): a programme that does not exist, another market's, or a closed one. The refusal is a
fact, `RequestRejected` on loyalty.outcomes.v1 (ADR 28), not a dead letter: the enrolment
endpoint reads it like any outcome."""

from __future__ import annotations

import pytest

from processors.agents.members import Members
from processors.contract.ledger import LedgerEventRecorded
from processors.contract.outcomes import RequestAccepted, RequestRejected
from processors.contract.redemptions import RequestType
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
async def test_an_enrolment_no_programme_accepts_is_rejected_and_opens_nothing(
    programme, joined, reason
):  # type: ignore[no-untyped-def]
    h = Harness(Members(Config(dict(programs(programme)))))
    given = enrolled("m1", programs=[joined])
    report = await h.run(record(given, 0))
    (rejected,) = h.outputs()
    assert isinstance(rejected, RequestRejected)
    assert (rejected.reason.value, rejected.request_type) == (reason, RequestType.ENROLMENT)
    assert (rejected.command_id, rejected.request_event_id) == (given.event_id, given.event_id)
    assert (report.saved, h.table.get("m1")) == (0, None)


async def test_an_enrolment_into_an_open_programme_of_the_members_market_opens_it():
    h = Harness(Members(Config(dict(programs()))))
    given = enrolled("m1")
    await h.run(record(given, 0))
    registration, accepted = h.outputs()
    assert isinstance(registration, LedgerEventRecorded)
    assert isinstance(accepted, RequestAccepted)
    assert (accepted.command_id, accepted.ledger_event_log_id) == (
        given.event_id,
        registration.event_log_id,
    )
    assert h.table.get("m1") is not None
