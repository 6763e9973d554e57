"""The contract's files: generated `.avsc` files, version history, golden corpus and docs.

- `schemas/<full name>.avsc`: one named type per file, generated from the models, and
  `schemas/parse-order.txt`: those files in an order a parser can read them (each after the
  types it uses).
- `schemas/events/<event full name>.avsc`: each event's current schema, self-contained (every
  named type defined at its first use), for consumers that load one file per event.
- `schemas/history/<event full name>/<NNN>-<fingerprint>.avsc`: every version of every event
  schema ever published (expanded, self-contained). The codec reads old data with them, and the
  evolution test proves the current schema reads every one of them.
- `schemas/examples/<Event>.json`: one example per event in the JSON form.
- `tests/golden/<event full name>/<fingerprint>.avro`: the example encoded with that version;
  every file must keep decoding.
- `docs/contract.md`: how to consume the contract (written by hand, above a marker), then
  topics, keys, events, fields and examples, generated.

A version is the whole schema but its docs: a change the fingerprint cannot see (a default, a
decimal's scale) is a new version too, and one that changes how written bytes read is refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from processors.base.settings import REPO_ROOT
from processors.base.topics import CONTRACT_TOPICS
from processors.codec.avro import HISTORY_DIR as HISTORY_DIR
from processors.codec.avro import AvroCodec, schema_fingerprint
from processors.codec.compat import UnseenChange, unseen_changes
from processors.codec.json_form import from_json_object
from processors.codec.schemas import expanded, named_types, parse_order
from processors.contract.base import Event
from processors.contract.catalogue import all_events, events_on

SCHEMAS_DIR = REPO_ROOT / "schemas"
EVENTS_DIR = SCHEMAS_DIR / "events"
PARSE_ORDER_FILE = SCHEMAS_DIR / "parse-order.txt"
EXAMPLES_DIR = SCHEMAS_DIR / "examples"
GOLDEN_DIR = REPO_ROOT / "tests" / "golden"
DOCS_FILE = REPO_ROOT / "docs" / "contract.md"
DOCS_MARKER = "<!-- Generated below by `loyalty contract generate`: edit above this line only. -->"


class ContractError(Exception):
    """A change the contract's history cannot record; the message says what to do instead."""


