"""Avro's reference implementation reads the contract as shipped (`contract-java/`).

`mvn verify` there generates Java classes from `schemas/events/` with avro-maven-plugin and
compiles them, parses the shipped schemas with Avro Java's parser (each event file alone, the
one-type files in `schemas/parse-order.txt`), and decodes every golden record the engine
encoded, re-encoding it byte for byte. It runs under both Avro lines a Java team is likely to
be on. Without Maven or a JDK the test is skipped on a developer's machine and fails under
CI=true (scripts/bootstrap.sh installs both).
"""

import shutil
import subprocess
import xml.etree.ElementTree as ElementTree

import pytest

from processors.base.settings import REPO_ROOT
from processors.contract.catalogue import all_events
from tests.conftest import service_unavailable

MODULE = REPO_ROOT / "contract-java"
AVRO_VERSIONS = ["1.11.4", "1.12.2"]
# A bound, not an expectation: a first run downloads Avro, the plugin and JUnit into the local
# Maven repository; later runs take some 15 s per version, offline.
MAVEN_BOUND_SECONDS = 900


def run_maven(*arguments: str) -> subprocess.CompletedProcess[str]:
    """`mvn -q -B` in the module, offline first; online only when an artifact is missing."""

    def run(*flags: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["mvn", "-q", "-B", *flags, *arguments],
            cwd=MODULE,
            capture_output=True,
            text=True,
            timeout=MAVEN_BOUND_SECONDS,
            check=False,
        )

    offline = run("-o")
    if offline.returncode != 0 and "offline mode" in offline.stdout + offline.stderr:
        return run()
    return offline


def surefire_counts(avro_version: str) -> dict[str, int]:
    """Test cases per method name, and the failures, errors and skips, from the reports."""
    reports = MODULE / "target" / f"avro-{avro_version}" / "surefire-reports"
    counts: dict[str, int] = {"failures": 0, "errors": 0, "skipped": 0}
    for report in reports.glob("TEST-*.xml"):
        suite = ElementTree.parse(report).getroot()
        for key in ("failures", "errors", "skipped"):
            counts[key] += int(suite.get(key, "0"))
        for case in suite.iter("testcase"):
            method = case.get("name", "").split("(")[0]
            counts[method] = counts.get(method, 0) + 1
    return counts


@pytest.mark.timeout(MAVEN_BOUND_SECONDS * 2 + 60)
@pytest.mark.parametrize("avro_version", AVRO_VERSIONS)
def test_avro_java_parses_generates_classes_and_decodes_the_engine_records(avro_version):
    missing = [tool for tool in ("mvn", "javac") if shutil.which(tool) is None]
    if missing:
        service_unavailable(f"{' and '.join(missing)} not installed: run scripts/bootstrap.sh")
    result = run_maven(f"-Davro.version={avro_version}", "verify")
    output = (result.stdout + result.stderr)[-6000:]
    assert result.returncode == 0, f"mvn verify with Avro {avro_version} failed:\n{output}"
    counts = surefire_counts(avro_version)
    assert counts["failures"] == counts["errors"] == counts["skipped"] == 0, counts
    # Java saw every event file, not an empty or wrong folder.
    assert counts.get("eachEventSchemaParsesAloneWithAFreshParser") == len(all_events()), counts
    assert counts.get("everyGoldenRecordDecodesAndReencodesByteForByte", 0) >= len(all_events())
