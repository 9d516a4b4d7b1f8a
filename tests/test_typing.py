"""Static typing: the package is mypy --strict clean, and mismatched values are type errors.

Snippets live in tests/typing/. In a bad snippet, each line that must fail ends with
``# E: <label>``; EXPECTED maps the label to a fragment of mypy's message.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SNIPPETS = Path(__file__).resolve().parent / "typing"

EXPECTED = {
    "stream-on-udp": (
        'Argument 1 to "serve" has incompatible type "UDP"; expected "Transport[socket, '
    ),
    "stream-on-unix-dgram": (
        'Argument 1 to "serve" has incompatible type "UnixDatagram"; expected "Transport[socket, '
    ),
    "datagram-on-tcp": (
        'Argument 3 to "serve" has incompatible type "DatagramHandler"; expected "Handler[socket]"'
    ),
    "datagram-on-unix-stream": 'Argument 3 to "serve" has incompatible type "DatagramHandler"',
    "datagram-function-as-stream": (
        'Argument 1 to "stream_handler" has incompatible type "Callable[[Datagram], None]"'
    ),
    "stream-function-as-datagram": (
        'Argument 1 to "datagram_handler" has incompatible type "Callable[[Connection], None]"'
    ),
    "port-as-str": 'Argument 1 to "tcp" has incompatible type "tuple[str, str]"',
    "backlog-as-str": 'Argument "backlog" to "tcp" has incompatible type "str"; expected "int"',
    "daemon-as-float": (
        'Argument "daemon" to "threaded" has incompatible type "float"; expected "bool"'
    ),
}


def run_mypy(*targets: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", *targets],
        cwd=ROOT,
        env={**os.environ, "MYPYPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def errors_by_line(output: str, filename: str) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for match in re.finditer(rf"{re.escape(filename)}:(\d+): error: (.*)", output):
        found.setdefault(int(match.group(1)), []).append(match.group(2))
    return found


@pytest.fixture(scope="module")
def snippet_output() -> str:
    result = run_mypy(str(SNIPPETS / "good_pairings.py"), str(SNIPPETS / "bad_pairings.py"))
    return result.stdout + result.stderr


def test_the_package_is_mypy_strict_clean() -> None:
    packages = [name for name in ("composerv", "compat") if (ROOT / name).is_dir()]
    result = run_mypy(*packages)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_examples_are_mypy_strict_clean() -> None:
    """Users copy the examples: they must type-check without ignores."""
    examples = sorted(str(path) for path in (ROOT / "examples").glob("*.py"))
    result = run_mypy(*examples)
    assert result.returncode == 0, result.stdout + result.stderr


def test_py_typed_is_shipped() -> None:
    assert (ROOT / "composerv" / "py.typed").is_file()


def test_good_pairings_type_check(snippet_output: str) -> None:
    assert errors_by_line(snippet_output, "good_pairings.py") == {}, snippet_output


def test_every_bad_pairing_is_an_error_and_nothing_else_is(snippet_output: str) -> None:
    source = (SNIPPETS / "bad_pairings.py").read_text().splitlines()
    wanted = {
        number: EXPECTED[match.group(1)]
        for number, line in enumerate(source, start=1)
        if (match := re.search(r"# E: (\S+)$", line))
    }
    assert set(wanted.values()) == set(EXPECTED.values()), "every expectation is used once"
    found = errors_by_line(snippet_output, "bad_pairings.py")
    assert set(found) == set(wanted), snippet_output
    for number, fragment in wanted.items():
        assert any(fragment in message for message in found[number]), (number, found[number])