def _dump(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def schema_files() -> dict[Path, str]:
    """Every file the models define under `schemas/` (but the history), with its content."""
    types = named_types(all_events())
    wanted = {SCHEMAS_DIR / f"{name}.avsc": _dump(schema) for name, schema in types.items()}
    for event in all_events():
        path = EVENTS_DIR / f"{event.avro_name()}.avsc"
        wanted[path] = _dump(expanded(event.avro_name(), types))
    wanted[PARSE_ORDER_FILE] = "".join(f"{name}.avsc\n" for name in parse_order(types))
    return wanted


def _generated_files() -> Iterator[Path]:
    yield from SCHEMAS_DIR.glob("*.avsc")
    yield from EVENTS_DIR.glob("*.avsc")


def stale_schema_files() -> list[str]:
    """Differences between the generated files in `schemas/` and the models (empty when
    current)."""
    wanted = schema_files()
    problems = [
        f"{path.relative_to(SCHEMAS_DIR)} is out of date"
        for path, text in wanted.items()
        if not path.exists() or path.read_text() != text
    ]
    problems += [
        f"{path.relative_to(SCHEMAS_DIR)} is not defined by any model"
        for path in _generated_files()
        if path not in wanted
    ]
    return problems


def generate_schema_files() -> list[Path]:
    """Write the schema files from the models; delete ones no model defines. Returns changes."""
    wanted = schema_files()
    changed = []
    EVENTS_DIR.mkdir(exist_ok=True)
    for path, text in wanted.items():
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            changed.append(path)
    for path in list(_generated_files()):
        if path not in wanted:
            path.unlink()
            changed.append(path)
    return changed


def example(event: type[Event]) -> dict[str, Any]:
    """The JSON-form example of `event` from `schemas/examples`."""
    loaded: dict[str, Any] = json.loads((EXAMPLES_DIR / f"{event.__name__}.json").read_text())
    return loaded


def current_schemas() -> dict[type[Event], dict[str, Any]]:
    """The expanded current schema of every event."""
    types = named_types(all_events())
    return {event: expanded(event.avro_name(), types) for event in all_events()}


def history_versions(event: type[Event]) -> list[Path]:
    """The recorded versions of `event`'s schema, oldest first."""
    return sorted((HISTORY_DIR / event.avro_name()).glob("*.avsc"))


def unseen_changes_since_recorded(event: type[Event], schema: dict[str, Any]) -> list[UnseenChange]:
    """What changed in `schema` since the newest recorded version with its fingerprint.

    Empty when that version records it (docs aside), or when no version has its fingerprint
    (then the change is one the fingerprint sees).
    """
    print_ = schema_fingerprint(schema).hex()
    same_print = [path for path in history_versions(event) if path.stem.endswith(print_)]
    if not same_print:
        return []
    return unseen_changes(json.loads(same_print[-1].read_text()), schema)


def _is_recorded(event: type[Event], schema: dict[str, Any]) -> bool:
    print_ = schema_fingerprint(schema).hex()
    recorded = any(path.stem.endswith(print_) for path in history_versions(event))
    return recorded and not unseen_changes_since_recorded(event, schema)


def unrecorded_versions() -> list[str]:
    """Events whose current schema is not yet in the history (a snapshot is due), including
    those changed where the fingerprint cannot see (a default, an alias)."""
    return [
        event.__name__
        for event, schema in current_schemas().items()
        if not _is_recorded(event, schema)
    ]


def history_problems() -> list[str]:
    """Why the history does not record the current schemas, one line each (empty when it
    does). A change that `snapshot` would refuse says so and what to do instead."""
    problems = []
    for event, schema in current_schemas().items():
        if _is_recorded(event, schema):
            continue
        changes = unseen_changes_since_recorded(event, schema)
        rereading = [change for change in changes if change.rereads_bytes]
        if rereading:
            problems += [_refusal(event, schema, change) for change in rereading]
        elif changes:
            unseen = "; ".join(str(change) for change in changes)
            problems.append(f"{event.__name__}: schema not in history ({unseen}; unseen by "
                            "the fingerprint, so a new version with the same one)")  # fmt: skip
        else:
            problems.append(f"{event.__name__}: schema not in history")
    return problems


def _refusal(event: type[Event], schema: dict[str, Any], change: UnseenChange) -> str:
    print_ = schema_fingerprint(schema).hex()
    return (
        f"{event.__name__}: refused: {change}. Records already written with fingerprint "
        f"{print_} would read differently, and the fingerprint cannot tell the versions apart: "
        "keep the recorded attribute and add a field with a new name instead"
    )


def snapshot() -> list[Path]:
    """Record each event's current schema in the history, with a golden encoded example.

    A change the fingerprint cannot see is a version of its own under the same fingerprint
    (its golden example is the same bytes, kept); one that would change how records already
    written read is refused (ContractError) before anything is written.
    """
    refused = [
        _refusal(event, schema, change)
        for event, schema in current_schemas().items()
        for change in unseen_changes_since_recorded(event, schema)
        if change.rereads_bytes
    ]
    if refused:
        raise ContractError("\n".join(refused))
    codec = AvroCodec()
    written = []
    for event, schema in current_schemas().items():
        if _is_recorded(event, schema):
            continue
        print_ = schema_fingerprint(schema).hex()
        folder = HISTORY_DIR / event.avro_name()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{len(history_versions(event)) + 1:03d}-{print_}.avsc"
        path.write_text(_dump(schema))
        written.append(path)
        golden = GOLDEN_DIR / event.avro_name() / f"{print_}.avro"
        if not golden.exists():
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_bytes(codec.encode(from_json_object(example(event))))
            written.append(golden)
    return written


def render_docs() -> str:
    """docs/contract.md: its hand-written part (above `DOCS_MARKER`) as it is, then topics,
    keys, the parse order, events, their fields and examples, generated."""
    types = named_types(all_events())
    out = [
        *_hand_written_docs(),
        DOCS_MARKER,
        "",
        "## Reference",
        "",
        "Generated by `loyalty contract generate` from the models in `processors/contract/`. "
        "The Avro schemas are in `schemas/`: one named type per file, and one self-contained "
        "schema per event in `schemas/events/`.",
        "",
        "Every record value is Avro, framed as Avro single-object encoding (`C3 01` + 8-byte "
        "CRC-64-AVRO fingerprint + body) or, with a schema registry, the Confluent wire format "
        "(`00` + 4-byte schema id + body). The JSON form (CLI, scenario files, HTTP API) has the "
        "same field names plus `type` (the event name); timestamps are RFC 3339 UTC, decimals "
        "are strings.",
        "",
        "## Topics",
        "",
        "| topic | direction | key | partitions | events |",
        "|---|---|---|---|---|",
    ]
    for spec in CONTRACT_TOPICS:
        parts = "1" if spec.single_partition else "LOYALTY_PARTITIONS (8)"
        events = ", ".join(f"[{e.__name__}](#{e.__name__.lower()})" for e in events_on(spec.name))
        out.append(f"| `{spec.name}` | {spec.direction.value} | {spec.key} | {parts} | {events} |")
    order = parse_order(types)
    out += [
        "",
        "## Parse order",
        "",
        f"The {len(order)} one-type files in an order every Avro parser reads them in, each "
        "after the types it uses (the same list, one file name a line, is "
        "`schemas/parse-order.txt`):",
        "",
        ", ".join(f"`{name.rpartition('.')[2]}`" for name in order) + ".",
    ]
    out += ["", "## Events", ""]
    for event in all_events():
        schema = types[event.avro_name()]
        out += [
            f"### {event.__name__}",
            "",
            f"Topic `{event.topic}`, key `{event.key_field}`. {schema['doc']}",
            "",
            *_fields_table(schema, types),
            "",
            "Example (JSON form):",
            "",
            "```json",
            json.dumps(example(event), indent=2, ensure_ascii=False),
            "```",
            "",
        ]
    out += ["## Records and enums", ""]
    for name, schema in types.items():
        if any(e.avro_name() == name for e in all_events()):
            continue
        out += [f"### {schema['name']}", "", schema["doc"], ""]
        if schema["type"] == "enum":
            out += ["Symbols: " + ", ".join(f"`{s}`" for s in schema["symbols"]), ""]
        else:
            out += [*_fields_table(schema, types), ""]
    return "\n".join(out).rstrip() + "\n"


def _hand_written_docs() -> list[str]:
    text = DOCS_FILE.read_text() if DOCS_FILE.exists() else ""
    head, found, _ = text.partition(DOCS_MARKER)
    return [*(head if found else "# The contract (v1)\n").rstrip("\n").split("\n"), ""]


def _fields_table(schema: dict[str, Any], types: dict[str, Any]) -> list[str]:
    rows = ["| field | type | doc |", "|---|---|---|"]
    for field in schema["fields"]:
        doc = field["doc"].replace("|", "\\|")
        rows.append(f"| `{field['name']}` | {_type_name(field['type'])} | {doc} |")
    return rows


def _type_name(avro: Any) -> str:
    if isinstance(avro, str):
        short = avro.rpartition(".")[2]
        return f"[{short}](#{short.lower()})" if "." in avro else avro
    if isinstance(avro, list):
        return " \\| ".join(_type_name(branch) for branch in avro)
    if avro.get("logicalType") == "decimal":
        return f"decimal({avro['precision']},{avro['scale']})"
    if "logicalType" in avro:
        return str(avro["logicalType"])
    if avro["type"] == "array":
        return f"array of {_type_name(avro['items'])}"
    if avro["type"] == "map":
        return f"map of {_type_name(avro['values'])}"
    return str(avro["type"])
