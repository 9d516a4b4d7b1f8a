"""The package as users get it, and the versions it promises.

``python -m build`` makes an sdist and a wheel from it, ``twine check`` passes on
both, and the wheel, installed in a fresh venv (not editable), runs the CLI, the echo
example and a program migrated to compat, from a directory outside the source tree.
pyproject.toml's classifiers name the Python versions that .ci/run tests, and .ci/run
runs README's test command for each.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

import composerv

from .cli import Cli, inet
from .support import connect, recv_exactly
from .test_compat_typing import mypy_outside_the_tree
from .typecheck import errors_by_line

ROOT = Path(__file__).resolve().parent.parent

# Building fetches hatchling into an isolated environment and installing the wheel
# fetches its dependencies: registry round trips (usually from pip's cache), so a
# deadline well above the suite's DEADLINE for socket waits.
INSTALL_DEADLINE = 300.0

VERSION = composerv.__version__


def run(command: Sequence[str | Path], **options: object) -> subprocess.CompletedProcess[str]:
    """Run `command` to its end within INSTALL_DEADLINE; it must succeed."""
    result: subprocess.CompletedProcess[str] = subprocess.run(  # type: ignore[call-overload]
        [str(part) for part in command],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=INSTALL_DEADLINE,
        check=False,
        **options,
    )
    assert result.returncode == 0, f"{command}:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


def outside_the_tree() -> dict[str, str]:
    """The environment for a program that must import composerv from where it is installed."""
    return {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory ``python -m build`` wrote the sdist and the wheel (built from it) to."""
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", out, ROOT])
    return out


@pytest.fixture(scope="module")
def venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the built wheel installed (a copy, not an editable install)."""
    path = tmp_path_factory.mktemp("venv")
    run([sys.executable, "-m", "venv", path])
    run([path / "bin" / "python", "-m", "pip", "install", "-q", wheel_in(dist)])
    return path


def wheel_in(dist: Path) -> Path:
    return dist / f"composerv-{VERSION}-py3-none-any.whl"


def sdist_in(dist: Path) -> Path:
    return dist / f"composerv-{VERSION}.tar.gz"


@contextmanager
def started(command: Sequence[str | Path], cwd: Path) -> Iterator[Cli]:
    """`command` running in `cwd` outside the source tree; killed if still running at the end."""
    proc = subprocess.Popen(
        [str(part) for part in command],
        cwd=cwd,
        env=outside_the_tree(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    cli = Cli(proc)
    try:
        yield cli
    finally:
        cli.close()


def echo_once(address: object) -> None:
    with connect(address) as client:
        client.sendall(b"ping\n")
        assert recv_exactly(client, 5) == b"ping\n"


def stop(cli: Cli) -> None:
    cli.proc.send_signal(signal.SIGTERM)
    assert cli.finish() == 0, "\n".join(cli.lines)


@pytest.mark.slow
def test_build_makes_an_sdist_and_a_wheel_that_twine_check_passes(dist: Path) -> None:
    assert sorted(dist.iterdir()) == [wheel_in(dist), sdist_in(dist)]
    result = run([sys.executable, "-m", "twine", "check", "--strict", *sorted(dist.iterdir())])
    assert result.stdout.count("PASSED") == 2, result.stdout


@pytest.mark.slow
def test_the_wheel_holds_both_packages_with_py_typed_and_the_cli(dist: Path) -> None:
    with zipfile.ZipFile(wheel_in(dist)) as wheel:
        names = set(wheel.namelist())
        entry_points = wheel.read(f"composerv-{VERSION}.dist-info/entry_points.txt").decode()
    assert {
        "composerv/py.typed",
        "composerv/compat/socketserver.py",
        "composerv/compat/SocketServer.py",
        "compat/py.typed",
        "compat/socketserver.py",
        "compat/SocketServer.py",
    } <= names
    assert not [name for name in names if name.startswith(("tests/", "docs/", "examples/"))]
    assert "composerv = composerv._cli:main" in entry_points


@pytest.mark.slow
def test_the_sdist_holds_what_a_contributor_needs(dist: Path) -> None:
    with tarfile.open(sdist_in(dist)) as sdist:
        names = {name.removeprefix(f"composerv-{VERSION}/") for name in sdist.getnames()}
    wanted = {"CHANGELOG.md", "README.md", "pyproject.toml", ".ci/run", "docs/migrating.md"}
    assert wanted | {"tests/test_packaging.py", "examples/echo_tcp.py"} <= names
    assert not [name for name in names if name.startswith(".venv")]


@pytest.mark.slow
@pytest.mark.parametrize("own_compat", [False, True], ids=["alone", "beside-a-projects-compat"])
def test_the_installed_wheel_is_what_imports(venv: Path, tmp_path: Path, own_compat: bool) -> None:
    """Also where a project's own compat.py (first on sys.path) hides the top-level name."""
    if own_compat:
        (tmp_path / "compat.py").write_text("")
    result = run(
        [
            venv / "bin" / "python",
            "-c",
            "import compat, composerv, composerv.compat.socketserver as s;"
            "print(composerv.__file__, s.__file__, compat.__file__)",
        ],
        cwd=tmp_path,
        env=outside_the_tree(),
    )
    *ours, top_level_compat = map(Path, result.stdout.split())
    assert [path.is_relative_to(venv) for path in ours] == [True, True], result.stdout
    assert top_level_compat == (
        tmp_path / "compat.py" if own_compat else ours[1].parent / "__init__.py"
    )


