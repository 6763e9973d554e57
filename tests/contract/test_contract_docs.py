"""The consumer guide in docs/contract.md is executed: its Python reads what the engine wrote."""

import re
from collections.abc import Callable

import pytest

from loyalty import contract as files
from processors.codec.avro import AvroCodec
from processors.codec.json_form import from_json_object
from processors.contract.catalogue import all_events


@pytest.fixture(scope="module")
def decode() -> Callable[[bytes], tuple[str, dict]]:
    """The guide's Python example, loaded from this repository's `schemas/`."""
    text = files.DOCS_FILE.read_text().partition(files.DOCS_MARKER)[0]
    section = text.partition("## From Python")[2].partition("\n## ")[0]
    [code] = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    guide: dict = {}
    exec(compile(code, str(files.DOCS_FILE), "exec"), guide)
    writers = guide["load_writers"](files.SCHEMAS_DIR)
    readers = guide["load_readers"](files.SCHEMAS_DIR)
    return lambda value: guide["decode"](value, writers, readers)


def test_the_python_example_decodes_every_golden_record(decode):
    goldens = sorted(files.GOLDEN_DIR.glob("*/*.avro"))
    assert goldens
    for golden in goldens:
        name, record = decode(golden.read_bytes())
        assert name == golden.parent.name
        assert record["event_id"]


@pytest.fixture(scope="module")
def codec() -> AvroCodec:
    return AvroCodec()


@pytest.mark.parametrize("event", all_events(), ids=lambda e: e.__name__)
def test_the_python_example_reads_each_event_as_the_engine_wrote_it(decode, codec, event):
    model = from_json_object(files.example(event))
    name, record = decode(codec.encode(model))
    assert name == event.avro_name()
    assert event.model_validate(record) == model
