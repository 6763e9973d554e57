"""The front door admits valid events and refuses everything else with a named reason."""

from datetime import UTC, datetime

import pytest

from processors.codec.avro import AvroCodec
from processors.contract.deadletter import DeadLettered, DeadLetterReason
from processors.frontdoor import Delivered, Tombstone, admit
from tests.builders import purchase

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
