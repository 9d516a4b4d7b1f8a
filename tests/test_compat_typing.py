"""A program migrated to compat type-checks with mypy --strict, as installed packages do.

The snippets are copied out of the source tree and checked from there, with no
MYPYPATH: mypy must find compat and composerv.compat as an installed package, which
it analyses only when the package ships a ``py.typed`` marker.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import compat
import composerv

from .test_typing import SNIPPETS, errors_by_line

EXPECTED = {
    "str-to-wfile": 'No overload variant of "write" of "IO" matches argument type "str"',
    "int-as-bool": 'base class "ThreadingMixIn" defined the type as "bool"',
    "str-as-interval": (
        'Argument "poll_interval" to "serve_forever" of "BaseServer" has incompatible type "str"'
    ),
}


def mypy_outside_the_tree(
    directory: Path, *snippets: str, python_executable: Path | None = None
) -> str:
    """mypy --strict on copies of `snippets` in `directory`, run from there; its output.

    mypy looks for installed packages where `python_executable` (default: this
    Python) finds them.
    """
    for name in snippets:
        shutil.copy(SNIPPETS / name, directory / name)
    # Neither path variable: mypy must find the packages where they are installed.
    env = {k: v for k, v in os.environ.items() if k not in ("MYPYPATH", "PYTHONPATH")}
    python = ["--python-executable", str(python_executable)] if python_executable else []
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", *python, *snippets],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return result.stdout + result.stderr


def test_a_migrated_program_passes_and_its_mistakes_fail(tmp_path: Path) -> None:
    output = mypy_outside_the_tree(tmp_path, "compat_migrated.py", "compat_mistakes.py")
    assert errors_by_line(output, "compat_migrated.py") == {}, output
    source = (SNIPPETS / "compat_mistakes.py").read_text().splitlines()
    wanted = {
        number: EXPECTED[match.group(1)]
        for number, line in enumerate(source, start=1)
        if (match := re.search(r"# E: (\S+)$", line))
    }
    assert sorted(wanted.values()) == sorted(EXPECTED.values()), "every expectation is used once"
    found = errors_by_line(output, "compat_mistakes.py")
    assert set(found) == set(wanted), output
    for number, fragment in wanted.items():
        assert any(fragment in message for message in found[number]), (number, found[number])
    assert "import-untyped" not in output, output


def test_both_packages_ship_py_typed() -> None:
    for package in (compat, composerv):
        assert package.__file__ is not None
        assert (Path(package.__file__).parent / "py.typed").is_file(), package.__name__
