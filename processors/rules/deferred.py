"""Stored records whose bulky fields are read from their JSON only when first asked for
(docs/adr/0024-member-state-at-scale.md, second addendum).

A member keeps every purchase of the returns window twice, line by line (the ledger's record
and the offers'), and most purchases never look at an older one's lines: only a return of it,
a redemption against it or the till's copy does. A `Deferred` record is stored as two JSON
objects, its head (every field but `DEFERRED`, and the keys of the `KEYS_OF` mapping, which
the rules read on every purchase) and the rest; read back with `unread`, it parses the head
alone and keeps the rest as the bytes they were. The first read of a deferred field parses
them (`__getattr__` runs only for a field absent from the instance), and so do setting one,
equality and serialisation, so no reader can meet a deferred field unread: laziness is
invisible to the rules, only cheaper. A record never read is written back with the very bytes
it was read from.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, ClassVar, Self, get_origin

from pydantic import (
    BaseModel,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    create_model,
    model_serializer,
)
from typing_extensions import TypedDict

_KEYS = "keys"
"""The head's entry holding the keys of the `KEYS_OF` mapping."""


class Deferred(BaseModel):
    """A record whose `DEFERRED` fields are parsed when first read; see the module."""

    DEFERRED: ClassVar[tuple[str, ...]] = ()
    KEYS_OF: ClassVar[str | None] = None
    """A deferred mapping whose keys the head keeps (`deferred_keys`)."""

    _rest: ClassVar[type[BaseModel]]
    _placeholders: ClassVar[dict[str, Any]]
    _head_json: ClassVar[TypeAdapter[dict[str, Any]]]
    _rest_json: ClassVar[TypeAdapter[dict[str, Any]]]
    _unread: bytes | None = PrivateAttr(default=None)
    _keys: tuple[str, ...] = PrivateAttr(default=())
    _where: str = PrivateAttr(default="")

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        fields = cls.model_fields
        assert set(cls.DEFERRED) <= set(fields), f"{cls.__name__}: no field {cls.DEFERRED}"
        assert cls.KEYS_OF is None or cls.KEYS_OF in cls.DEFERRED
        assert _KEYS not in fields, f"{cls.__name__}: a field named {_KEYS!r}"
        for name, field in fields.items():  # the typed dicts below write the annotation alone
            if field.alias is not None or field.exclude or field.metadata:
                raise TypeError(
                    f"{cls.__name__}.{name}: written by its type alone (`stored`), so no "
                    "alias, exclusion or annotated serialiser"
                )
        # The rest must hold every deferred field (a rest without its lines is damaged); the
        # head is validated with an empty placeholder for each, dropped at once.
        cls._placeholders = {n: _empty(fields[n].annotation) for n in cls.DEFERRED}
        deferred: dict[str, Any] = {n: (fields[n].annotation, ...) for n in cls.DEFERRED}
        cls._rest = create_model(f"{cls.__name__}Rest", **deferred)
        # Written from the instance's dict by typed dicts, which skip what they do not name:
        # half the time of a model's serialisation narrowed by `include`, the same bytes.
        head = {n: f.annotation for n, f in fields.items() if n not in cls.DEFERRED}
        if cls.KEYS_OF is not None:
            head[_KEYS] = list[str]
        rest = {n: fields[n].annotation for n in cls.DEFERRED}
        cls._head_json = _writer(f"{cls.__name__}Head", head)
        cls._rest_json = _writer(f"{cls.__name__}Rest", rest)

    # --- stored as two objects -------------------------------------------------------------

    @classmethod
    def unread(cls, head: bytes, rest: bytes, where: str = "") -> Self:
        """The record stored as `head` and `rest` (`stored`), its deferred fields not parsed;
        `where` it was stored, for the error a damaged rest raises when first read."""
        values = json.loads(head)
        if not isinstance(values, dict) or any(n in values for n in cls.DEFERRED):
            raise ValueError(f"not a {cls.__name__}'s head: {head[:60]!r}")
        keys = values.pop(_KEYS, [])
        if cls.KEYS_OF is not None and not (
            isinstance(keys, list) and all(isinstance(k, str) for k in keys)
        ):
            raise ValueError(f"a {cls.__name__}'s head with keys {keys!r}")
        record = cls.model_validate(values | cls._placeholders)
        for name in cls.DEFERRED:  # dropped: the first read of one parses `rest`
            del record.__dict__[name]
        record.__pydantic_fields_set__.difference_update(cls.DEFERRED)
        private = record._private()
        private["_unread"] = rest
        private["_keys"] = tuple(keys)
        private["_where"] = where
        return record

    def stored(self) -> tuple[bytes, bytes]:
        """The record as its head and the rest, JSON objects both; the rest as it was read when
        no deferred field has been read or set (whatever the head became since)."""
        rest = self._unread_rest()
        values = self.__dict__
        if self.KEYS_OF is not None:
            values = {**values, _KEYS: list(self.deferred_keys())}
        head = self._head_json.dump_json(values)
        if rest is None:
            return head, self._rest_json.dump_json(self.__dict__)
        return head, rest

    # --- read when asked ---------------------------------------------------------------------

    def deferred_keys(self) -> Iterable[str]:
        """The keys of the `KEYS_OF` mapping, read or not."""
        assert self.KEYS_OF is not None, f"{type(self).__name__} keeps no keys"
        if self._unread_rest() is None:
            mapping: dict[str, Any] = self.__dict__[self.KEYS_OF]
            return mapping.keys()
        keys: tuple[str, ...] = self._private()["_keys"]
        return keys

    def read(self) -> Self:
        """This record with its deferred fields parsed (a no-op once they are)."""
        private = self._private()
        rest = private["_unread"]
        if rest is None:
            return self
        name = type(self).__name__
        try:
            parsed = self._rest.model_validate_json(rest)
            keys = private["_keys"]
            if self.KEYS_OF is not None and list(getattr(parsed, self.KEYS_OF)) != list(keys):
                raise ValueError(f"its head's keys {list(keys)} are not its {self.KEYS_OF}")
        except ValueError as error:  # found only now: the load read the head alone
            where = f"{private['_where']}: " if private["_where"] else ""
            fields = ", ".join(self.DEFERRED)
            raise ValueError(f"{where}a stored {name}'s {fields}: {error}") from None
        # In the fields' order, as a record never deferred holds them (and dumps them); a
        # deferred field set before it was read keeps the value set.
        held, read = self.__dict__, parsed.__dict__
        ordered = {n: held[n] if n in held else read[n] for n in type(self).model_fields}
        object.__setattr__(self, "__dict__", ordered)
        self.__pydantic_fields_set__.update(self.DEFERRED)
        private.update(_unread=None, _keys=(), _where="")  # as a record never deferred
        return self

    def __getattr__(self, name: str) -> Any:
        # Python asks only for a name the instance does not hold: a deferred field not read
        # yet, or one of pydantic's private attributes.
        if name in type(self).DEFERRED:
            return self.read().__dict__[name]
        return super().__getattr__(name)  # type: ignore[misc]

    def __setattr__(self, name: str, value: Any) -> None:
        if name in type(self).DEFERRED:  # read first: the keys and the rest follow the value
            self.read()
        super().__setattr__(name, value)

    def __iter__(self) -> Any:
        self.read()
        return super().__iter__()

    def __repr_args__(self) -> Any:
        unread = self._private()["_unread"] is not None  # a repr parses nothing
        yield from super().__repr_args__()
        if unread:
            yield from ((n, "<unread>") for n in self.DEFERRED if n not in self.__dict__)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Deferred):
            self.read()
            other.read()
        return super().__eq__(other)

    @model_serializer(mode="wrap")
    def _serialised_whole(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Any serialisation (a state saved as one document, a copy for the API) sees every
        # field.
        self.read()
        whole: dict[str, Any] = handler(self)
        return whole

    def _private(self) -> dict[str, Any]:
        private = self.__pydantic_private__
        assert private is not None
        return private

    def _unread_rest(self) -> bytes | None:
        """The rest as stored, while no deferred field was read or set (`model_copy(update=)`
        sets one without asking: then it is read, the value set kept)."""
        rest: bytes | None = self._private()["_unread"]
        if rest is not None and any(n in self.__dict__ for n in self.DEFERRED):
            self.read()
            return None
        return rest


def _writer(name: str, fields: dict[str, Any]) -> TypeAdapter[dict[str, Any]]:
    """Writes these fields of a dict, skipping any other key."""
    return TypeAdapter(TypedDict(name, fields, total=False))  # type: ignore[operator]


def _empty(annotation: Any) -> Any:
    """An empty value of a deferred field's container type."""
    origin = get_origin(annotation) or annotation
    assert origin in (list, dict), f"a deferred field is a list or a dict, not {annotation}"
    return origin()
