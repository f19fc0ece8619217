"""Runs the lit/FileCheck suite (tests/filecheck) once and reports each file as a test."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).parent / "filecheck"
FILES = sorted(p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*.mlir"))


@pytest.fixture(scope="session")
def lit_results(tmp_path_factory) -> dict[str, tuple[bool, str]]:
    out = tmp_path_factory.mktemp("lit") / "results.xml"
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    subprocess.run(
        [sys.executable, "-c", "from lit.main import main; main()", "-q", "-j", str(os.cpu_count() or 2), "--xunit-xml-output",
         str(out), str(ROOT)],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    results: dict[str, tuple[bool, str]] = {}
    for case in ET.parse(out).getroot().iter("testcase"):
        # lit names a case by file name, and its folder as "<suite>.<dir>.<dir>"
        folder = case.get("classname", "").split(".", 1)[1:]
        name = "/".join([*(f.replace(".", "/") for f in folder), case.get("name", "")])
        failure = case.find("failure")
        results[name] = (failure is None, failure.text if failure is not None else "")
    return results


@pytest.mark.parametrize("path", FILES)
def test_filecheck(path: str, lit_results: dict[str, tuple[bool, str]]):
    matches = [v for k, v in lit_results.items() if k == path]
    assert matches, f"lit did not run {path}"
    ok, log = matches[0]
    assert ok, log
