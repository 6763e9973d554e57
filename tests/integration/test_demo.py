"""The README's run command: the demo stream makes a real round trip through the broker."""

import pytest
from rich.console import Console

from loyalty.demo import demo_events, run_demo

pytestmark = pytest.mark.integration


def test_the_demo_stream_is_valid_contract_events_in_business_time_order():
    events = list(demo_events(5))
    assert [type(e).__name__ for e in events[:5]] == ["MemberEnrolled"] * 5
    assert len(events) == 5 + 15
    assert [e.occurred_at for e in events] == sorted(e.occurred_at for e in events)
    assert list(demo_events(5)) == events  # deterministic


async def test_every_demo_event_comes_back_from_the_broker(stack_settings):
    received = await run_demo(stack_settings, members=4, seconds=0, console=Console(quiet=True))
    assert received == 4 + 12
