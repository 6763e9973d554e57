"""The rule core's dataclasses that write their own `__init__` (mypyc compiles it, not the one
`dataclasses` generates: ADR 41, addendum) take exactly their fields, in order, with the
fields' defaults, and keep what the dataclass promises: frozen stays frozen."""

import ast
import dataclasses
import importlib
import inspect
import pkgutil
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import processors.rules
from processors.contract.common import Source
from processors.contract.offer_definition import DiscountTerms


def _own_inits() -> list[type]:
    found = []
    for module_info in pkgutil.walk_packages(processors.rules.__path__, "processors.rules."):
        module = importlib.import_module(module_info.name)
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and value.__module__ == module.__name__
                and dataclasses.is_dataclass(value)
                and "__dataclass_fields__" in value.__dict__
                and not _generated(value.__init__)
            ):
                found.append(value)
    return sorted(found, key=lambda cls: cls.__qualname__)


def _generated(init: object) -> bool:
    """True for the `__init__` `dataclasses` writes (compiled from a string at import)."""
    code = getattr(init, "__code__", None)
    return code is not None and code.co_filename == "<string>"


OWN_INITS = _own_inits()


def test_the_hot_dataclasses_write_their_own_init():
    names = {cls.__name__ for cls in OWN_INITS}
    assert {"PricedLine", "Payout", "Contender", "DiscountOffer", "LineDiscount", "Award"} <= names


def _written(cls: type) -> tuple[dict[str, str], ast.FunctionDef]:
    """The class's fields' annotations and its `__init__`, as written in its source (the
    compiled build has no signature to inspect, and gives a union's annotation as `type`)."""
    source = Path(processors.rules.__file__).parents[2] / (cls.__module__.replace(".", "/") + ".py")
    tree = ast.parse(source.read_text())
    body = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == cls.__name__)
    annotations = {
        n.target.id: ast.unparse(n.annotation)
        for n in body.body
        if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
    }
    init = next(n for n in body.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    return annotations, init


@pytest.mark.parametrize("cls", OWN_INITS, ids=lambda cls: cls.__name__)
def test_an_own_init_takes_the_fields_in_order_with_their_types_and_defaults(cls):
    fields = [f for f in dataclasses.fields(cls) if f.init]
    annotations, init = _written(cls)
    arguments = init.args
    assert [(a.arg, ast.unparse(a.annotation)) for a in arguments.args[1:]] == [
        (f.name, annotations[f.name]) for f in fields
    ]
    assert (arguments.kwonlyargs, arguments.vararg, arguments.kwarg) == ([], None, None)
    defaults = [ast.literal_eval(d) for d in arguments.defaults]
    assert defaults == [f.default for f in fields if f.default is not dataclasses.MISSING]
    assert all(f.default_factory is dataclasses.MISSING for f in fields), "a factory: generated"


def _sample(annotation: str, n: int) -> Any:
    """A value of `annotation`, distinct for each `n`."""
    kind = annotation.removesuffix(" | None")
    samples: dict[str, Any] = {
        "str": f"value {n}",
        "int": n,
        "bool": n % 2 == 1,
        "Decimal": Decimal(n),
        "datetime": datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=n),
        "frozenset[str]": frozenset({f"value {n}"}),
        "DiscountTerms": DiscountTerms.model_construct(),
        "Source": Source.APP,
    }
    return samples[kind]


@pytest.mark.parametrize("cls", OWN_INITS, ids=lambda cls: cls.__name__)
def test_an_own_init_sets_every_field_and_frozen_stays_frozen(cls):
    fields = [f for f in dataclasses.fields(cls) if f.init]
    annotations, _ = _written(cls)
    values = {f.name: _sample(annotations[f.name], n) for n, f in enumerate(fields, start=1)}
    made = cls(**values)
    assert {name: getattr(made, name) for name in values} == values
    assert made == cls(**values)
    if cls.__dataclass_params__.frozen:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(made, fields[0].name, values[fields[0].name])
