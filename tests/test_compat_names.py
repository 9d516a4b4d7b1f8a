"""composerv.compat.socketserver and composerv.compat.SocketServer are compat's modules.

A project with a top-level ``compat`` module of its own imports the classic API under
composerv's name; a program that mixes both names must still see one set of classes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import compat.SocketServer
import compat.socketserver
import composerv.compat
import composerv.compat.SocketServer
import composerv.compat.socketserver

from .support import DEADLINE, connect, recv_exactly, serving


def test_the_submodules_are_the_same_module_objects() -> None:
    assert composerv.compat.socketserver is compat.socketserver
    assert composerv.compat.SocketServer is compat.SocketServer
    assert sys.modules["composerv.compat.socketserver"] is compat.socketserver
    assert sys.modules["composerv.compat.SocketServer"] is compat.SocketServer


def run_python(cwd: Path, *args: str) -> None:
    """Run a fresh interpreter with `args` in `cwd`; it must succeed."""
    result = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("statement", "compat_name"),
    [
        ("import composerv.compat.socketserver as m", "compat.socketserver"),
        ("from composerv.compat import socketserver as m", "compat.socketserver"),
        ("from composerv.compat import SocketServer as m", "compat.SocketServer"),
    ],
)
def test_importing_the_composerv_name_first_gives_compat(
    statement: str, compat_name: str, tmp_path: Path
) -> None:
    """In a fresh interpreter, before anything has imported compat."""
    check = f"{statement}; import sys; assert m is sys.modules[{compat_name!r}], m"
    run_python(tmp_path, "-c", check)


SHADOWED = """
import sys
{first}
assert compat.MINE and sys.modules["compat"] is compat
from composerv.compat import SocketServer
server = SocketServer.ThreadingTCPServer(("127.0.0.1", 0), socketserver.StreamRequestHandler)
server.server_close()
assert SocketServer.TCPServer is socketserver.TCPServer
assert socketserver.__file__.endswith("/compat/socketserver.py"), socketserver.__file__
"""


@pytest.mark.parametrize(
    "first",
    [
        "import compat\nimport composerv.compat.socketserver as socketserver",
        "import composerv.compat.socketserver as socketserver\nimport compat",
    ],
    ids=["project-compat-first", "composerv-compat-first"],
)
def test_a_projects_own_compat_module_does_not_hide_composerv_compat(
    first: str, tmp_path: Path
) -> None:
    """A ``compat.py`` beside the main script comes first on sys.path."""
    (tmp_path / "compat.py").write_text("MINE = True\n")
    (tmp_path / "main.py").write_text(SHADOWED.format(first=first))
    run_python(tmp_path, "main.py")


class Shout(composerv.compat.socketserver.StreamRequestHandler):
    def handle(self) -> None:
        self.wfile.write(self.rfile.readline().upper())


def test_a_handler_under_one_name_serves_on_a_server_under_the_other(
    composerv_no_leaks: None,
) -> None:
    server = compat.SocketServer.ThreadingTCPServer(("127.0.0.1", 0), Shout)
    assert isinstance(server, composerv.compat.socketserver.BaseServer)
    with serving(server), connect(server.server_address) as client:
        client.sendall(b"hello\n")
        assert recv_exactly(client, 6) == b"HELLO\n"
