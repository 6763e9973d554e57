"""A member who shops more than `PARKED_MAX` times before enrolling, on the real worker: the
purchase beyond the limit is dead-lettered (`REFUSED`, `parked_limit`), not dropped;
`loyalty dead-letters list` shows it and `loyalty dead-letters replay --refusal parked_limit`
after the enrolment books it; `loyalty audit` accounts for every record. Waits are bounds
far beyond what they take."""

from __future__ import annotations

import asyncio

import pytest
from click.testing import CliRunner, Result

from loyalty.audit import audit, read_topic, uncommitted
from loyalty.cli import main
from loyalty.dead_letters import chosen, read_letters
from loyalty.producing import publish_events
from loyalty.services import Services
from processors.base.topics import LEDGER
from processors.codec.avro import AvroCodec
from processors.contract.activities import ActivityKind
from processors.contract.ledger import LedgerEventRecorded
from processors.rules.ledger.purchases import PARKED_MAX
from tests.integration.test_rewards_api import engine  # noqa: F401
from tests.integration.test_worker_runtime import until
from tests.rules.given import activity, bought, enrolled, program

pytestmark = pytest.mark.integration

MEMBER = "late-joiner"


async def cli(*args: str) -> Result:
    """`loyalty ...` as a user runs it (its own event loop, so on a thread of its own)."""
    return await asyncio.to_thread(CliRunner().invoke, main, list(args))


async def balance(settings) -> int:  # type: ignore[no-untyped-def]
    codec = AvroCodec.with_history()
    records = await read_topic(
        settings.bootstrap_servers,
        settings.topic(LEDGER.name),
        LEDGER.partitions(settings.partitions),
    )
    ledger = [e for _, v in records if isinstance(e := codec.decode(v), LedgerEventRecorded)]
    mine = [e for e in ledger if e.member_id == MEMBER]
    return sum(b.balance for b in mine[-1].balances_after) if mine else 0


async def test_a_purchase_beyond_the_parked_limit_is_dead_lettered_and_replayed(engine, tmp_path):  # noqa: F811
    async def settled() -> bool:
        return await uncommitted(engine) == 0

    services = Services(engine, tmp_path)
    worker = services.start("worker", "worker")
    try:
        await publish_events(engine, [program()])
        purchases = [bought(MEMBER, f"T{n}", cents=100) for n in range(PARKED_MAX + 1)]
        await publish_events(engine, purchases)
        # Another member's app event before their enrolment: it waits too (a user's trial saw
        # it dropped with a note, and the audit did not read the activities at all).
        await publish_events(engine, [activity("early-app-user", ActivityKind.APP_DOWNLOAD)])
        assert await until(settled, 180), worker.log_tail()
        (letter,) = chosen(await read_letters(engine), refusal="parked_limit")
        assert letter.letter.event_type == "TransactionCompleted"
        assert f"of member {MEMBER} already wait for their enrolment" in letter.letter.error

        listed = await cli("dead-letters", "list", "--refusal", "parked_limit")
        assert listed.exit_code == 0, listed.output
        assert "REFUSED parked_limit" in listed.output
        refused = await cli("dead-letters", "replay")  # nothing chosen: a usage error
        assert refused.exit_code == 2
        assert "choose what to replay" in refused.output

        waiting = await audit(engine)  # parked is not lost: the audit says they wait
        assert waiting.ok, waiting.unaccounted[:5]
        assert waiting.accounted["waiting for the member's enrolment (parked)"] == PARKED_MAX + 1
        assert waiting.accounted["dead-lettered"] == 1

        await publish_events(engine, [enrolled(MEMBER)])
        assert await until(settled, 60), worker.log_tail()
        assert await balance(engine) == PARKED_MAX  # the parked ones paid, not the refused one

        replayed = await cli("dead-letters", "replay", "--refusal", "parked_limit")
        assert replayed.exit_code == 0, replayed.output
        assert "replayed 1 record(s)" in replayed.output

        async def booked() -> bool:
            return await settled() and await balance(engine) == PARKED_MAX + 1

        assert await until(booked, 60), worker.log_tail()

        # Replayed again: applied already, a no-op (one id, one event); nothing doubles.
        again = await cli("dead-letters", "replay", "--refusal", "parked_limit")
        assert "replayed 1 record(s)" in again.output
        assert await until(settled, 60), worker.log_tail()
        assert await balance(engine) == PARKED_MAX + 1
    finally:
        services.stop()
    report = await audit(engine)
    assert report.ok, report.unaccounted[:5]
