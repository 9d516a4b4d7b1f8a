"""A program migrated to compat type-checks with mypy --strict and pyright strict, as
installed packages do.

The snippets are copied out of the source tree and checked from there, with no
MYPYPATH: each checker must find compat and composerv.compat as an installed
package, which it analyses only when the package ships a ``py.typed`` marker.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import compat
import composerv

from .typecheck import (
    CHECKERS,
    SNIPPETS,
    Checker,
    Errors,
    Expected,
    assert_errors_match,
    errors_by_line,
    pyright_errors,
    run_pyright,
)

EXPECTED = {
    "str-to-wfile": Expected(
        'No overload variant of "write" of "IO" matches argument type "str"',
        'Argument of type "Literal[\'text\']" cannot be assigned to parameter "s" of type '
        '"bytes" in function "write"',
    ),
    "int-as-bool": Expected(
        'base class "ThreadingMixIn" defined the type as "bool"',
        'Type "Literal[1]" is not assignable to declared type "bool"',
    ),
    "str-as-interval": Expected(
        'Argument "poll_interval" to "serve_forever" of "BaseServer" has incompatible type "str"',
        'Argument of type "Literal[\'0.5\']" cannot be assigned to parameter "poll_interval" '
        'of type "float"',
    ),
}
SNIPPET_NAMES = ("compat_migrated.py", "compat_mistakes.py")


def _copied(directory: Path, snippets: tuple[str, ...]) -> list[Path]:
    for name in snippets:
        shutil.copy(SNIPPETS / name, directory / name)
    return [directory / name for name in snippets]


def _without_path_variables() -> dict[str, str]:
    """This environment without MYPYPATH and PYTHONPATH: the checkers must find the
    packages where they are installed."""
    return {k: v for k, v in os.environ.items() if k not in ("MYPYPATH", "PYTHONPATH")}


def mypy_outside_the_tree(
    directory: Path, *snippets: str, python_executable: Path | None = None
) -> str:
    """mypy --strict on copies of `snippets` in `directory`, run from there; its output.

    mypy looks for installed packages where `python_executable` (default: this
    Python) finds them.
    """
    _copied(directory, snippets)
    python = ["--python-executable", str(python_executable)] if python_executable else []
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", *python, *snippets],
        cwd=directory,
        env=_without_path_variables(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return result.stdout + result.stderr


def pyright_outside_the_tree(directory: Path, *snippets: str) -> Errors:
    """pyright, strict, on copies of `snippets` in `directory`, run from there."""
    files = _copied(directory, snippets)
    return pyright_errors(run_pyright(directory, files, env=_without_path_variables()))


@pytest.mark.parametrize("checker", CHECKERS)
def test_a_migrated_program_passes_and_its_mistakes_fail(checker: Checker, tmp_path: Path) -> None:
    if checker == "mypy":
        output = mypy_outside_the_tree(tmp_path, *SNIPPET_NAMES)
        assert "import-untyped" not in output, output
        found = {name: errors_by_line(output, name) for name in SNIPPET_NAMES}
    else:
        found = pyright_outside_the_tree(tmp_path, *SNIPPET_NAMES)
    assert found.get("compat_migrated.py", {}) == {}, found
    assert_errors_match(found, "compat_mistakes.py", EXPECTED, checker)


def test_both_packages_ship_py_typed() -> None:
    for package in (compat, composerv):
        assert package.__file__ is not None
        assert (Path(package.__file__).parent / "py.typed").is_file(), package.__name__
