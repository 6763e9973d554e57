"""Which build of the rule core this process runs: compiled, or from its sources
(docs/adr/0041-the-rule-core-compiled.md).

`scripts/compile_rules.py` compiles the modules of `processors.rules` with mypyc into C
extensions beside their sources, and writes `MANIFEST`: the modules it compiled and the
digest of the engine's sources it compiled them from. Python imports an extension before a
source file of the same name, so a build left behind by an edit would run yesterday's rules.
`choose`, run once when the `processors` package is first imported (before any rule module),
lets the extensions be imported only while the manifest's digest is the digest of the sources
as they are now; otherwise, or with `LOYALTY_RULES_COMPILED=0`, every module of the rule core
is read from its source, as it always can be. `BUILD` says which was chosen.

The two builds decide alike: the compiled one is the same source, type-checked strictly
(mypy's strict mode on `processors.rules` is what lets mypyc compile it), with its
annotations enforced at run time; CI runs the whole suite on the compiled build.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

PACKAGE_ROOT = Path(__file__).resolve().parent
MANIFEST = PACKAGE_ROOT / "rules" / "_compiled.json"
SWITCH = "LOYALTY_RULES_COMPILED"
"""Set to 0 to run the rule core from its sources even where a current build exists."""

BUILD = "source"
"""`compiled` when this process imports the rule core's extensions; otherwise `source`, with
the reason in brackets when a build exists but is not used."""


def sources_digest(root: Path | None = None) -> str:
    """The digest of every Python source of the `processors` package under `root`, the
    compiled modules' and everything they may read constants and types from."""
    root = PACKAGE_ROOT if root is None else root
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


class _FromSource(importlib.abc.MetaPathFinder):
    """Finds the compiled modules' source files, ahead of the default finders that would
    find their extensions; and refuses the build's shared library."""

    def __init__(self, modules: Sequence[str], library: str | None) -> None:
        self.modules = frozenset(modules)
        self.library = library

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == self.library:
            raise ImportError(f"{fullname}: the rule core runs from its sources ({BUILD})")
        if fullname not in self.modules:
            return None
        leaf = fullname.rpartition(".")[2] + ".py"
        for entry in path or ():
            source = Path(entry) / leaf
            if source.is_file():
                return importlib.util.spec_from_file_location(fullname, source)
        return None


def choose() -> str:
    """Install the source finder unless a current build may be used; the choice made."""
    global BUILD
    try:
        manifest = json.loads(MANIFEST.read_text())
    except (OSError, ValueError):
        manifest = None
    if manifest is None:
        BUILD = "source"
        modules: list[str] = _extensions_present()
        library = None
    else:
        modules = list(manifest.get("modules", []))
        library = manifest.get("library")
        if os.environ.get(SWITCH, "1") == "0":
            BUILD = f"source ({SWITCH}=0)"
        elif manifest.get("digest") != sources_digest():
            BUILD = "source (the compiled build is older than the sources: make setup)"
        elif manifest.get("python") != sys.implementation.cache_tag:
            BUILD = "source (the compiled build is for another Python)"
        else:
            BUILD = "compiled"
            return BUILD
    if modules or library:
        sys.meta_path.insert(0, _FromSource(modules, library))
    return BUILD


def _extensions_present() -> list[str]:
    """Rule modules with an extension beside them but no manifest (a build cut short): read
    from source all the same."""
    found = []
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        for path in (PACKAGE_ROOT / "rules").rglob(f"*{suffix}"):
            relative = path.relative_to(PACKAGE_ROOT.parent).as_posix()[: -len(suffix)]
            found.append(relative.replace("/", "."))
    return found
