"""The README's run command: the whole engine on the real stack, end to end."""

import asyncio
import socket
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from loyalty import stack
from loyalty.demo import PROGRAM_ID, STOPPING, demo_phases, run_demo
from processors.contract.ledger import LedgerEventType
from processors.contract.transactions import TransactionCompleted

pytestmark = pytest.mark.integration


NOW = datetime(2026, 12, 6, 6, 40, 12, tzinfo=UTC)


def test_the_demo_stream_is_deterministic_and_phased():
    phases = demo_phases(5, run="r1", now=NOW)
    assert [len(phase) for phase in phases] == [5, 15, 2]
    assert demo_phases(5, run="r1", now=NOW) == phases
    assert all(isinstance(e, TransactionCompleted) for e in phases[1])
    assert demo_phases(5, run="r2", now=NOW)[1][0].event_id != phases[1][0].event_id


def test_the_demo_dates_what_it_books_inside_the_ledgers_default_window():
    # The README's example ledger call has no from/to: the API shows the last 7 days.
    purchases, spend_and_return = demo_phases(20, run="r1", now=NOW)[1:]
    dated = [e.occurred_at for e in [*purchases, *spend_and_return]]
    assert all(NOW - timedelta(days=7) <= at <= NOW for at in dated)
    assert max(e.occurred_at for e in purchases) <= min(e.occurred_at for e in spend_and_return)


def test_the_readme_and_the_demo_say_ctrl_c_leaves_kafka_and_postgres_running():
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    run_section = readme.split("## The two commands", 1)[1].split("## What runs where", 1)[0]
    assert "Ctrl-C stops everything" not in readme
    assert "loyalty stack down" in run_section
    assert "loyalty stack down" in STOPPING


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_the_demo_runs_worker_projector_and_api_end_to_end(
    stack_settings, own_database_url, tmp_path
):
    # Its own topics and its own database: nothing from other tests or earlier demos.
    settings = stack_settings.model_copy(
        update={"topic_prefix": f"demo{uuid.uuid4().hex[:6]}.", "database_url": own_database_url}
    )
    await asyncio.to_thread(stack.up, settings)
    report = await run_demo(
        settings,
        members=4,
        console=Console(quiet=True),
        log_dir=tmp_path,
        api_port=free_port(),
        serve=False,
    )

    types = {e.event_type for e in report.ledger_events}
    assert {
        LedgerEventType.CUSTOMER_REGISTRATION,
        LedgerEventType.TRANSACTION_ADD,
        LedgerEventType.POINTS_REDEMPTION,
        LedgerEventType.TRANSACTION_RETURN,
        LedgerEventType.OFFER_AWARD,  # the demo offer: 250 points on $10 or more
    } <= types
    last = [e for e in report.ledger_events if e.member_id == "M00001"][-1]
    assert report.balance is not None
    programs = {p["program_id"]: p["total_points"] for p in report.balance["programs"]}
    assert programs[PROGRAM_ID] == sum(b.balance for b in last.balances_after)
    # The README's example call (no filter) shows this run's purchases.
    assert report.ledger_page is not None
    shown = {e["event_type"] for e in report.ledger_page["events"]}
    assert LedgerEventType.TRANSACTION_ADD.value in shown
