"""The contract's files stay true to the models, and every past version keeps decoding.

If one of these fails after a model change: `loyalty contract generate` (schemas, docs), then
`loyalty contract snapshot` (a new version in the history, with its golden example).
"""

import io
import json

import fastavro
import pytest
from fastavro.utils import generate_many
from pydantic import Field

from loyalty import contract as files
from processors.codec import framing
from processors.codec.avro import AvroCodec, schema_fingerprint
from processors.codec.json_form import from_json_object, to_json_object
from processors.codec.schemas import expanded, named_types
from processors.contract.base import Record
from processors.contract.catalogue import all_events
from processors.contract.deadletter import DeadLettered

EVENTS = all_events()


@pytest.fixture(scope="module")
def codec() -> AvroCodec:
    return AvroCodec.with_history()


def test_schema_files_are_generated_from_the_current_models():
    assert files.stale_schema_files() == []


def test_every_current_schema_is_recorded_in_the_history():
    assert files.unrecorded_versions() == []


def test_the_contract_doc_is_current():
    assert files.DOCS_FILE.read_text() == files.render_docs()


def test_every_field_of_every_schema_is_documented():
    for path in files.SCHEMAS_DIR.glob("*.avsc"):
        schema = json.loads(path.read_text())
        assert schema.get("doc"), path.name
        for field in schema.get("fields", []):
            assert field.get("doc"), f"{path.name}: {field['name']}"


def shipped_schemas() -> list[tuple[str, dict]]:
    paths = sorted(files.SCHEMAS_DIR.glob("*.avsc")) + sorted(files.EVENTS_DIR.glob("*.avsc"))
    return [(str(p.relative_to(files.SCHEMAS_DIR)), json.loads(p.read_text())) for p in paths]


def docs_of(schema) -> list[str]:
    """Every doc in a schema, nested definitions included."""
    if isinstance(schema, list):
        return [doc for branch in schema for doc in docs_of(branch)]
    if not isinstance(schema, dict):
        return []
    found = [schema["doc"]] if "doc" in schema else []
    for field in schema.get("fields", []):
        found += docs_of(field)
    for key in ("type", "items", "values"):
        found += docs_of(schema.get(key))
    return found


def test_no_doc_ends_a_generated_comment_early():
    # Avro's Java compiler copies docs into Javadoc comments, which end at the first `*/`.
    for name, schema in shipped_schemas():
        docs = docs_of(schema)
        assert docs, name
        assert not [doc for doc in docs if "*/" in doc or "\\u" in doc], name


def test_the_generator_rewrites_what_would_end_a_comment():
    class Quirky(Record):
        """Pays AMOUNT_OFF_*/FREE_ITEM discounts."""

        path: str = Field(description="Like C:\\users or /* a comment */.")

    schema = named_types([Quirky])[Quirky.avro_name()]
    assert schema["doc"] == "Pays AMOUNT_OFF_* /FREE_ITEM discounts."
    assert schema["fields"][0]["doc"] == "Like C:\\ users or /* a comment * /."


def test_each_event_file_is_self_contained_and_is_what_the_engine_writes_with():
    codec = AvroCodec()
    for event in EVENTS:
        path = files.EVENTS_DIR / f"{event.avro_name()}.avsc"
        schema = json.loads(path.read_text())
        fastavro.parse_schema(schema, named_schemas={})  # raises on a name it does not define
        assert schema_fingerprint(schema) == codec.fingerprint_of(event), event.__name__


def test_each_event_file_defines_every_type_before_using_it():
    # Avro Java 1.12 checks a field's default when it reads the field: an enum field whose
    # enum is defined later (or elsewhere) has its default refused.
    for event in EVENTS:
        schema = json.loads((files.EVENTS_DIR / f"{event.avro_name()}.avsc").read_text())
        assert used_before_defined(schema, defined=set()) == [], event.__name__


def test_the_one_type_files_parse_in_the_shipped_order():
    order = files.PARSE_ORDER_FILE.read_text().splitlines()
    assert sorted(order) == sorted(path.name for path in files.SCHEMAS_DIR.glob("*.avsc"))
    defined: set[str] = set()
    parsed: dict = {}
    read = {}
    for name in order:
        schema = json.loads((files.SCHEMAS_DIR / name).read_text())
        assert used_before_defined(schema, defined) == [], name
        fastavro.parse_schema(schema, named_schemas=parsed)  # one parser, file by file
        read[name.removesuffix(".avsc")] = schema
    codec = AvroCodec()
    for event in EVENTS:
        print_ = schema_fingerprint(expanded(event.avro_name(), read))
        assert print_ == codec.fingerprint_of(event), event.__name__


def used_before_defined(schema, defined: set[str]) -> list[str]:
    """Names `schema` refers to before they are defined, walking it as a parser reads it."""
    if isinstance(schema, str):
        return [schema] if "." in schema and schema not in defined else []
    if isinstance(schema, list):
        return [name for branch in schema for name in used_before_defined(branch, defined)]
    if schema.get("type") in ("record", "enum", "fixed"):
        defined.add(f"{schema['namespace']}.{schema['name']}")
    found = []
    for field in schema.get("fields", []):
        found += used_before_defined(field["type"], defined)
    for key in ("items", "values"):
        if key in schema:
            found += used_before_defined(schema[key], defined)
    return found


def test_every_enum_has_a_default_so_new_symbols_do_not_break_old_readers():
    for path in files.SCHEMAS_DIR.glob("*.avsc"):
        schema = json.loads(path.read_text())
        if schema["type"] == "enum":
            assert schema.get("default") == "UNKNOWN", path.name


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.__name__)
def test_the_example_round_trips_through_json_and_avro_unchanged(codec, event):
    example = files.example(event)
    model = from_json_object(example)
    assert type(model) is event
    assert to_json_object(model) == example
    assert codec.decode(codec.encode(model)) == model


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.__name__)
def test_every_recorded_version_is_readable_by_the_current_schema(event):
    current = fastavro.parse_schema(files.current_schemas()[event])
    for path in files.history_versions(event):
        old = fastavro.parse_schema(json.loads(path.read_text()))
        for datum in generate_many(old, 25):
            buffer = io.BytesIO()
            fastavro.schemaless_writer(buffer, old, datum)
            buffer.seek(0)
            fastavro.schemaless_reader(buffer, old, current)  # raises if incompatible


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.__name__)
def test_the_golden_corpus_of_every_version_still_decodes(codec, event):
    versions = files.history_versions(event)
    assert versions, f"{event.__name__} has no recorded version"
    for path in versions:
        fingerprint = path.stem.split("-", 1)[1]
        assert schema_fingerprint(json.loads(path.read_text())).hex() == fingerprint
        golden = (files.GOLDEN_DIR / event.avro_name() / f"{fingerprint}.avro").read_bytes()
        assert framing.unframe(golden).schema_ref == bytes.fromhex(fingerprint)
        decoded = codec.decode(golden)
        assert type(decoded) is event
        if path == versions[-1]:
            assert to_json_object(decoded) == files.example(event)


def test_every_event_lives_on_a_contract_topic_with_a_partition_key():
    from processors.base.topics import CONTRACT_TOPICS

    names = {spec.name for spec in CONTRACT_TOPICS}
    for event in EVENTS:
        assert event.topic in names, event.__name__
        assert event.key_field in event.model_fields or event is DeadLettered, event.__name__
