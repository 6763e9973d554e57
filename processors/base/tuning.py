"""Process-wide settings for the long-running processes (worker, projector, API) and the
benchmarks that stand for them. Called by the commands that start them, never on import."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from processors.base.switches import switched_on

BETWEEN_BATCHES_SWITCH = "LOYALTY_GC_BETWEEN_BATCHES"
"""Set to 0 (or false, no, off) to keep the collector running during batches as well."""
FULL_COLLECTION_SECONDS = 60.0
"""How often, at most, a process collecting between batches looks for cycles in its whole
heap (`BetweenBatches`)."""


def tune_gc() -> None:
    """Fewer, cheaper cyclic garbage collections.

    Our processes allocate a great many short-lived objects per input (decoded events, rule
    drafts, output dicts, request models) that reference counting frees, while their heaps hold
    long-lived ones (modules, schemas, cached member states, the offer catalogue) that every
    full collection would walk again. With the default thresholds (700, 10, 10) collections
    took ~8 % of the worker's batch code and ~10 % of the projector's throughput, and their
    pauses land in the API's tail latencies.
    Freezing moves what start-up built out of the collector's sight; the larger first
    threshold lets young objects die by reference count before a collection looks at them.
    A process that runs batches also collects between them only (`BETWEEN_BATCHES`), unless
    `LOYALTY_GC_BETWEEN_BATCHES` is off.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    BETWEEN_BATCHES.enabled = switched_on(BETWEEN_BATCHES_SWITCH)


class BetweenBatches:
    """The cyclic collector kept out of the batches of a process that opted in (`tune_gc`).

    A batch's rules make no reference cycles (a collection during the realistic mix, history
    or not, found nothing to free), yet the collector walked every object that outlived a
    young collection: the batch's records and drafts, and above all the member states loaded
    into the decoded-state cache, hundreds of objects each (9-11 % of the pure path's CPU with
    members who have a history; docs/performance.md). So the collector is off while any batch
    runs; after the last one ends, what survived is frozen (out of every collection's sight,
    still freed by reference counting), and at most every `full_seconds` the whole heap is
    unfrozen and collected once, for the cycles the runtime (tasks, exceptions) may leave.

    That collection falls due at the end of any batch, whether or not others still run: under
    steady load two agents' batches overlap without end (a runner that finds records waiting
    starts its next batch without yielding), so waiting for none to run would keep the
    collector off for as long as the load lasts (found in review). A worker that goes idle
    keeps what its last batches left frozen until a batch ends after the period.
    """

    def __init__(
        self,
        full_seconds: float = FULL_COLLECTION_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.enabled = False
        self.full_seconds = full_seconds
        self.clock = clock
        self.running = 0  # batches in progress, of any agent of the process
        self.last_full = clock()
        self.full_collections = 0

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Run one batch with the collector off (nested and concurrent batches counted)."""
        if not self.enabled:
            yield
            return
        self.running += 1
        gc.disable()
        try:
            yield
        finally:
            self.running -= 1
            self._after_batch()

    def _after_batch(self) -> None:
        now = self.clock()
        if now - self.last_full >= self.full_seconds:
            gc.unfreeze()
            gc.collect()
            self.last_full = now
            self.full_collections += 1
        if self.running == 0:
            gc.freeze()
            gc.enable()


BETWEEN_BATCHES = BetweenBatches()
"""The process's policy: `tune_gc` turns it on, `Batches.run_batch` runs in `batch()`."""