@pytest.mark.slow
def test_the_installed_cli_serves_an_app_module(venv: Path, tmp_path: Path) -> None:
    shutil.copy(ROOT / "tests" / "apps" / "echo.py", tmp_path / "echo_app.py")
    command: list[str | Path] = [
        venv / "bin" / "composerv",
        "run",
        "echo_app:handler",
        "--bind",
        "tcp://127.0.0.1:0",
    ]
    with started(command, tmp_path) as cli:
        echo_once(inet(cli.listening()))
        stop(cli)


@pytest.mark.slow
def test_the_echo_example_runs_on_the_installed_wheel(venv: Path, tmp_path: Path) -> None:
    command: list[str | Path] = [
        venv / "bin" / "python",
        ROOT / "examples" / "echo_tcp.py",
        "127.0.0.1:0",
    ]
    with started(command, tmp_path) as cli:
        echo_once(ast.literal_eval(cli.wait_for(r"listening on (.*?); ").group(1)))
        stop(cli)


@pytest.mark.slow
def test_a_migrated_program_runs_and_type_checks_on_the_installed_wheel(
    venv: Path, tmp_path: Path
) -> None:
    python = venv / "bin" / "python"
    output = mypy_outside_the_tree(tmp_path, "compat_migrated.py", python_executable=python)
    assert errors_by_line(output, "compat_migrated.py") == {}, output
    result = run([python, tmp_path / "compat_migrated.py"], cwd=tmp_path, env=outside_the_tree())
    servers = [line.split(" on ")[0] for line in result.stdout.splitlines()]
    assert servers == ["ThreadingTCPServer", "ThreadingTCPServer", "Server"], result.stdout


def ci_versions() -> list[str]:
    match = re.search(r"^VERSIONS=\(([^)]*)\)$", (ROOT / ".ci" / "run").read_text(), re.M)
    assert match, "no VERSIONS=(...) line in .ci/run"
    return match.group(1).split()


def test_the_classifiers_name_the_versions_ci_runs() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    classified = re.findall(r'"Programming Language :: Python :: (3\.\d+)"', pyproject)
    assert classified == ci_versions()
    assert f'requires-python = ">={classified[0]}"' in pyproject


def test_ci_runs_readmes_test_command_for_each_version() -> None:
    """README says its test command is exactly what CI runs: step by step, per venv."""
    blocks = re.findall(r"```sh\n(.*?)\n```", (ROOT / "README.md").read_text(), re.DOTALL)
    (command,) = [block for block in blocks if "pytest" in block]
    ci = (ROOT / ".ci" / "run").read_text()
    for step in command.split(" && "):
        assert step.replace("python3", '"$python"').replace(".venv", '"$venv"') in ci, step
