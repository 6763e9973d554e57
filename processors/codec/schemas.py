"""Avro schemas generated from the contract's pydantic models.

The models are written once (`processors.contract`); this module turns each into Avro: one
named type per `.avsc` file in `schemas/` (`loyalty contract generate` writes them, a test
checks they are current), and the self-contained "expanded" schema of each event that the
codec writes with and that its fingerprint is computed from.

Type mapping: str → string, int → long (every int field bounded within a long's range,
`contract.base.LONG_MAX`), bool → boolean, bytes → bytes, UtcDatetime →
long/timestamp-millis, date → int/date, Decimal(max_digits p, decimal_places s) →
bytes/decimal(p, s), ContractEnum → enum (default UNKNOWN), Record → record, list → array,
dict[str, str] → map, `X | None` → ["null", X] with default null.

Docs are made safe for code generators on the way (`code_safe_doc`): Avro's Java compiler
copies each doc into a Javadoc comment, where a `*/` ends the comment early.
"""

from __future__ import annotations

import datetime as dt
import inspect
import types
import typing
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from pydantic import AwareDatetime, BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from processors.contract.base import ContractEnum, Record

AvroType = Any  # a JSON-able Avro type: a name, or a dict/list
NamedTypes = dict[str, dict[str, Any]]


class SchemaGenerationError(TypeError):
    """A model uses something the contract cannot express in Avro; the message says where."""


def named_types(records: Iterable[type[Record]]) -> NamedTypes:
    """Every named type reachable from `records`, keyed by full name, dependencies first."""
    found: NamedTypes = {}
    for record in records:
        _record(record, found)
    return found


def expanded(full_name: str, types_by_name: NamedTypes) -> dict[str, Any]:
    """The self-contained schema of `full_name`: each named type defined at its first use."""
    defined: set[str] = set()

    def inline(avro: AvroType) -> AvroType:
        if isinstance(avro, str):
            if avro in types_by_name and avro not in defined:
                defined.add(avro)
                return inline(types_by_name[avro])
            return avro
        if isinstance(avro, list):
            return [inline(branch) for branch in avro]
        if isinstance(avro, dict):
            if avro.get("type") == "record":
                defined.add(f"{avro['namespace']}.{avro['name']}")
                return {
                    **avro,
                    "fields": [{**f, "type": inline(f["type"])} for f in avro["fields"]],
                }
            if avro.get("type") == "enum":
                defined.add(f"{avro['namespace']}.{avro['name']}")
                return avro
            if avro.get("type") == "array":
                return {**avro, "items": inline(avro["items"])}
            if avro.get("type") == "map":
                return {**avro, "values": inline(avro["values"])}
        return avro

    return typing.cast(dict[str, Any], inline(full_name))


def parse_order(types_by_name: NamedTypes) -> list[str]:
    """Full names in an order a parser can read the one-type-per-file schemas in: each after
    every type it uses.

    Parsers that resolve forward references (Avro Java 1.12) still need it: they check a
    field's default when they read the field, so an enum field's default read before its enum
    is defined is refused.
    """
    order: list[str] = []
    for full_name, schema in types_by_name.items():
        missing = sorted(_names_used(schema) - set(order) - {full_name})
        assert not missing, f"{full_name} uses {missing} before they are defined"
        order.append(full_name)
    return order


def code_safe_doc(text: str) -> str:
    """`text` with what would break a generated source file's comment rewritten.

    Java's compiler reads `\\u` as a Unicode escape even in a comment, and a Javadoc comment
    ends at the first `*/`; a space between the two characters keeps the meaning for a reader.
    """
    return text.replace("*/", "* /").replace("\\u", "\\ u")


def _names_used(avro: AvroType) -> set[str]:
    if isinstance(avro, str):
        return {avro} if "." in avro else set()
    if isinstance(avro, list):
        return set().union(*(_names_used(branch) for branch in avro))
    if avro.get("type") == "record":
        return set().union(*(_names_used(f["type"]) for f in avro["fields"]))
    if avro.get("type") == "array":
        return _names_used(avro["items"])
    if avro.get("type") == "map":
        return _names_used(avro["values"])
    return set()


def _doc(cls: type) -> str:
    text = inspect.getdoc(cls) or ""
    return code_safe_doc(text.split("\n\n")[0].replace("\n", " ").strip())


def _split_name(full_name: str) -> tuple[str, str]:
    namespace, _, name = full_name.rpartition(".")
    return namespace, name


