"""The front door admits valid events and refuses everything else with a named reason."""

import io
from datetime import UTC, datetime, timedelta

import fastavro
import pytest

from processors.codec.avro import AvroCodec, Decoded
from processors.codec.framing import frame_single_object
from processors.codec.schemas import expanded, named_types
from processors.contract.deadletter import DeadLettered, DeadLetterReason
from processors.contract.ledger import LedgerEventRecorded
from processors.frontdoor import Delivered, Tombstone, admit
from tests.builders import T0, LedgerBook, credit, purchase

TRANSACTIONS = "loyalty.transactions.v1"


@pytest.fixture(scope="module")
def codec() -> AvroCodec:
    return AvroCodec()


def delivered(
    value: bytes | None, *, key: bytes | None = b"M1", topic: str = TRANSACTIONS
) -> Delivered:
    return Delivered(topic=topic, partition=3, offset=41, key=key, value=value,
                     timestamp_ms=1_793_000_000_000)  # fmt: skip


def test_a_valid_event_on_its_topic_with_its_key_is_admitted(codec):
    event = purchase()
    assert admit(codec, delivered(codec.encode(event))) == event


def test_a_refusal_keeps_the_original_record_and_its_position(codec):
    refused = admit(codec, delivered(b"garbage", key=b"k"))
    assert isinstance(refused, DeadLettered)
    assert refused.reason is DeadLetterReason.NOT_FRAMED
    assert (refused.original_topic, refused.original_partition, refused.original_offset) == (
        TRANSACTIONS, 3, 41,
    )  # fmt: skip
    assert (refused.original_key, refused.original_value) == (b"k", b"garbage")
    assert refused.event_id == f"dlq:{TRANSACTIONS}:3:41"
    assert refused.occurred_at == datetime.fromtimestamp(1_793_000_000, tz=UTC)


def test_an_event_on_the_wrong_topic_is_refused(codec):
    refused = admit(codec, delivered(codec.encode(purchase()), topic="loyalty.activities.v1"))
    assert isinstance(refused, DeadLettered)
    assert refused.reason is DeadLetterReason.WRONG_TOPIC
    assert refused.event_type == "TransactionCompleted"


def test_an_event_keyed_by_another_member_is_refused(codec):
    refused = admit(codec, delivered(codec.encode(purchase()), key=b"M2"))
    assert isinstance(refused, DeadLettered)
    assert refused.reason is DeadLetterReason.KEY_MISMATCH
    assert "member_id" in refused.error


def test_a_null_value_on_the_config_topic_is_a_tombstone_not_a_refusal(codec):
    admitted = admit(codec, delivered(None, key=b"OFFER_1", topic="loyalty.config.v1"))
    assert admitted == Tombstone(b"OFFER_1")


def test_a_null_value_elsewhere_is_refused_as_empty(codec):
    refused = admit(codec, delivered(None))
    assert isinstance(refused, DeadLettered)
    assert refused.reason is DeadLetterReason.EMPTY


def test_a_dead_letter_round_trips_including_arbitrary_bytes(codec):
    refused = admit(codec, delivered(b"\xff\xfe\x00 not utf-8"))
    assert isinstance(refused, DeadLettered)
    assert codec.decode(codec.encode(refused)) == refused


# --- The trusted path: the engine's own output, decoded but not validated again (ADR 39) ------

LEDGER = "loyalty.ledger.v1"


def ledger_record(value: bytes, *, key: bytes | None = b"M1") -> Delivered:
    return delivered(value, key=key, topic=LEDGER)


def recorded():
    return LedgerBook("M1").record(credit(100, expires_at=T0 + timedelta(days=30)))


def test_a_trusted_record_is_admitted_as_its_data_which_the_model_would_accept(codec):
    event = recorded()
    admitted = admit(codec, ledger_record(codec.encode(event)), trusted=True)
    assert isinstance(admitted, Decoded)
    assert admitted.event is LedgerEventRecorded
    assert admitted.data == event.model_dump()
    assert LedgerEventRecorded.model_validate(admitted.data) == event


@pytest.mark.parametrize(
    ("damage", "reason", "cause"),
    [
        (lambda value: value[:-3], DeadLetterReason.MALFORMED, "does not decode"),
        (lambda value: value + b"\x00", DeadLetterReason.MALFORMED, "1 trailing bytes"),
        (lambda value: value[:2] + bytes(8) + value[10:], DeadLetterReason.UNKNOWN_SCHEMA,
         "no known schema has fingerprint"),
        (lambda value: b"garbage", DeadLetterReason.NOT_FRAMED, "neither"),
        (lambda value: b"", DeadLetterReason.EMPTY, "no value"),
    ],
)  # fmt: skip
def test_a_trusted_record_that_does_not_decode_is_still_refused_with_its_cause(
    codec, damage, reason, cause
):
    value = damage(codec.encode(recorded()))
    refused = admit(codec, ledger_record(value), trusted=True)
    assert isinstance(refused, DeadLettered)
    assert refused.reason is reason
    assert cause in refused.error
    assert refused.original_value == value


def test_a_trusted_record_on_the_wrong_topic_or_key_is_still_refused(codec):
    value = codec.encode(recorded())
    elsewhere = admit(codec, delivered(value, topic=TRANSACTIONS), trusted=True)
    stranger = admit(codec, ledger_record(value, key=b"M2"), trusted=True)
    assert isinstance(elsewhere, DeadLettered)
    assert elsewhere.reason is DeadLetterReason.WRONG_TOPIC
    assert isinstance(stranger, DeadLettered)
    assert stranger.reason is DeadLetterReason.KEY_MISMATCH
    assert "member_id 'M1'" in stranger.error


def test_what_the_trusted_path_does_not_check_is_the_models_value_rules(codec):
    # Bytes that decode but that no validated model could have written (sequence 0): the
    # ledger's writer validated every value before encoding, so only the schema is checked.
    data = {**recorded().model_dump(), "sequence": 0}
    schema = expanded(LedgerEventRecorded.avro_name(), named_types([LedgerEventRecorded]))
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(schema), data)
    value = frame_single_object(codec.fingerprint_of(LedgerEventRecorded), body.getvalue())
    assert isinstance(admit(codec, ledger_record(value), trusted=True), Decoded)
    refused = admit(codec, ledger_record(value))
    assert isinstance(refused, DeadLettered)
    assert refused.reason is DeadLetterReason.INVALID
    assert "sequence" in refused.error
