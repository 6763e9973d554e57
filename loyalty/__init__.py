"""Loyalty & promotions engine: the cross-cutting shell around the processors and projections.

This package owns configuration, logging, the topic catalogue, the local stack (Kafka and
Postgres started without Docker), the CLI and the benchmarks. It holds no business rules:
those live in `processors.rules`.
"""

__version__ = "0.1.0"
