"""Logging on a healthy start: what aiokafka retries by itself is not an error."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from aiokafka.errors import CoordinatorNotAvailableError, NotLeaderForPartitionError

from processors.base import logs


@contextmanager
def configured(level: str = "INFO") -> Iterator[None]:
    # Inside the test: the handler writes to the stderr pytest captures for this phase.
    root = logging.getLogger()
    handlers, before = root.handlers[:], root.level
    logs.configure(level, "console")
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(before)


def test_a_group_coordinator_still_loading_is_logged_as_a_retry_not_an_error(capsys):
    with configured():
        logging.getLogger("aiokafka.consumer.group_coordinator").error(
            "Group Coordinator Request failed: %s", CoordinatorNotAvailableError()
        )
    err = capsys.readouterr().err
    assert "Group Coordinator Request failed" in err
    assert "kafka.retrying" in err
    assert "[info" in err
    assert "[error" not in err


def test_a_leader_being_elected_is_logged_as_a_retry_not_a_warning(capsys):
    with configured():
        logging.getLogger("aiokafka.producer.sender").warning(
            "Got error produce response on topic-partition %s, retrying. Error: %s",
            "loyalty.ledger.v1-3",
            NotLeaderForPartitionError,
        )
    err = capsys.readouterr().err
    assert "kafka.retrying" in err
    assert "[warning" not in err


def test_an_error_aiokafka_does_not_retry_stays_an_error(capsys):
    with configured():
        logging.getLogger("aiokafka.cluster").error("Topic %s not found in cluster metadata", "x")
    err = capsys.readouterr().err
    assert "[error" in err
    assert "kafka.retrying" not in err


def test_retries_are_hidden_when_the_level_hides_info(capsys):
    with configured("WARNING"):
        logging.getLogger("aiokafka.consumer.group_coordinator").error(
            "Group Coordinator Request failed: %s", CoordinatorNotAvailableError()
        )
    assert capsys.readouterr().err == ""
