"""The contract's files stay true to the models, and every past version keeps decoding.

If one of these fails after a model change: `loyalty contract generate` (schemas, docs), then
`loyalty contract snapshot` (a new version in the history, with its golden example).
"""

import io
import json

import fastavro
import pytest
from fastavro.utils import generate_many

from loyalty import contract as files
from processors.codec import framing
from processors.codec.avro import AvroCodec, schema_fingerprint
from processors.codec.json_form import from_json_object, to_json_object
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
