"""The cyclic collector kept out of the batches (`processors.base.tuning.BetweenBatches`):
off while any batch runs, what survived frozen after, the whole heap collected now and then."""

import gc

import pytest

from processors.base.tuning import BetweenBatches


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def policy():
    clock = _Clock()
    between = BetweenBatches(full_seconds=60, clock=clock)
    between.enabled = True
    yield between, clock
    gc.unfreeze()
    gc.enable()


def _a_cycle() -> None:
    node: dict[str, object] = {}
    node["self"] = node  # garbage only a collection frees


def test_a_process_that_did_not_opt_in_keeps_its_collector():
    between = BetweenBatches()
    frozen = gc.get_freeze_count()
    with between.batch():
        assert gc.isenabled()
    assert gc.get_freeze_count() == frozen


def test_the_collector_is_off_until_the_last_of_the_running_batches_ends(policy):
    between, _ = policy
    frozen = gc.get_freeze_count()
    first, second = between.batch(), between.batch()

    first.__enter__()
    second.__enter__()
    assert not gc.isenabled()
    first.__exit__(None, None, None)
    assert not gc.isenabled()  # another agent's batch still runs
    second.__exit__(None, None, None)

    assert gc.isenabled()
    assert gc.get_freeze_count() > frozen  # what survived is out of the collector's sight


def test_a_batch_that_raises_still_puts_the_collector_back(policy):
    between, _ = policy
    with pytest.raises(RuntimeError), between.batch():
        raise RuntimeError("a broker went away")

    assert gc.isenabled()
    assert between.running == 0


def test_the_whole_heap_is_collected_once_the_full_period_has_passed(policy):
    between, clock = policy
    gc.collect()
    with between.batch():
        _a_cycle()
    assert between.full_collections == 0

    clock.now = 61
    collected = []
    gc.callbacks.append(
        lambda phase, info: collected.append(info["collected"]) if phase == "stop" else None
    )
    try:
        with between.batch():
            pass
    finally:
        gc.callbacks.pop()

    assert between.full_collections == 1
    assert sum(collected) >= 1  # the cycle frozen after the first batch was found
    clock.now = 100
    with between.batch():
        pass
    assert between.full_collections == 1  # not again before another full period


def test_batches_that_overlap_without_end_still_get_the_whole_heap_collected(policy):
    """Under steady load one agent's next batch starts before another's ends: the count of
    running batches never reaches zero, yet the full collection comes once its period has
    passed, at the end of whichever batch ends then, and the collector stays off for the
    batch still running."""
    between, clock = policy
    gc.collect()
    running = between.batch()
    running.__enter__()
    collected: list[int] = []
    gc.callbacks.append(
        lambda phase, info: collected.append(info["collected"]) if phase == "stop" else None
    )
    try:
        for second in range(0, 181, 10):  # a batch of the other agent every ten seconds
            clock.now = second
            with between.batch():
                _a_cycle()
            assert not gc.isenabled()  # the long-running one still runs
            next_one = between.batch()
            next_one.__enter__()  # this agent's next batch starts before the other ends
            running.__exit__(None, None, None)
            running = next_one
    finally:
        gc.callbacks.pop()
        running.__exit__(None, None, None)

    assert between.full_collections == 3  # at 60, 120 and 180 s
    assert sum(collected) >= 3  # the cycles made meanwhile were found
    assert gc.isenabled()
    assert between.running == 0
