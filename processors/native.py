"""Which build of the rule core this process runs: compiled, or from its sources
(docs/adr/0041-the-rule-core-compiled.md).

`scripts/compile_rules.py` compiles the modules of `processors.rules` with mypyc into C
extensions beside their sources, and writes `MANIFEST`: the modules it compiled, the
extension suffix they were built for and the digest of the engine's sources it compiled them
from. Python imports an extension before a source file of the same name, so a build left
behind by an edit would run yesterday's rules. `choose`, run once when the `processors`
package is first imported (before any rule module), lets the extensions be imported only
while the manifest's digest is the digest of the sources as they are now; otherwise, or with
`LOYALTY_RULES_COMPILED=0`, every module of the rule core is read from its source, as it
always can be. `BUILD` says which was chosen.

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
import sysconfig
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from processors.base.switches import switched_on

PACKAGE_ROOT = Path(__file__).resolve().parent
COMPILED_PACKAGE = "rules"
"""The package the build compiles (all but its modules that define pydantic models)."""
COMPILED_MODULES = ("codec/binary.py",)
"""Compiled with it from outside it: the Avro encoding of every event (ADR 42)."""
MANIFEST = PACKAGE_ROOT / COMPILED_PACKAGE / "_compiled.json"
LIBRARY = "processors.rules__mypyc"
"""The build's shared library, which each compiled module's small extension imports."""
SWITCH = "LOYALTY_RULES_COMPILED"
"""Set to 0 (or false, no, off) to run the rule core from its sources even where a current
build exists."""

BUILD = "source"
"""`compiled` when this process imports the rule core's extensions; otherwise `source`, with
the reason in brackets when a build exists but is not used."""


def extension_suffix() -> str:
    """The file suffix of this interpreter's extension modules (its version and ABI)."""
    return str(sysconfig.get_config_var("EXT_SUFFIX"))


def sources_digest(root: Path | None = None) -> str:
    """The digest of every Python source of the `processors` package under `root`, the
    compiled modules' and everything they may read constants and types from. Editors' lock
    and backup files (dot files, symbolic links) are not sources; OSError when a source
    cannot be read."""
    root = PACKAGE_ROOT if root is None else root
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        if path.name.startswith(".") or path.is_symlink():
            continue
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def read_manifest() -> dict[str, object] | None:
    """The build's manifest, or None when there is none (or it is not one)."""
    try:
        manifest = json.loads(MANIFEST.read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def switched_off() -> bool:
    return not switched_on(SWITCH)


class _FromSource(importlib.abc.MetaPathFinder):
    """Finds the compiled modules' source files, ahead of the default finders that would
    find their extensions; and refuses the build's shared library."""

    def __init__(self, modules: Sequence[str]) -> None:
        self.modules = frozenset(modules)

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == LIBRARY:
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
    manifest = read_manifest()
    BUILD = "source" if manifest is None else (_refusal(manifest) or "compiled")
    if BUILD != "compiled":
        modules = (_listed(manifest) if manifest else []) or _extensions_present()
        if modules:
            sys.meta_path.insert(0, _FromSource(modules))
    return BUILD


def _listed(manifest: dict[str, object]) -> list[str]:
    """The modules a build's manifest says it compiled."""
    listed = manifest.get("modules")
    return [str(m) for m in listed] if isinstance(listed, list) else []


def _refusal(manifest: dict[str, object]) -> str | None:
    """Why a build with this manifest may not be used now, if it may not."""
    if switched_off():
        return f"source ({SWITCH}={os.environ.get(SWITCH)})"
    if manifest.get("python") != extension_suffix():
        return "source (the compiled build is for another Python)"
    if missing(manifest):
        return "source (the compiled build is incomplete: make setup)"
    try:
        digest = sources_digest()
    except OSError as error:
        return f"source (the sources could not be read: {error})"
    if manifest.get("digest") != digest:
        return "source (the compiled build is older than the sources: make setup)"
    return None


def missing(manifest: dict[str, object]) -> list[Path]:
    """The extension files a build with this manifest needs and does not have: one for
    each module it lists (none listed: not a build) and the shared library."""
    listed = _listed(manifest)
    if not listed:
        return [MANIFEST]
    suffix = extension_suffix()
    root = PACKAGE_ROOT.parent
    needed = [root / (m.replace(".", "/") + suffix) for m in listed]
    needed.append(root / (LIBRARY.replace(".", "/") + suffix))
    return [path for path in needed if not path.is_file()]


def built_files(root: Path | None = None, pattern: str = "{}.*so") -> list[Path]:
    """The build's extensions beside their sources under `root` (the `processors` package),
    or with another `pattern` of a module's stem, the files it names there."""
    root = PACKAGE_ROOT if root is None else root
    return [
        *(root / COMPILED_PACKAGE).rglob(pattern.format("*")),
        *(
            path
            for module in COMPILED_MODULES
            for path in (root / module).parent.glob(pattern.format(Path(module).stem))
        ),
    ]


def _extensions_present() -> list[str]:
    """Rule modules with an extension beside them but no manifest (a build cut short): read
    from source all the same."""
    found = []
    for path in built_files():
        relative = path.relative_to(PACKAGE_ROOT.parent).as_posix()
        suffix = next(
            (s for s in sorted(importlib.machinery.EXTENSION_SUFFIXES, key=len, reverse=True)
             if relative.endswith(s)),
            None,
        )  # fmt: skip
        if suffix is not None:
            found.append(relative[: -len(suffix)].replace("/", "."))
    return found
