"""Process-wide settings for the long-running processes (worker, projector, API) and the
benchmarks that stand for them. Called by the commands that start them, never on import."""

from __future__ import annotations

import gc


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
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
