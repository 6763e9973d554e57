"""Compile the pure rule core with mypyc (docs/adr/0041-the-rule-core-compiled.md).

    .venv/bin/python scripts/compile_rules.py [--force | --remove]

Builds every module of `processors.rules` except those that define pydantic models (mypyc
compiles functions and plain classes; pydantic's models already run in Rust), and the
codec's Avro encoding `processors.codec.binary` (ADR 42), into one C extension group,
type-checked with the project's mypy settings (strict on the rule core and the codec's
encoding), puts the extensions beside their sources and writes the manifest
`processors.native` reads (which also names what is compiled): the modules compiled, the
extension suffix and the digest of the sources they were compiled from, and what compiled
them. Nothing is done when the manifest is current (`--force`
rebuilds). One build at a time (a lock); extensions and manifest are replaced whole. A build
that fails leaves the rule core on its sources and says why; exit status 0 all the same, so
that a machine without a C compiler still installs (slower, never wrong). `--remove` deletes
the build.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from processors import native  # noqa: E402 - the repository's, not an installed copy

RULES = native.PACKAGE_ROOT / native.COMPILED_PACKAGE
OUTSIDE = [native.PACKAGE_ROOT / module for module in native.COMPILED_MODULES]
LOCK = ROOT / "build" / "compile_rules.lock"

NOT_COMPILED = frozenset(
    {
        # They define pydantic models: mypyc stops on them (an internal error, or C that
        # does not build), and pydantic validates in Rust either way.
        "processors/rules/challenges/state.py",
        "processors/rules/codes/link.py",
        "processors/rules/deferred.py",
        "processors/rules/codes/uses.py",
        "processors/rules/ledger/lots.py",
        "processors/rules/ledger/state.py",
        "processors/rules/member.py",
        "processors/rules/offers/budget.py",
        "processors/rules/offers/state.py",
        "processors/rules/preferences.py",
        "processors/rules/rewards/state.py",
        "processors/rules/selection.py",
    }
)

_SETUP = """
import json, sys
from setuptools import setup
from mypyc.build import mypycify

options = json.loads(sys.argv.pop(1))
setup(name="loyalty-rules-compiled", ext_modules=mypycify(options, group_name="processors.rules"))
"""


def compiled_paths() -> list[Path]:
    """The modules compiled: the rule core's, all but the packages' `__init__`,
    `NOT_COMPILED` and editors' dot files; and those compiled with it from `OUTSIDE`."""
    return sorted(
        path
        for path in [*RULES.rglob("*.py"), *OUTSIDE]
        if path.name != "__init__.py"
        and not path.name.startswith(".")
        and not path.is_symlink()  # as `native.sources_digest` reads them
        and path.relative_to(ROOT).as_posix() not in NOT_COMPILED
    )


def module_name(path: Path) -> str:
    return path.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")


def builder() -> str:
    """What compiles: mypyc's version and this script (its list of modules left out)."""
    try:
        from mypy.version import __version__ as mypy_version
    except ImportError:
        mypy_version = "absent"
    script = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    return f"mypy {mypy_version}, compile_rules {script}"


def ours() -> list[Path]:
    """The build's files: its extensions under `processors/rules`, the codec's and its
    shared library, with any left half-written by a build cut short."""
    library = native.LIBRARY.rpartition(".")[2]
    return [
        *native.built_files(native.PACKAGE_ROOT),
        *native.built_files(native.PACKAGE_ROOT, ".{}.*.partial"),
        *(ROOT / "processors").glob(f"{library}.*so"),
        *(ROOT / "processors").glob(f".{library}.*.partial"),
    ]


def remove() -> None:
    """Delete the extensions and the manifest: the rule core runs from its sources."""
    native.MANIFEST.unlink(missing_ok=True)
    for path in ours():
        path.unlink()


def current(manifest: dict[str, object] | None, digest: str) -> bool:
    """True when `manifest` is of a build of these sources, for this Python, by this
    builder, and its extensions are all there."""
    if manifest is None:
        return False
    return (
        not native.missing(manifest)
        and manifest.get("digest") == digest
        and manifest.get("python") == native.extension_suffix()
        and manifest.get("builder") == builder()
    )


def locked(run: Callable[[], T]) -> T:
    """`run` while no other build or removal runs (another `make setup`: wait for it)."""
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return run()


def build(force: bool) -> int:
    try:
        digest = native.sources_digest()
    except OSError as error:
        print(f"the sources could not be read ({error}); the rule core runs from them")
        return 0
    if not force and current(native.read_manifest(), digest):
        print("the compiled rule core is current")
        return 0
    paths = compiled_paths()
    print(f"compiling {len(paths)} modules of the rule core with mypyc (about 90 s)")
    started = time.monotonic()
    remove()
    options = [f"--config-file={ROOT / 'pyproject.toml'}", *(str(p) for p in paths)]
    with tempfile.TemporaryDirectory(prefix="loyalty-mypyc-") as scratch:
        work = Path(scratch)
        (work / "setup.py").write_text(_SETUP)
        # From a directory of its own: setuptools would read the project's pyproject.toml.
        done = subprocess.run(
            [sys.executable, "setup.py", json.dumps(options), "build_ext",
             "--build-lib", str(work / "lib"), "--build-temp", str(work / "temp")],
            cwd=work, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
            print(f"mypyc could not compile the rule core; it runs from its sources:\n{tail}")
            return 0
        built = sorted((work / "lib").rglob("*.so"))
        for extension in built:
            target = ROOT / extension.relative_to(work / "lib")
            target.parent.mkdir(parents=True, exist_ok=True)
            _replace(target, partial(shutil.copy2, extension))
    if _digest_now() != digest:
        print("the sources changed while compiling: the rule core runs from them; run it again")
        return 0
    manifest = {
        "digest": digest,
        "python": native.extension_suffix(),
        "builder": builder(),
        "modules": [module_name(p) for p in paths],
    }
    _replace(native.MANIFEST, lambda into: into.write_text(json.dumps(manifest, indent=1) + "\n"))
    print(f"compiled in {time.monotonic() - started:.0f} s: {len(built)} extensions")
    return 0


def _digest_now() -> str | None:
    try:
        return native.sources_digest()
    except OSError:
        return None


def _replace(target: Path, write: Callable[[Path], object]) -> None:
    """Write `target` under another name, then put it in place whole: a process loading the
    old file keeps it, and no reader sees half of the new one."""
    written = target.with_name(f".{target.name}.partial")
    write(written)
    os.replace(written, target)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even when current")
    parser.add_argument("--remove", action="store_true", help="delete the build")
    args = parser.parse_args()
    if args.remove:
        locked(remove)
        print("removed: the rule core runs from its sources")
        return 0
    return locked(lambda: build(args.force))


if __name__ == "__main__":
    sys.exit(main())