def _record(record: type[Record], found: NamedTypes) -> str:
    full_name = record.avro_name()
    if full_name in found:
        return full_name
    doc = _doc(record)
    if not doc:
        raise SchemaGenerationError(f"{record.__name__} needs a docstring (the record's doc)")
    found[full_name] = {}  # reserve: a record never refers to itself, but keep order stable
    fields = [_field(record, name, info, found) for name, info in record.model_fields.items()]
    namespace, name = _split_name(full_name)
    found.pop(full_name)
    found[full_name] = {
        "type": "record",
        "name": name,
        "namespace": namespace,
        "doc": doc,
        "fields": fields,
    }
    return full_name


def _enum(enum: type[ContractEnum], found: NamedTypes) -> str:
    full_name = enum.avro_name()
    if full_name not in found:
        symbols = [member.value for member in enum]
        namespace, name = _split_name(full_name)
        schema: dict[str, Any] = {
            "type": "enum",
            "name": name,
            "namespace": namespace,
            "doc": _doc(enum) or f"Symbols of {name}.",
            "symbols": symbols,
        }
        if "UNKNOWN" in symbols:
            schema["default"] = "UNKNOWN"
        found[full_name] = schema
    return full_name


def _field(record: type[Record], name: str, info: FieldInfo, found: NamedTypes) -> dict[str, Any]:
    where = f"{record.__name__}.{name}"
    if not info.description:
        raise SchemaGenerationError(f"{where} needs a description (it becomes the Avro doc)")
    avro = _type(info.annotation, info.metadata, found, where)
    field: dict[str, Any] = {"name": name, "type": avro, "doc": code_safe_doc(info.description)}
    if info.default is not PydanticUndefined:
        field["default"] = _default(info.default, where)
    elif info.default_factory is not None:
        field["default"] = _default(info.default_factory(), where)  # type: ignore[call-arg]
    if "default" in field and isinstance(avro, list) and field["default"] is not None:
        raise SchemaGenerationError(f"{where}: a nullable field's default must be None")
    return field


def _default(value: Any, where: str) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value.value if isinstance(value, ContractEnum) else value
    if isinstance(value, list | dict) and not value:
        return value
    raise SchemaGenerationError(f"{where}: Avro default {value!r} is not supported")


def _type(annotation: Any, metadata: list[Any], found: NamedTypes, where: str) -> AvroType:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type(args[0], [*metadata, *args[1:]], found, where)
    if origin in (typing.Union, types.UnionType):
        branches = [arg for arg in args if arg is not type(None)]
        if len(branches) != 1 or len(args) != 2:
            raise SchemaGenerationError(f"{where}: only `X | None` unions are supported")
        return ["null", _type(branches[0], metadata, found, where)]
    if origin is list:
        return {"type": "array", "items": _type(args[0], [], found, where)}
    if origin is dict:
        if args[0] is not str:
            raise SchemaGenerationError(f"{where}: map keys must be str")
        return {"type": "map", "values": _type(args[1], [], found, where)}
    if isinstance(annotation, type):
        if issubclass(annotation, ContractEnum):
            return _enum(annotation, found)
        if issubclass(annotation, Record):
            return _record(annotation, found)
        if issubclass(annotation, BaseModel):
            raise SchemaGenerationError(f"{where}: nested models must subclass Record")
        if annotation is bool:
            return "boolean"
        if annotation is int:
            return "long"
        if annotation is str:
            return "string"
        if annotation is bytes:
            return "bytes"
        if annotation is AwareDatetime:
            return {"type": "long", "logicalType": "timestamp-millis"}
        if annotation is dt.datetime:
            raise SchemaGenerationError(f"{where}: use UtcDatetime (timezone-aware)")
        if annotation is dt.date:
            return {"type": "int", "logicalType": "date"}
        if annotation is Decimal:
            return _decimal(metadata, where)
        if annotation is float:
            raise SchemaGenerationError(f"{where}: floats are not allowed (DESIGN.md §5.1)")
    raise SchemaGenerationError(f"{where}: type {annotation!r} has no Avro mapping")


def _decimal(metadata: list[Any], where: str) -> dict[str, Any]:
    precision = scale = None
    # An optional value type (`Quantity | None`) keeps its FieldInfo nested in the Annotated.
    flat: list[Any] = []
    for item in metadata:
        flat += item.metadata if isinstance(item, FieldInfo) else [item]
    for item in flat:
        precision = getattr(item, "max_digits", None) or precision
        found_scale = getattr(item, "decimal_places", None)
        scale = found_scale if found_scale is not None else scale
    if precision is None or scale is None:
        raise SchemaGenerationError(f"{where}: a Decimal needs max_digits and decimal_places")
    return {"type": "bytes", "logicalType": "decimal", "precision": precision, "scale": scale}
