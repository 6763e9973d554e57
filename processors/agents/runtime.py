"""Process-wide settings for the long-running worker (and the benchmarks that stand for it)."""

from __future__ import annotations

import gc


def tune_gc() -> None:
    """Fewer, cheaper cyclic garbage collections.

    The worker allocates a great many short-lived objects per input (decoded events, rule
    drafts, output dicts) that reference counting frees, while its heap holds long-lived ones
    (modules, schemas, cached member states) that every full collection would walk again. With
    the default thresholds (700, 10, 10) collections took ~8 % of the batch code's time.
    Freezing moves what start-up built out of the collector's sight; the larger first
    threshold lets young objects die by reference count before a collection looks at them.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
