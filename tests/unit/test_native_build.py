"""The rule core's compiled build is used only while it is current (ADR 41): a build older
than the sources, one for another Python, one cut short or one switched off leaves every rule
module read from its source; and CI, which builds it, runs on it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from processors import native

PROBE = (
    "import processors.rules.offers.evaluate as e, processors.native as n; "
    "print(n.BUILD); print(e.__file__)"
)


def _probe(**env: str) -> tuple[str, str]:
    """Which build a new process chooses, and the file its offer rules come from (the
    switch as `env` says, whatever this process's environment holds)."""
    inherited = {k: v for k, v in os.environ.items() if k != native.SWITCH}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True,
        env=inherited | env,
    )  # fmt: skip
    build, source = done.stdout.splitlines()
    return build, source


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A `processors` package of two modules, with `native` pointed at it, and the finders
    `choose` installs taken away afterwards."""
    root = tmp_path / "processors"
    (root / "rules").mkdir(parents=True)
    (root / "rules" / "__init__.py").write_text("")
    (root / "rules" / "fast.py").write_text("WHERE = 'source'\n")
    monkeypatch.setattr(native, "PACKAGE_ROOT", root)
    monkeypatch.setattr(native, "MANIFEST", root / "rules" / "_compiled.json")
    monkeypatch.setattr(native, "BUILD", native.BUILD)  # this process's choice, kept
    monkeypatch.delenv(native.SWITCH, raising=False)
    _build(root)
    before = list(sys.meta_path)
    yield root
    sys.meta_path[:] = before


def _build(root: Path) -> None:
    """Stand-ins for the build's extension files (never imported here)."""
    for name in ("rules/fast", "rules__mypyc"):
        (root / f"{name}{native.extension_suffix()}").write_bytes(b"")


def _manifest(root: Path, **fields: object) -> None:
    manifest = {
        "digest": native.sources_digest(root),
        "python": native.extension_suffix(),
        "modules": ["processors.rules.fast"],
    }
    (root / "rules" / "_compiled.json").write_text(json.dumps(manifest | fields))


def _finder() -> native._FromSource | None:
    """The finder `choose` installed in this test (this process's own may be there too)."""
    return next(
        (f for f in sys.meta_path if isinstance(f, native._FromSource) and f not in _BEFORE), None
    )


_BEFORE = list(sys.meta_path)
_OWN = native.BUILD  # this process's choice, before any test changes it


def test_a_current_build_is_used(package: Path) -> None:
    _manifest(package)
    assert native.choose() == "compiled"
    assert _finder() is None


def test_an_edit_after_the_build_runs_the_sources(package: Path) -> None:
    _manifest(package)
    (package / "rules" / "fast.py").write_text("WHERE = 'edited'\n")
    assert "older than the sources" in native.choose()
    finder = _finder()
    assert finder is not None
    spec = finder.find_spec("processors.rules.fast", [str(package / "rules")])
    assert spec is not None
    assert spec.origin == str(package / "rules" / "fast.py")
    assert finder.find_spec("processors.rules.other", [str(package / "rules")]) is None
    with pytest.raises(ImportError, match="runs from its sources"):
        finder.find_spec("processors.rules__mypyc", None)


def test_a_build_for_another_python_is_not_used(package: Path) -> None:
    _manifest(package, python=".cpython-399-x86_64-linux-gnu.so")
    assert "another Python" in native.choose()
    assert _finder() is not None


def test_the_switch_turns_a_current_build_off(
    package: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _manifest(package)
    monkeypatch.setenv(native.SWITCH, "0")
    assert native.choose() == f"source ({native.SWITCH}=0)"
    assert _finder() is not None


def test_a_build_missing_an_extension_is_not_used(package: Path) -> None:
    _manifest(package)
    (package / f"rules__mypyc{native.extension_suffix()}").unlink()
    assert "incomplete" in native.choose()
    assert _finder() is not None


def test_extensions_without_a_manifest_are_not_used(package: Path) -> None:
    assert native.choose() == "source"
    finder = _finder()
    assert finder is not None
    assert finder.modules == {"processors.rules.fast"}


def test_an_unreadable_source_runs_the_sources(package: Path) -> None:
    """A source that cannot be read (here a directory where a file was) cannot be judged
    current; an editor's lock file (a dangling link) is no source and changes nothing."""
    _manifest(package)
    (package / "rules" / ".#fast.py").write_text("an editor's lock\n")
    (package / "rules" / "linked.py").symlink_to("nobody@host.1:1")
    assert native.choose() == "compiled"
    (package / "rules" / "gone.py").mkdir()
    assert native.choose().startswith("source (the sources could not be read")


def test_a_manifest_that_is_not_one_is_no_build(package: Path) -> None:
    (package / "rules" / "_compiled.json").write_text("[1, 2]")
    assert native.choose() == "source"


def test_the_switch_reads_the_rules_from_source() -> None:
    build, source = _probe(**{native.SWITCH: "0"})
    assert build.startswith("source")
    assert source.endswith("evaluate.py")


def test_a_new_process_runs_the_build_it_finds() -> None:
    """A current build is what a process runs; CI (which builds it, `make setup`) must: the
    figures of docs/performance.md are the compiled build's."""
    build, source = _probe()
    try:
        current = json.loads(native.MANIFEST.read_text())["digest"] == native.sources_digest()
    except OSError:
        current = False
    if os.environ.get("CI"):
        assert current, "CI runs `make setup`, which compiles the rule core"
        assert _OWN == "compiled", f"this test process runs the rules from source: {_OWN}"
    if current:
        assert build == "compiled", build
        assert not source.endswith(".py"), source
    else:
        assert build.startswith("source"), build
        assert source.endswith("evaluate.py"), source
