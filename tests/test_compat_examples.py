"""The legacy examples run on compat after changing only their import line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LEGACY = ROOT / "examples" / "legacy"

# Runs a migrated example with the stdlib socketserver blocked, so it cannot be
# what serves.
RUNNER = """
import sys
sys.modules["socketserver"] = None
source = sys.stdin.read()
exec(compile(source, sys.argv[1], "exec"), {"__name__": "__main__"})
"""

EXPECTED = {
    "threaded_tcp_server.py": [
        "Server loop running in thread:",
        "Received: composerv-request-",
        ": Hello World 1",
        ": Hello World 3",
    ],
    "udp_server.py": ["127.0.0.1 wrote: hello", "Received: HELLO", "Received: DATAGRAM"],
    "echo_stream_server.py": ["Received: HELLO", "Received: STREAM HANDLER"],
}


def migrate(source: str) -> str:
    """The one-line migration: the Python 2 import becomes compat's."""
    assert source.count("\nimport SocketServer\n") == 1
    return source.replace("\nimport SocketServer\n", "\nfrom compat import SocketServer\n")


def test_every_example_is_covered() -> None:
    assert sorted(EXPECTED) == sorted(path.name for path in LEGACY.glob("*.py"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_legacy_example_runs_on_compat(name: str) -> None:
    path = LEGACY / name
    completed = subprocess.run(
        [sys.executable, "-c", RUNNER, str(path)],
        input=migrate(path.read_text()),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    for expected in EXPECTED[name]:
        assert expected in completed.stdout
