"""The type checkers the typing tests run on the snippets in tests/typing/.

Every snippet is checked by mypy --strict and by pyright in strict mode, as users
of either would check their own code. In a bad snippet, each line that must fail
ends with ``# E: <label>``; the test maps each label to an `Expected` fragment
per checker, and `assert_errors_match` holds the checker to exactly those lines,
each with a message containing its fragment.

pyright takes seconds to start (it runs on node), so `snippet_errors` checks all
of tests/typing/ in one pyright run per session and hands out its results; mypy
runs once per group of snippets a test asks for.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, NamedTuple

ROOT = Path(__file__).resolve().parent.parent
SNIPPETS = Path(__file__).resolve().parent / "typing"

Checker = Literal["mypy", "pyright"]
CHECKERS: tuple[Checker, ...] = ("mypy", "pyright")

# Errors by file name, then by line (from 1): the messages reported there.
Errors = dict[str, dict[int, list[str]]]


class Expected(NamedTuple):
    """A fragment of the message each checker gives for one bad line; they word
    the same mistake differently (and may blame a different argument of the call)."""

    mypy: str
    pyright: str


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
    """mypy's errors in `output` for the file named `filename`."""
    found: dict[int, list[str]] = {}
    for match in re.finditer(rf"{re.escape(filename)}:(\d+): error: (.*)", output):
        found.setdefault(int(match.group(1)), []).append(match.group(2))
    return found


def run_pyright(
    directory: Path,
    files: list[Path],
    *,
    extra_paths: tuple[Path, ...] = (),
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """pyright, strict, on `files` from `directory` (where it writes its config), with
    imports resolved where this Python, run with `env`, finds them, then in
    `extra_paths`; JSON output."""
    config = {
        "typeCheckingMode": "strict",
        "pythonVersion": "3.10",
        "extraPaths": [str(path) for path in extra_paths],
    }
    (directory / "pyrightconfig.json").write_text(json.dumps(config))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pyright",
            "--outputjson",
            "--pythonpath",
            sys.executable,
            "--project",
            str(directory / "pyrightconfig.json"),
            *map(str, files),
        ],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def pyright_errors(result: subprocess.CompletedProcess[str]) -> Errors:
    """The errors in a `run_pyright` result; fails if pyright did not report at all."""
    # 1: it found errors; anything else but 0 (a fatal or usage error) checked nothing.
    assert result.returncode in (0, 1), result.stdout + result.stderr
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"pyright gave no report:\n{result.stdout}{result.stderr}") from None
    found: Errors = {}
    for diagnostic in report["generalDiagnostics"]:
        if diagnostic["severity"] == "error":
            lines = found.setdefault(Path(diagnostic["file"]).name, {})
            line = diagnostic["range"]["start"]["line"] + 1
            lines.setdefault(line, []).append(diagnostic["message"])
    return found


@functools.cache
def _pyright_on_every_snippet() -> Errors:
    with tempfile.TemporaryDirectory() as directory:
        # extra_paths: the source tree, as MYPYPATH gives it to mypy.
        result = run_pyright(Path(directory), sorted(SNIPPETS.glob("*.py")), extra_paths=(ROOT,))
    return pyright_errors(result)


@functools.cache
def _mypy_on(names: tuple[str, ...]) -> Errors:
    result = run_mypy(*(str(SNIPPETS / name) for name in names))
    output = result.stdout + result.stderr
    # 1: it found errors; anything else but 0 (a crash, a usage error) checked nothing.
    assert result.returncode in (0, 1), output
    return {name: errors_by_line(output, name) for name in names}


def snippet_errors(checker: Checker, *names: str) -> Errors:
    """`checker`'s errors in the snippets `names` (file names in tests/typing/), checked
    together; a snippet with none maps to an empty dict."""
    if checker == "mypy":
        return _mypy_on(names)
    found = _pyright_on_every_snippet()
    return {name: found.get(name, {}) for name in names}


def assert_errors_match(
    found: Errors, snippet: str, expected: Mapping[str, Expected], checker: Checker
) -> None:
    """`found` holds an error on each line of `snippet` marked ``# E: <label>`` and on no
    other line, and one of a line's messages contains the label's fragment for `checker`.
    Every label of `expected` is used once."""
    source = (SNIPPETS / snippet).read_text().splitlines()
    labels = {
        number: match.group(1)
        for number, line in enumerate(source, start=1)
        if (match := re.search(r"# E: (\S+)$", line))
    }
    assert sorted(labels.values()) == sorted(expected), "every expectation is used once"
    errors = found.get(snippet, {})
    assert set(errors) == set(labels), (checker, errors)
    for number, label in labels.items():
        fragment = getattr(expected[label], checker)
        assert any(fragment in message for message in errors[number]), (
            checker,
            number,
            errors[number],
        )
