"""Projections: read models materialised into Postgres from the engine's output topics.

Each writer applies a batch of events and its checkpoint in one transaction; the HTTP API reads
the tables. Nothing here decides business outcomes: that is `processors.rules`.
"""
