"""A fetch's records are decided in the order they were written across partitions, each
partition's own order kept (`runtime.runner.in_time_order`)."""

from __future__ import annotations

from types import SimpleNamespace

from aiokafka import TopicPartition

from processors.runtime.runner import in_time_order


def record(topic: str, offset: int, timestamp: int) -> SimpleNamespace:
    return SimpleNamespace(
        topic=topic, partition=0, offset=offset, key=b"M1", value=b"", timestamp=timestamp
    )


def test_a_hold_written_before_its_purchase_is_decided_before_it_whatever_the_partitions():
    purchases = TopicPartition("loyalty.transactions.v1", 0)
    steps = TopicPartition("loyalty.internal.steps.v1", 0)
    fetched = {
        purchases: [record(purchases.topic, 7, 1_000_200), record(purchases.topic, 8, 1_000_900)],
        steps: [record(steps.topic, 3, 1_000_100), record(steps.topic, 4, 1_000_500)],
    }
    order = [(d.topic, d.offset) for d in in_time_order(fetched)]
    assert order == [
        (steps.topic, 3), (purchases.topic, 7), (steps.topic, 4), (purchases.topic, 8),
    ]  # fmt: skip


def test_a_partitions_own_order_is_kept_even_when_its_times_go_back():
    tp = TopicPartition("t", 0)
    other = TopicPartition("u", 0)
    fetched = {tp: [record("t", 1, 50), record("t", 2, 10)], other: [record("u", 1, 20)]}
    order = [(d.topic, d.offset) for d in in_time_order(fetched)]
    assert order.index(("t", 1)) < order.index(("t", 2))
    assert sorted(order) == [("t", 1), ("t", 2), ("u", 1)]
