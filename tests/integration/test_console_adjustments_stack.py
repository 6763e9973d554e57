"""A points adjustment over the threshold, end to end on the real stack: an agent submits it in
the console, nothing reaches Kafka until an admin approves it; approved (and approved again,
and published again), it is on the commands topic exactly once, the real worker books it and
the real projector shows it in the member's ledger on the console's member page
(docs/adr/0036-member-care-console.md)."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from loyalty.producing import publish_events
from loyalty.services import Services
from processors.base.settings import Settings
from processors.base.topics import REDEMPTIONS
from processors.codec.avro import AvroCodec
from processors.contract.redemptions import PointsAdjustmentRequested
from projections.api.auth import StaffRole
from projections.api.commands import KafkaCommandSink
from projections.console.adjustments import AdjustmentPolicy
from tests.console_given import NOW, adjustment_form_of, console_app, csrf_of, signed_in
from tests.integration.test_member_services_api import count_is
from tests.integration.test_rewards_api import engine
from tests.integration.test_worker_runtime import until
from tests.rules.given import PROGRAM, enrolled, program

pytestmark = pytest.mark.integration

__all__ = ["engine"]  # the fixture, shared with the rewards API's tests

MEMBER = "care-stack-1"


async def adjustments_on(settings: Settings) -> list[PointsAdjustmentRequested]:
    """Every points adjustment request on the commands topic, all partitions, to its end."""
    topic = settings.topic(REDEMPTIONS.name)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    await consumer.start()
    try:
        count = REDEMPTIONS.partitions(settings.partitions)
        partitions = [TopicPartition(topic, p) for p in range(count)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        values: list[bytes] = []

        async def behind() -> bool:
            return any([await consumer.position(p) < ends[p] for p in partitions])

        while await behind():
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                values += [record.value for record in batch if record.value is not None]
    finally:
        await consumer.stop()
    codec = AvroCodec.with_history()
    decoded = [codec.decode(value) for value in values]
    return [event for event in decoded if isinstance(event, PointsAdjustmentRequested)]


async def test_an_approved_adjustment_reaches_kafka_once_and_the_ledger_shows_it(engine, tmp_path):
    services = Services(engine, tmp_path)
    worker = services.start("worker", "worker")
    projector = services.start("projector", "project")
    try:
        await publish_events(engine, [program(), enrolled(MEMBER)])
        opened = (
            f"SELECT count(DISTINCT member_id) FROM member_balances WHERE member_id = '{MEMBER}'"
        )
        assert await until(count_is(engine, opened, 1), 180), (
            worker.log_tail() + projector.log_tail()
        )
        sink = KafkaCommandSink(engine.bootstrap_servers, topic_of=engine.topic)
        async with console_app(engine.dsn, command_sink=sink) as app:
            app.state.adjustment_policy = AdjustmentPolicy(approval_over=1_000)
            async with signed_in(app, "ava", StaffRole.AGENT) as agent:
                page = await agent.get(f"/console/members/{MEMBER}")
                submitted = await agent.post(
                    f"/console/members/{MEMBER}/adjustments",
                    data={"program_id": PROGRAM, "direction": "credit", "points": "2500",
                          "reason_code": "service recovery", "note": "order lost twice",
                          **adjustment_form_of(page.text)},
                )  # fmt: skip
            assert submitted.headers["location"].endswith("?adjusted=pending")
            assert await adjustments_on(engine) == []
            with psycopg.connect(engine.dsn) as conn:
                (adjustment_id,) = conn.execute(  # type: ignore[misc]
                    "SELECT adjustment_id FROM staff_points_adjustments"
                ).fetchone()
            async with signed_in(app, "root", StaffRole.ADMIN) as admin:
                token = csrf_of((await admin.get("/console/approvals")).text)
                answers = [
                    await admin.post(f"/console/approvals/{adjustment_id}/{what}",
                                     data={"csrf_token": token})
                    for what in ("approve", "approve", "publish")
                ]  # fmt: skip
            assert [a.status_code for a in answers] == [303, 409, 409]
            booked = (
                f"SELECT count(*) FROM ledger_events WHERE member_id = '{MEMBER}'"
                " AND event_type = 'MANUAL_ADJUSTMENT'"
            )
            answered = (
                f"SELECT count(*) FROM request_outcomes WHERE member_id = '{MEMBER}'"
                f" AND command_id = 'console-{adjustment_id}' AND accepted"
            )
            assert await until(count_is(engine, answered, 1), 120), (
                worker.log_tail() + projector.log_tail()
            )
            assert await until(count_is(engine, booked, 1), 120), (
                worker.log_tail() + projector.log_tail()
            )
            async with signed_in(app, "ava", StaffRole.AGENT) as agent:
                # The app's clock stands still at NOW; the worker books at the real time.
                window = {
                    "from": (NOW - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
                    "to": (NOW + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
                }
                member_page = await agent.get(f"/console/members/{MEMBER}", params=window)
        sent = await adjustments_on(engine)
    finally:
        services.stop()
    assert len(sent) == 1
    assert sent[0].points == 2500
    assert sent[0].command_id == f"console-{adjustment_id}"
    ledger = member_page.text.split('id="ledger"')[1].split("</table>")[0]
    assert "MANUAL_ADJUSTMENT" in ledger
    assert "CREDIT 2,500" in ledger
    balances = member_page.text.split('id="balances"')[1].split("</table>")[0]
    assert "2,500" in balances
    made = member_page.text.split("<caption>Adjustments made in the console")[1]
    assert ">booked<" in made
