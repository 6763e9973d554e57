"""The engine's processors: the contract, the rule core, the agents and their runtime."""

from processors import native

# Before any module of the rule core is imported: its compiled build only while current.
native.choose()
