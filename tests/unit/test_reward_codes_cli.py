"""`loyalty rewards codes add REWARD FILE` without a broker: the file's codes in batches of at
most LIST_MAX with ids that repeat when the file is published again, every bad row named, a
repeated code kept once, and nothing published when anything is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from loyalty import cli_rewards
from loyalty.cli import main
from processors.contract.config import RewardCodesAdded
from processors.contract.offer_definition import LIST_MAX
from processors.rules.member import Config
from tests.rules.given import T0
from tests.rules.test_rewards import reward


def csv_file(tmp_path: Path, *rows: str, name: str = "codes.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_codes_are_published_in_batches_of_at_most_list_max_in_file_order(tmp_path):
    codes = [f"C{n:05d}" for n in range(LIST_MAX + 2)]
    path = csv_file(tmp_path, "code", *codes)

    upload = cli_rewards.read_upload("COFFEE", path, at=T0)

    assert upload.errors == []
    assert [len(e.codes) for e in upload.events] == [LIST_MAX, 2]
    assert [c for e in upload.events for c in e.codes] == codes
    first = upload.events[0]
    assert (first.reward_id, first.occurred_at, first.source_file_name) == (
        "COFFEE", T0, "codes.csv"
    )  # fmt: skip
    assert first.partition_key() == first.event_id  # keyed by batch on the compacted topic


def test_the_same_file_gives_the_same_ids_and_another_file_or_reward_other_ids(tmp_path):
    path = csv_file(tmp_path, "code", "A1", "A2")
    other = csv_file(tmp_path, "code", "A1", "A3", name="other.csv")

    once = cli_rewards.read_upload("COFFEE", path, at=T0).events
    again = cli_rewards.read_upload("COFFEE", path, at=T0.replace(year=2027)).events

    assert [e.event_id for e in once] == [e.event_id for e in again]
    assert once[0].event_id != cli_rewards.read_upload("COFFEE", other, at=T0).events[0].event_id
    assert once[0].event_id != cli_rewards.read_upload("TEA", path, at=T0).events[0].event_id


def test_bad_rows_are_errors_with_their_row_numbers_and_nothing_is_batched(tmp_path):
    path = csv_file(tmp_path, "code,note", "A1,ok", ",empty", "caf\u00e9,accented", "X" * 129)

    upload = cli_rewards.read_upload("COFFEE", path, at=T0)

    assert upload.events == []
    assert [e.split(": ", 1)[0] for e in upload.errors] == [
        f"{path} row 3", f"{path} row 4", f"{path} row 5",
    ]  # fmt: skip
    assert "no code in the code column" in upload.errors[0]
    assert "printable ASCII" in upload.errors[1]


def test_a_code_repeated_in_the_file_is_reported_and_kept_once(tmp_path):
    path = csv_file(tmp_path, "code", "A1", "A2", "A1")

    upload = cli_rewards.read_upload("COFFEE", path, at=T0)

    assert upload.codes == ["A1", "A2"]
    assert upload.warnings == [f"{path} row 4: 'A1' repeats row 2; kept once"]


def test_a_file_without_the_code_header_is_refused(tmp_path):
    upload = cli_rewards.read_upload("COFFEE", csv_file(tmp_path, "Code", "A1"), at=T0)
    assert upload.errors == [
        f"{tmp_path / 'codes.csv'} row 1: no code header (spelled 'Code'); the first row names "
        "the column: code"
    ]


@pytest.fixture
def published(monkeypatch) -> list[RewardCodesAdded]:
    """What the command would produce (no broker here)."""
    sent: list[RewardCodesAdded] = []

    async def publish(settings, events, codec=None):  # type: ignore[no-untyped-def]
        sent.extend(events)
        return len(sent)

    monkeypatch.setattr(cli_rewards, "publish_events", publish)
    # The config topic as the command reads it: COFFEE gives a code from its stock.
    config = Config()
    config.apply(reward("COFFEE", uses_code_stock=True))
    config.apply(reward("LATTE", uses_code_stock=False))
    monkeypatch.setattr(cli_rewards, "current_config", lambda settings: config)
    return sent


def test_the_command_publishes_the_batches_and_says_so(tmp_path, published):
    path = csv_file(tmp_path, "code", "A1", "A2", "A1")

    result = CliRunner().invoke(main, ["rewards", "codes", "add", "COFFEE", str(path)])

    assert result.exit_code == 0, result.output
    assert [e.codes for e in published] == [["A1", "A2"]]
    assert "warning:" in result.output
    assert "repeats row 2" in result.output
    assert f"published 2 code(s) as {published[0].event_id}" in result.output


def test_the_command_publishes_nothing_when_a_row_is_bad_or_on_a_dry_run(tmp_path, published):
    bad = CliRunner().invoke(
        main, ["rewards", "codes", "add", "COFFEE", str(csv_file(tmp_path, "code", "A\x071"))]
    )
    dry = CliRunner().invoke(
        main,
        ["rewards", "codes", "add", "--dry-run", "COFFEE", str(csv_file(tmp_path, "code", "A1"))],
    )
    unnamed = CliRunner().invoke(
        main, ["rewards", "codes", "add", "caf\u00e9", str(csv_file(tmp_path, "code", "A1"))]
    )

    assert bad.exit_code == 1
    assert "row 2" in bad.output
    assert "nothing published" in bad.output
    assert dry.exit_code == 0
    assert "would publish 1 code(s)" in dry.output
    assert unnamed.exit_code == 2
    assert published == []


@pytest.mark.parametrize(
    ("reward_id", "why"),
    [("COFEE", "no reward COFEE was ever published"), ("LATTE", "takes no code from a stock")],
)
def test_codes_for_a_reward_no_grant_would_take_them_from_are_refused(
    tmp_path, published, reward_id, why
):
    """Found by trying it as a user: a mistyped reward id stocked codes nobody ever got."""
    result = CliRunner().invoke(
        main, ["rewards", "codes", "add", reward_id, str(csv_file(tmp_path, "code", "A1"))]
    )

    assert result.exit_code == 1, result.output
    assert why in result.output
    assert "nothing published" in result.output
    assert published == []


def test_codes_that_differ_only_by_case_are_both_stocked_with_a_warning(tmp_path):
    """Found by trying it as a user: T2CODE-001 and t2code-001 were two codes, silently."""
    path = csv_file(tmp_path, "code", "AB-1", "ab-1", "AB-2")
    upload = cli_rewards.read_upload("COFFEE", path, at=T0)

    assert upload.codes == ["AB-1", "ab-1", "AB-2"]
    [warning] = upload.warnings
    assert "'ab-1' differs from 'AB-1' only by case" in warning
