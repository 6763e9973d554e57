"""The pure rule core: what events and requests mean for members' points, offers and rewards.

Pure means: standard library and pydantic only; no Kafka, Postgres, clock or randomness.
Business time comes in on the events, ids are derived from causes, so the stream processors,
the POS cart evaluation and `loyalty simulate` decide identically, and a replay from offset 0
reproduces every output byte for byte. import-linter enforces this (pyproject.toml).
"""
