#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian machine, and nothing twice:
#   - system packages: a JDK (runs Kafka, compiles contract-java/), Maven (fetches Kafka's
#     jars, builds contract-java/), PostgreSQL 15+, Chromium (the console's browser tests);
#   - the Python environment in .venv with the project and its dev tools.
# The Kafka jars themselves are fetched by `loyalty stack up` into .cache/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
missing=()
# A JDK, not only a runtime: tests/contract/test_avro_java.py compiles Avro's generated classes.
command -v javac >/dev/null 2>&1 || missing+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing+=(postgresql)
# The staff console's browser tests drive Debian's Chromium (playwright cannot download one).
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v "$PYTHON" >/dev/null 2>&1 || missing+=(python3 python3-venv)
"$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
# A C compiler and Python's headers: scripts/compile_rules.py compiles the rule core (ADR 41).
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
"$PYTHON" -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
  >/dev/null 2>&1 || missing+=(python3-dev)

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "missing system packages: ${missing[*]}" >&2
    echo "install them with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q "${missing[@]}" >/dev/null
fi

"$PYTHON" - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"Python 3.11+ is needed, found {sys.version.split()[0]}")
PY

stamp=.venv/.installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [[ ! -x .venv/bin/python || ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  echo "installing the Python environment in .venv"
  [[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  echo "$want" >"$stamp"
fi

# The rule core compiled with mypyc (docs/adr/0041-the-rule-core-compiled.md): a no-op when the
# build matches the sources; without a C compiler the rules run from their sources.
.venv/bin/python scripts/compile_rules.py
