"""The ground floor every process stands on: settings, logging, runtime tuning and the topic
catalogue. It imports nothing of the engine; `processors`, `projections` and the `loyalty`
shell import it (import-linter enforces the direction)."""
