"""Static targeting on the real stack: members who never act are targeted too. The worker
copies a static publication to every member partition (`fan_out_static_targeting`), and each
partition decides its members, after making sure its copy of the configuration knows the
offer the tick names (ADR 13)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from loyalty import stack
from loyalty.producing import publish_events
from loyalty.services import Services
from processors.contract.ledger import LedgerEventRecorded
from processors.contract.offer_definition import TargetingKind, TargetingTiming
from processors.contract.offers import OfferTargeted
from tests.integration.test_worker_ledger import Collector
from tests.rules.given import enrolled, program
from tests.rules.offers.given_offers import offer
from tests.rules.offers.given_targeting import audience, targeting

pytestmark = pytest.mark.integration


async def test_a_static_list_offer_targets_listed_members_who_never_act(stack_settings, tmp_path):
    run = uuid.uuid4().hex[:8]
    settings = stack_settings.model_copy(update={"topic_prefix": f"st{run}."})
    await asyncio.to_thread(stack.up, settings)
    config = program(f"P_{run}", event_id=f"cfg-{run}")
    members = [f"{run}-m{n}" for n in range(6)]
    listed = members[1::2]
    ledger = Collector(
        settings.bootstrap_servers,
        settings.topic("loyalty.ledger.v1"),
        settings.partitions,
        lambda e: isinstance(e, LedgerEventRecorded),
    )
    offers = Collector(settings.bootstrap_servers, settings.topic("loyalty.offers.v1"),
                       settings.partitions, lambda e: isinstance(e, OfferTargeted))  # fmt: skip
    await ledger.start()
    await offers.start()
    await publish_events(settings, [config])
    services = Services(settings, tmp_path)
    worker = services.start("worker", "worker")
    try:
        await publish_events(settings, [enrolled(m, programs=[config.program_id]) for m in members])
        assert await ledger.until(lambda es: len(es) >= len(members), 120), worker.log_tail()
        # Published once the members exist, with no behaviour to follow: only the tick decides.
        vip = offer(
            f"VIP_{run}",
            program_id=config.program_id,
            targeting=targeting(TargetingKind.AUDIENCE_LIST, TargetingTiming.STATIC,
                                audience_id=f"VIP_{run}"),
        )  # fmt: skip
        await publish_events(settings, [audience(f"VIP_{run}", *listed), vip])
        assert await offers.until(lambda es: len(es) >= len(listed), 120), worker.log_tail()
        await offers.until(lambda es: len(es) > len(listed), 3)  # nothing more should come
    finally:
        services.stop()
        await ledger.stop()
        await offers.stop()

    got = sorted((e.member_id, e.offer_id, e.in_control_group) for e in offers.events)
    assert got == [(m, vip.offer_id, False) for m in listed]
