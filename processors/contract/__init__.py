"""The public contract as Python: one pydantic model per event of DESIGN.md §6.

Pure (pydantic and the standard library only): the rule core reads these models, and the Avro
schemas in `schemas/` are generated from them (`loyalty contract generate`), so a field, its
type and its `doc` are written once. Encoding to Avro and JSON lives in `processors.codec`.
"""
