"""A schema change the fingerprint cannot see is still a change to the contract.

The fingerprint covers the Parsing Canonical Form, which drops defaults, logical types and a
decimal's precision and scale. Each test copies the real history, edits what the latest
version of one event recorded, and checks what `loyalty contract check` and `snapshot` do
when the models no longer match it.
"""

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from loyalty import contract as files
from loyalty.cli_contract import contract
from processors.codec.avro import AvroCodec, schema_fingerprint
from processors.codec.compat import unseen_changes
from processors.contract.transactions import TransactionCompleted

EVENT = TransactionCompleted


@pytest.fixture
def history(tmp_path, monkeypatch) -> Path:
    """A copy of the history and the golden corpus that the contract commands use."""
    monkeypatch.setattr(files, "HISTORY_DIR", shutil.copytree(files.HISTORY_DIR, tmp_path / "h"))
    monkeypatch.setattr(files, "GOLDEN_DIR", shutil.copytree(files.GOLDEN_DIR, tmp_path / "g"))
    return files.HISTORY_DIR


def recorded_differently(edit: Callable[[dict[str, Any]], None]) -> Path:
    """Edit the latest recorded version of EVENT in place, as if the model had changed since."""
    latest = files.history_versions(EVENT)[-1]
    schema = json.loads(latest.read_text())
    edit(schema)
    latest.write_text(json.dumps(schema, indent=2) + "\n")
    return latest


def line_item(schema: dict[str, Any], name: str) -> dict[str, Any]:
    lines = next(f for f in schema["fields"] if f["name"] == "lines")
    return next(f for f in lines["type"]["items"]["fields"] if f["name"] == name)


def field(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in schema["fields"] if f["name"] == name)


def problems_of_event() -> list[str]:
    return [p for p in files.history_problems() if p.startswith(f"{EVENT.__name__}:")]


def check() -> tuple[int, str]:
    result = CliRunner().invoke(contract, ["check"])
    return result.exit_code, " ".join(result.output.split())


def test_a_changed_decimal_scale_is_refused_though_the_fingerprint_stays(history):
    recorded = recorded_differently(lambda s: line_item(s, "quantity")["type"].update(scale=2))
    assert schema_fingerprint(json.loads(recorded.read_text())).hex() in recorded.stem

    [problem] = problems_of_event()
    assert "TransactionCompleted.lines[].quantity: scale 2 → 3" in problem
    assert "refused" in problem
    status, output = check()
    assert status == 1
    assert "TransactionCompleted.lines[].quantity: scale 2 → 3" in output
    before = sorted(history.rglob("*"))
    with pytest.raises(files.ContractError, match="add a field with a new name"):
        files.snapshot()
    assert sorted(history.rglob("*")) == before


def test_a_changed_timestamp_unit_is_refused(history):
    micros = {"logicalType": "timestamp-micros"}
    recorded_differently(lambda s: field(s, "occurred_at")["type"].update(micros))

    [problem] = problems_of_event()
    assert "occurred_at: logicalType 'timestamp-micros' → 'timestamp-millis'" in problem
    with pytest.raises(files.ContractError):
        files.snapshot()


def test_a_changed_default_is_recorded_as_a_new_version_with_the_same_fingerprint(history):
    recorded_differently(lambda s: line_item(s, "discount_cents").update(default=5))
    assert EVENT.__name__ in files.unrecorded_versions()
    [problem] = problems_of_event()
    assert "not in history" in problem
    assert "discount_cents: default 5 → 0" in problem
    status, output = check()
    assert status == 1
    assert "discount_cents: default 5 → 0" in output

    files.snapshot()

    assert problems_of_event() == []
    first, second = files.history_versions(EVENT)[-2:]
    assert first.stem.split("-")[1] == second.stem.split("-")[1]  # one fingerprint, two versions
    golden = files.GOLDEN_DIR / EVENT.avro_name() / f"{second.stem.split('-')[1]}.avro"
    assert type(AvroCodec(history_dir=history).decode(golden.read_bytes())) is EVENT


def test_a_changed_doc_is_no_new_version(history):
    recorded_differently(lambda s: field(s, "occurred_at").update(doc="Said otherwise."))
    assert problems_of_event() == []
    assert EVENT.__name__ not in files.unrecorded_versions()


def test_unseen_changes_name_where_and_what():
    schema = {
        "type": "record", "name": "R", "namespace": "x", "doc": "A record.",
        "fields": [
            {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            {"name": "n", "type": ["null", {"type": "bytes", "logicalType": "decimal",
                                            "precision": 12, "scale": 3}], "default": None},
            {"name": "tags", "type": {"type": "map", "values": "string"}, "default": {}},
        ],
    }  # fmt: skip
    changed = json.loads(json.dumps(schema))
    changed["doc"] = "Another doc."
    changed["fields"][0]["type"]["logicalType"] = "timestamp-micros"
    changed["fields"][1]["type"][1]["precision"] = 14
    changed["fields"][2]["default"] = {"a": "b"}

    found = unseen_changes(schema, changed)

    assert [str(change) for change in found] == [
        "R.at: logicalType 'timestamp-millis' → 'timestamp-micros'",
        "R.n: precision 12 → 14",
        "R.tags: default {} → {'a': 'b'}",
    ]
    assert [change.rereads_bytes for change in found] == [True, True, False]
    assert schema_fingerprint(schema) == schema_fingerprint(changed)
    assert unseen_changes(schema, schema) == []
