"""`loyalty simulate`: outputs on stdout as JSON lines, and nothing it read passes in silence:
a line that is not an event fails the run, an input that changed nothing is said on stderr."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from loyalty.cli_simulate import simulate

PURCHASE = {
    "type": "TransactionCompleted", "event_id": "e1", "occurred_at": "2026-12-01T10:00:00Z",
    "transaction_id": "T1", "transaction_number": "N1", "member_id": "M1", "market": "CA",
    "currency": "CAD", "source": "INSTORE", "store": {"store_id": "S1", "province": "ON"},
    "till_id": "T1", "lines": [{"line_id": "1", "sku": "A", "quantity": "1",
                                "unit_price_cents": 100, "amount_cents": 100}],
}  # fmt: skip


def run(tmp_path: Path, *lines: dict, args: tuple[str, ...] = ()):
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return CliRunner().invoke(simulate, [*args, str(path)])


def test_a_line_that_is_not_an_event_fails_the_run_with_where_and_why(tmp_path):
    broken = {k: v for k, v in PURCHASE.items() if k != "source"}
    result = run(tmp_path, broken)
    assert result.exit_code == 1
    assert "events.jsonl:1: TransactionCompleted: source: Field required" in result.output


def test_an_input_that_changed_nothing_is_said_and_notes_say_why(tmp_path):
    """Found by trying it as a user: a purchase by a member who never enrolled gave no output
    and exit 0, with no hint why."""
    quiet = run(tmp_path, PURCHASE)
    told = run(tmp_path, PURCHASE, args=("--notes",))

    assert quiet.exit_code == told.exit_code == 0
    assert "1 input(s) changed nothing; --notes says why" in quiet.output
    assert "parked until the member enrols" in told.output
