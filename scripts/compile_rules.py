"""Compile the pure rule core with mypyc (docs/adr/0041-the-rule-core-compiled.md).

    .venv/bin/python scripts/compile_rules.py [--force | --remove]

Builds every module of `processors.rules` except those that define pydantic models (mypyc
compiles functions and plain classes; pydantic's models already run in Rust) into one C
extension group, puts the extensions beside their sources and writes the manifest
`processors.native` reads: the modules compiled and the digest of the sources they were
compiled from. Nothing is done when the manifest is already current (`--force` rebuilds).
A build that fails leaves the rule core on its sources and says why; exit status 0 all the
same, so that a machine without a C compiler still installs (slower, never wrong).
`--remove` deletes the build.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from processors import native  # noqa: E402 - the repository's, not an installed copy

RULES = ROOT / "processors" / "rules"
LIBRARY = "processors.rules__mypyc"

NOT_COMPILED = frozenset(
    {
        # They define pydantic models: mypyc stops on them (an internal error, or C that
        # does not build), and pydantic validates in Rust either way.
        "processors/rules/challenges/state.py",
        "processors/rules/codes/link.py",
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

paths = json.loads(sys.argv.pop(1))
setup(name="loyalty-rules-compiled", ext_modules=mypycify(paths, group_name="processors.rules"))
"""


def compiled_paths() -> list[Path]:
    """The rule modules compiled: all but the packages' `__init__` and `NOT_COMPILED`."""
    return sorted(
        path
        for path in RULES.rglob("*.py")
        if path.name != "__init__.py" and path.relative_to(ROOT).as_posix() not in NOT_COMPILED
    )


def module_name(path: Path) -> str:
    return path.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")


def remove() -> None:
    """Delete the extensions and the manifest: the rule core runs from its sources."""
    native.MANIFEST.unlink(missing_ok=True)
    for path in (ROOT / "processors").rglob("*.so"):
        path.unlink()


def build(force: bool) -> int:
    digest = native.sources_digest()
    try:
        manifest = json.loads(native.MANIFEST.read_text())
    except (OSError, ValueError):
        manifest = {}
    if not force and manifest.get("digest") == digest:
        print("the compiled rule core is current")
        return 0
    paths = compiled_paths()
    print(f"compiling {len(paths)} modules of the rule core with mypyc (about two minutes)")
    started = time.monotonic()
    remove()
    with tempfile.TemporaryDirectory(prefix="loyalty-mypyc-") as scratch:
        work = Path(scratch)
        (work / "setup.py").write_text(_SETUP)
        # From a directory of its own: setuptools would read the project's pyproject.toml.
        done = subprocess.run(
            [sys.executable, "setup.py", json.dumps([str(p) for p in paths]), "build_ext",
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
            shutil.copy2(extension, target)
    native.MANIFEST.write_text(
        json.dumps(
            {
                "digest": digest,
                "python": sys.implementation.cache_tag,
                "library": LIBRARY,
                "modules": [module_name(p) for p in paths],
            },
            indent=1,
        )
        + "\n"
    )
    print(f"compiled in {time.monotonic() - started:.0f} s: {len(built)} extensions")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even when current")
    parser.add_argument("--remove", action="store_true", help="delete the build")
    args = parser.parse_args()
    if args.remove:
        remove()
        print("removed: the rule core runs from its sources")
        return 0
    return build(args.force)


if __name__ == "__main__":
    sys.exit(main())
