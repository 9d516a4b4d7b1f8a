"""Static typing: the package is mypy --strict and pyright strict clean, and mismatched
values are type errors under both checkers.

Snippets live in tests/typing/ (see tests/typecheck.py). In a bad snippet, each line
that must fail ends with ``# E: <label>``; EXPECTED maps the label to a fragment of
each checker's message.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from .typecheck import (
    CHECKERS,
    ROOT,
    Checker,
    Expected,
    assert_errors_match,
    run_mypy,
    snippet_errors,
)

EXPECTED = {
    "stream-on-udp": Expected(
        'Argument 1 to "serve" has incompatible type "UDP"; expected "Transport[socket, ',
        'Argument of type "StreamHandler" cannot be assigned to parameter "handler" of type '
        '"Handler[Datagram]"',
    ),
    "stream-on-unix-dgram": Expected(
        'Argument 1 to "serve" has incompatible type "UnixDatagram"; expected "Transport[socket, ',
        'Argument of type "StreamHandler" cannot be assigned to parameter "handler" of type '
        '"Handler[Datagram]"',
    ),
    "datagram-on-tcp": Expected(
        'Argument 3 to "serve" has incompatible type "DatagramHandler"; expected "Handler[socket]"',
        'Argument of type "DatagramHandler" cannot be assigned to parameter "handler" of type '
        '"Handler[socket]"',
    ),
    "datagram-on-unix-stream": Expected(
        'Argument 3 to "serve" has incompatible type "DatagramHandler"',
        'Argument of type "DatagramHandler" cannot be assigned to parameter "handler"',
    ),
    "datagram-function-as-stream": Expected(
        'Argument 1 to "stream_handler" has incompatible type "Callable[[Datagram], None]"',
        'Argument of type "(datagram: Datagram) -> None" cannot be assigned to parameter "fn" '
        'of type "(Connection) -> object"',
    ),
    "stream-function-as-datagram": Expected(
        'Argument 1 to "datagram_handler" has incompatible type "Callable[[Connection], None]"',
        'Argument of type "(conn: Connection) -> None" cannot be assigned to parameter "fn" '
        'of type "(Datagram) -> object"',
    ),
    "port-as-str": Expected(
        'Argument 1 to "tcp" has incompatible type "tuple[str, str]"',
        '"Literal[\'80\']" is not assignable to "int"',
    ),
    "backlog-as-str": Expected(
        'Argument "backlog" to "tcp" has incompatible type "str"; expected "int"',
        'Argument of type "Literal[\'5\']" cannot be assigned to parameter "backlog" of type "int"',
    ),
    "daemon-as-float": Expected(
        'Argument "daemon" to "threaded" has incompatible type "float"; expected "bool"',
        'Argument of type "float" cannot be assigned to parameter "daemon" of type "bool"',
    ),
}

PAIRINGS = ("good_pairings.py", "bad_pairings.py")


def test_the_package_is_mypy_strict_clean() -> None:
    packages = [name for name in ("composerv", "compat") if (ROOT / name).is_dir()]
    result = run_mypy(*packages)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_package_is_pyright_strict_clean() -> None:
    """With pyproject.toml's [tool.pyright] settings, where this Python finds imports."""
    result = subprocess.run(
        [sys.executable, "-m", "pyright", "--pythonpath", sys.executable],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_examples_are_mypy_strict_clean() -> None:
    """Users copy the examples: they must type-check without ignores."""
    examples = sorted(str(path) for path in (ROOT / "examples").glob("*.py"))
    result = run_mypy(*examples)
    assert result.returncode == 0, result.stdout + result.stderr


def test_py_typed_is_shipped() -> None:
    assert (ROOT / "composerv" / "py.typed").is_file()


@pytest.mark.parametrize("checker", CHECKERS)
def test_good_pairings_type_check(checker: Checker) -> None:
    assert snippet_errors(checker, *PAIRINGS)["good_pairings.py"] == {}


@pytest.mark.parametrize("checker", CHECKERS)
def test_every_bad_pairing_is_an_error_and_nothing_else_is(checker: Checker) -> None:
    assert_errors_match(snippet_errors(checker, *PAIRINGS), "bad_pairings.py", EXPECTED, checker)
