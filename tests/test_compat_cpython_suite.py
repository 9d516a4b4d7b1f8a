"""The yardstick: CPython's own test_socketserver, run against compat.socketserver.

The suite runs in a subprocess so that replacing ``sys.modules["socketserver"]``
cannot affect other tests. The same suite also runs against the stdlib module, so
that compat may skip only what the stdlib itself skips here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

RUNNER = """
import json, sys, unittest
if sys.argv[1] == "compat":
    sys.modules["socketserver"] = None  # the stdlib module must not be needed
    import compat.socketserver
    sys.modules["socketserver"] = compat.socketserver
import test.support
test.support.verbose = False
from test import test_socketserver
module = test_socketserver.socketserver
suite = unittest.defaultTestLoader.loadTestsFromModule(test_socketserver)
result = unittest.TextTestRunner(stream=sys.stderr, verbosity=2).run(suite)
print(json.dumps({
    "module": getattr(module, "__file__", ""),
    "run": result.testsRun,
    "failures": [test.id() for test, _ in result.failures],
    "errors": [test.id() for test, _ in result.errors],
    "skipped": sorted(test.id() for test, _ in result.skipped),
}))
"""


def run_suite(target: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    completed = subprocess.run(
        [sys.executable, "-c", RUNNER, target],
        capture_output=True,
        text=True,
        timeout=110,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-5000:]
    report: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    report["log"] = completed.stderr
    return report


@pytest.mark.slow
def test_cpython_socketserver_suite_passes_against_compat() -> None:
    compat = run_suite("compat")
    stdlib = run_suite("stdlib")
    assert compat["module"] == str(ROOT / "compat" / "socketserver.py")
    assert compat["failures"] == [], compat["log"]
    assert compat["errors"] == [], compat["log"]
    assert compat["run"] == stdlib["run"]
    assert isinstance(compat["run"], int) and compat["run"] >= 25
    assert set(compat["skipped"]) <= set(stdlib["skipped"])
    print(
        f"\nCPython test_socketserver against compat: {compat['run']} run, "
        f"{len(compat['failures'])} failures, {len(compat['errors'])} errors, "
        f"{len(compat['skipped'])} skipped"
    )
