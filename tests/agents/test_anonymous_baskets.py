"""An anonymous customer's basket reaches the member agent keyed by its transaction id: it
has no member to credit, so the agent keeps nothing for it (it used to park every anonymous
basket in the member table, waiting for an enrolment that never comes)."""

from __future__ import annotations

from processors.agents.members import Members
from processors.rules.member import Config
from tests.agents.harness import Harness, record
from tests.rules.given import bought, programs


async def test_an_anonymous_basket_keeps_no_state_and_sends_nothing():
    h = Harness(Members(Config(dict(programs()))))
    anonymous = bought("m1", "ANON-1", cents=1000).model_copy(update={"member_id": None})
    report = await h.run(record(anonymous, 0))
    assert (report.saved, h.sent()) == (0, [])
    assert h.table.get("ANON-1") is None
