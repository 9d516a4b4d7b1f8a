"""``composerv migrate``: rewriting socketserver imports to compat, and the --report.

The rewritten programs (examples/legacy and tests/legacy_programs) then run in a
subprocess with the stdlib socketserver blocked from import, against a real
client on loopback.
"""

from __future__ import annotations

import ast
import contextlib
import http.client
import importlib.util
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import xmlrpc.client
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import composerv
from composerv import _cli
from composerv._migrate import _imports
from composerv._migrate._report import report
from composerv._migrate._rewrite import migrate_source
from composerv._migrate._source import SourceError

from .cli import ROOT, Cli, run_to_exit
from .support import DEADLINE, connect, serving
from .test_compat_examples import EXPECTED, LEGACY

PROGRAMS = Path(__file__).with_name("legacy_programs")

# Runs a program as __main__ with the stdlib socketserver blocked, so that only
# compat can serve it. `preload` names stdlib modules the program uses that are
# built on the stdlib socketserver (http.server): they are imported before the block.
RUNNER = """
import importlib, runpy, signal, sys
path, *preload = sys.argv[1:]
for name in preload:
    importlib.import_module(name)
sys.modules["socketserver"] = None
sys.modules["SocketServer"] = None
signal.signal(signal.SIGINT, signal.default_int_handler)  # even if SIGINT came in ignored
sys.argv = [path]
runpy.run_path(path, run_name="__main__")
"""


def rewritten(text: str) -> str:
    return migrate_source(text.encode()).text


def cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    """Run ``composerv migrate ARGS`` in this process: (status, stdout, stderr)."""
    status = _cli.main(["migrate", *map(str, args)])
    out, err = capsys.readouterr()
    return status, out, err


# -- the rewrite, form by form ------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("import socketserver\n", "import compat.socketserver as socketserver\n"),
        ("import SocketServer\n", "import compat.SocketServer as SocketServer\n"),
        ("import socketserver as ss\n", "import compat.socketserver as ss\n"),
        ("import SocketServer, os\n", "import compat.SocketServer as SocketServer, os\n"),
        (
            "import os, socketserver as ss, sys  # why\n",
            "import os, compat.socketserver as ss, sys  # why\n",
        ),
        (
            "from SocketServer import ThreadingMixIn, TCPServer\n",
            "from compat.SocketServer import ThreadingMixIn, TCPServer\n",
        ),
        ("from socketserver import *\n", "from compat.socketserver import *\n"),
        (
            "from SocketServer import (a,  # one\n    b)\n",
            "from compat.SocketServer import (a,  # one\n    b)\n",
        ),
        (
            "def f():\n    import socketserver\n    return socketserver\n",
            "def f():\n    import compat.socketserver as socketserver\n    return socketserver\n",
        ),
        (
            "try:\n    import SocketServer\n"
            "except ImportError:\n    import socketserver as SocketServer\n",
            "try:\n    import compat.SocketServer as SocketServer\n"
            "except ImportError:\n    import compat.socketserver as SocketServer\n",
        ),
        (
            "import socketserver; import os\n",
            "import compat.socketserver as socketserver; import os\n",
        ),
        ("if 1: import socketserver\n", "if 1: import compat.socketserver as socketserver\n"),
        (
            "import os, \\\n    socketserver\n",
            "import os, \\\n    compat.socketserver as socketserver\n",
        ),
        (
            "import socketserver, SocketServer\n",
            "import compat.socketserver as socketserver, compat.SocketServer as SocketServer\n",
        ),
    ],
)
def test_rewrites_every_import_form(before: str, after: str) -> None:
    assert rewritten(before) == after
    assert rewritten(after) == after


@pytest.mark.parametrize(
    "source",
    [
        "from . import socketserver\n",
        "from .socketserver import TCPServer\n",
        "from ..SocketServer import TCPServer\n",
        "from ... import SocketServer\n",
        "import compat.socketserver as socketserver\n",
        "from compat import SocketServer\n",
        "s = 'import socketserver'\n",
        '"""\nimport SocketServer\n"""\n',
        "# import socketserver\n",
        "import socketservers, mysocketserver\n",
        "from socketserver_extra import TCPServer\n",
        "import os.socketserver\n",
        "x.socketserver = socketserver.TCPServer\n",
        "try:\n    pass\nexcept E as e:\n    raise ValueError() from socketserver\n",
        "def f():\n    yield from socketserver\n",
    ],
)
def test_leaves_everything_else_alone(source: str) -> None:
    migration = migrate_source(source.encode())
    assert migration.text == source
    assert not migration.changed
    assert migration.notes == ()


@pytest.mark.parametrize(
    ("source", "note"),
    [
        (
            "import socketserver.x\n",
            "import socketserver.x: socketserver is a module, not a package",
        ),
        ("from SocketServer.x import y\n", "from SocketServer.x: SocketServer is a module"),
        ('m = __import__("socketserver")\n', "__import__('socketserver') imports the stdlib"),
        (
            "import importlib\nm = importlib.import_module('SocketServer')\n",
            "import_module('SocketServer') imports the stdlib module at run time: not rewritten; "
            "make it compat.SocketServer by hand",
        ),
    ],
)
def test_reports_what_it_cannot_rewrite(source: str, note: str) -> None:
    migration = migrate_source(source.encode())
    assert migration.text == source
    assert [n.message for n in migration.notes if note in n.message] != []


@pytest.mark.parametrize(
    "original",
    [
        b"import os\r\nimport socketserver\r\n\r\nx = 1\r\n",  # Windows line endings
        b"# -*- coding: latin-1 -*-\nimport socketserver  # caf\xe9\ns = '\xe9'\n",
        b"\xef\xbb\xbfimport socketserver\nx = '\xc3\xa9'\n",  # UTF-8 with a BOM
        b"if 1:\n\timport socketserver\n\tx = 1\n",  # tabs
        b"import os\n\x0c\nimport socketserver\n",  # a form feed between sections
        b"import socketserver",  # no newline at the end
        b"x = '\\d'\nimport socketserver\n",  # a newer Python warns about the escape
    ],
    ids=["crlf", "latin-1", "bom", "tabs", "form-feed", "no-final-newline", "warning"],
)
def test_keeps_every_other_byte(original: bytes) -> None:
    migration = migrate_source(original)
    assert migration.migrated() == original.replace(
        b"import socketserver", b"import compat.socketserver as socketserver"
    )


def test_python2_sources_get_their_imports_rewritten() -> None:
    original = (
        b"import SocketServer, sys\n"
        b"print 'starting'\n"
        b"try:\n    run()\nexcept IOError, e:\n    print >>sys.stderr, e\n"
    )
    migration = migrate_source(original)
    assert migration.migrated() == original.replace(
        b"import SocketServer,", b"import compat.SocketServer as SocketServer,"
    )
    assert migration.not_python3 is not None
    assert migration.not_python3.startswith("line 2: ")


@pytest.mark.parametrize(
    ("source", "error"),
    [
        (b'import socketserver\nx = """never closed\n', "cannot tokenize it (line 2"),
        (b"import socketserver\nx = 'never closed\n", "cannot tokenize it (line 2"),
        (b"import socketserver\n\xe9\n", "cannot decode it"),
        (b"# -*- coding: klingon -*-\nimport socketserver\n", "cannot decode it"),
    ],
)
def test_refuses_what_it_cannot_read(source: bytes, error: str) -> None:
    with pytest.raises(SourceError, match=re.escape(error)):
        migrate_source(source)


def test_refuses_a_rewrite_that_would_change_more_than_the_import(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The checks after rewriting catch a wrong rewrite, on the tokens and on the tree."""
    real_rewrite = _imports._rewrite

    def wrong(item: _imports._Item) -> _imports.ImportRewrite:
        rewrite = real_rewrite(item)
        return _imports.ImportRewrite(rewrite.token, "compat.socketserver as other", "", "")

    monkeypatch.setattr(_imports, "_rewrite", wrong)
    with pytest.raises(SourceError, match="syntax tree would change beyond the imports"):
        migrate_source(b"import socketserver\n")

    def breaking(item: _imports._Item) -> _imports.ImportRewrite:
        return _imports.ImportRewrite(real_rewrite(item).token, "compat.socketserver(", "", "")

    monkeypatch.setattr(_imports, "_rewrite", breaking)
    with pytest.raises(SourceError, match="not safe"):
        migrate_source(b"import socketserver\nprint 'python 2'\n")


_FORMS = [
    "import socketserver",
    "import SocketServer as S",
    "import os, socketserver as ss, sys",
    "import socketserver, SocketServer",
    "from socketserver import TCPServer",
    "from SocketServer import (ThreadingMixIn,  # a comment\n    TCPServer as T,)",
    "from . import socketserver",
    "import compat.socketserver as socketserver",
    "x = 'import socketserver'  # import SocketServer",
    "import os, \\\n    SocketServer",
    "import_module('socketserver')",
]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.sampled_from(_FORMS), min_size=1, max_size=6),
    st.sampled_from(["", "if x:\n", "def f():\n", "class C:\n"]),
    st.sampled_from(["    ", "\t"]),
    st.sampled_from(["\n", "\r\n"]),
)
def test_any_mix_of_forms_is_rewritten_safely(
    forms: list[str], block: str, indent: str, newline: str
) -> None:
    if block:
        forms = [indent + form.replace("\n", "\n" + indent) for form in forms]
    text = (block + "\n".join(forms) + "\n").replace("\n", newline)
    migration = migrate_source(text.encode())  # its own checks raise if anything else changed
    tree = ast.parse(text)
    legacy = [a for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    legacy = [a for a in legacy if a.name in ("socketserver", "SocketServer")]
    froms = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0]
    froms = [n for n in froms if n.module in ("socketserver", "SocketServer")]
    assert len(migration.rewrites) == len(legacy) + len(froms)
    again = migrate_source(migration.migrated())
    assert not again.changed
    assert again.text == migration.text


# -- the command line ---------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A small source tree: two files to migrate, one that is fine, and places never looked in."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "server.py").write_text("import os, SocketServer\nx = 1\n")
    (tmp_path / "app" / "handlers.py").write_text(
        "from socketserver import (\n    StreamRequestHandler,\n)\n"
    )
    (tmp_path / "app" / "clean.py").write_text("import compat.socketserver as socketserver\n")
    for skipped in (".venv/lib", "build/__pycache__", "env/lib/site-packages", "node_modules"):
        (tmp_path / skipped).mkdir(parents=True)
        (tmp_path / skipped / "vendored.py").write_text("import socketserver\n")
    (tmp_path / "venv").mkdir()
    (tmp_path / "venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (tmp_path / "venv" / "vendored.py").write_text("import socketserver\n")
    return tmp_path


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_migrates_a_tree_and_says_what_it_changed(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _tree(project)
    status, out, err = cli(capsys, project)
    assert (status, err) == (0, "")
    app = project / "app"
    assert out.splitlines() == [
        f"{app}/handlers.py: rewrote 1 import",
        f"{app}/handlers.py:1: from socketserver import StreamRequestHandler -> "
        "from compat.socketserver import StreamRequestHandler",
        f"{app}/server.py: rewrote 1 import",
        f"{app}/server.py:1: import SocketServer -> import compat.SocketServer as SocketServer",
    ]
    after = _tree(project)
    changed = {name for name in after if after[name] != before[name]}
    assert changed == {"app/handlers.py", "app/server.py"}
    assert after["app/server.py"] == b"import os, compat.SocketServer as SocketServer\nx = 1\n"
    assert cli(capsys, project) == (0, "", "")


def test_check_exits_1_and_writes_nothing(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _tree(project)
    status, out, _ = cli(capsys, "--check", project)
    assert status == 1
    assert f"{project}/app/server.py: would rewrite 1 import" in out.splitlines()
    status, out, err = cli(capsys, "--check", "--diff", project)
    assert status == 1
    assert out.startswith("--- ")
    assert f"{project}/app/server.py: would rewrite 1 import" in err.splitlines()
    assert _tree(project) == before
    assert cli(capsys, "--check", project / "app" / "clean.py") == (0, "", "")


def _patch(diff: str, directory: Path) -> None:
    subprocess.run(
        ["patch", "-p0", "--silent"],
        input=diff,
        text=True,
        cwd=directory,
        check=True,
        timeout=DEADLINE,
    )


def test_diff_is_a_patch_that_applies(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    before = _tree(project)
    status, out, err = cli(capsys, "--diff", "app")
    assert status == 0
    assert _tree(project) == before
    assert err.splitlines()[0] == "app/handlers.py: would rewrite 1 import"
    assert out.startswith("--- app/handlers.py\n+++ app/handlers.py\n")
    assert "-import os, SocketServer\n+import os, compat.SocketServer as SocketServer\n" in out
    _patch(out, project)
    patched = _tree(project)
    for name, data in before.items():
        (project / name).write_bytes(data)
    cli(capsys, "app")
    assert _tree(project) == patched != before


def test_diff_of_a_file_without_a_final_newline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("last.py").write_bytes(b"x = 1\nimport socketserver")
    _, out, _ = cli(capsys, "--diff", "last.py")
    assert out.endswith(
        "-import socketserver\n\\ No newline at end of file\n"
        "+import compat.socketserver as socketserver\n\\ No newline at end of file\n"
    )
    _patch(out, tmp_path)
    assert Path("last.py").read_bytes() == b"x = 1\nimport compat.socketserver as socketserver"


def test_a_file_it_cannot_parse_is_reported_and_left_alone(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = project / "app" / "broken.py"
    broken.write_bytes(b"import socketserver\ns = '''never closed\n")
    status, out, err = cli(capsys, project)
    assert status == 2
    assert len(err.splitlines()) == 1
    assert err.startswith(f"{broken}: error: cannot tokenize it (line 2: ")
    assert err.endswith("); left alone\n")
    assert broken.read_bytes() == b"import socketserver\ns = '''never closed\n"
    assert "app/server.py: rewrote 1 import" in out  # the others are migrated all the same


def test_files_that_never_name_the_module_are_not_read_further(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "fixture.py").write_bytes(b'x = """never closed\n\xff\n')
    assert cli(capsys, tmp_path) == (0, "", "")
    assert cli(capsys, "--report", tmp_path) == (0, "", "")


def test_says_that_a_python2_file_needs_converting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "old.py"
    source.write_text("import SocketServer\nprint 'hi'\n")
    status, out, _ = cli(capsys, source)
    assert status == 0
    assert out.splitlines()[-1].startswith(f"{source}: note: not Python 3 (line 2: ")
    assert "needs a Python 2 to 3 conversion (e.g. 2to3) before it runs on compat" in out
    assert source.read_text() == "import compat.SocketServer as SocketServer\nprint 'hi'\n"
    # A Python 2 file that does not use socketserver is none of migrate's business.
    (tmp_path / "other.py").write_text("print 'hi'\n")
    assert cli(capsys, tmp_path / "other.py") == (0, "", "")


def test_warns_of_a_compat_module_of_the_program_s_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "app.py").write_text("import socketserver\n")
    (tmp_path / "compat.py").write_text("PY2 = False\n")
    _, out, _ = cli(capsys, tmp_path / "app.py")
    assert out.splitlines()[-1] == (
        f"{tmp_path}/app.py: note: {tmp_path}/compat.py would shadow composerv's compat package "
        "when app.py runs as a script (its directory comes first on sys.path)"
    )
    shutil.copytree(Path(ROOT) / "compat", tmp_path / "project" / "compat")
    (tmp_path / "project" / "app.py").write_text("import socketserver\n")
    _, out, _ = cli(capsys, tmp_path / "project" / "app.py")
    assert "shadow" not in out  # composerv's own compat, beside the program


def test_keeps_permissions_and_writes_through_symbolic_links(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "serve"  # no .py suffix: named explicitly, so migrated
    script.write_text("#!/usr/bin/env python3\nimport socketserver\n")
    script.chmod(0o751)
    link = tmp_path / "link.py"
    link.symlink_to(script)
    assert cli(capsys, link)[0] == 0
    assert link.is_symlink()
    assert (
        script.read_text() == "#!/usr/bin/env python3\nimport compat.socketserver as socketserver\n"
    )
    assert stat.S_IMODE(script.stat().st_mode) == 0o751
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.py", "serve"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--report", "--check", "."], "--report cannot be combined with --check or --diff"),
        (["/nonexistent/x.py"], "no such file or directory: /nonexistent/x.py"),
        ([], "the following arguments are required: PATH"),
    ],
)
def test_usage_errors(args: list[str], expected: str) -> None:
    result = run_to_exit("migrate", *args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"composerv: error: {expected} (see composerv migrate --help)"
    ]


# -- migrated programs, run on compat against a real client --------------------------------


@contextlib.contextmanager
def running(path: Path, *preload: str) -> Iterator[tuple[Cli, tuple[str, int]]]:
    """Run the program `path` with the stdlib socketserver blocked; yield it and its address.

    The program says ``listening on HOST PORT`` on stderr once it serves.
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", RUNNER, str(path), *preload],
        cwd=path.parent,
        env={**os.environ, "PYTHONPATH": ROOT},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    program = Cli(proc)
    try:
        match = program.wait_for(r"listening on (\S+) (\d+)")
        yield program, (match.group(1), int(match.group(2)))
    finally:
        program.close()


def stop(program: Cli) -> None:
    """Interrupt the program as a user would (Ctrl-C); it must exit cleanly."""
    program.proc.send_signal(signal.SIGINT)
    assert program.finish() == 0, "\n".join(program.lines)
    assert not [line for line in program.lines if "Traceback" in line], "\n".join(program.lines)


def _talk_lines(address: tuple[str, int], pid: int) -> None:
    with connect(address) as client, client.makefile("rb") as replies:
        client.sendall(b"SIZE 5\nhello")
        assert replies.readline() == b"5 HELLO\n"
        client.sendall(b"one\ntwo\n")
        for line in (b" one\n", b" two\n"):
            thread, _, rest = replies.readline().partition(b" ")
            assert thread.startswith(b"composerv-request-")  # compat's ThreadingMixIn
            assert b" " + rest == line


def _talk_guarded(address: tuple[str, int], pid: int) -> None:
    with connect(address) as client:
        client.sendall(b"ping")
        assert client.recv(64) == b"pid %d: ping" % pid


def _talk_udp(address: tuple[str, int], pid: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(DEADLINE)
        client.sendto(b"ping", address)
        assert client.recv(64) == b"PING"


def _talk_http(address: tuple[str, int], pid: int) -> None:
    connection = http.client.HTTPConnection(*address, timeout=DEADLINE)
    try:
        connection.request("GET", "/")
        response = connection.getresponse()
        assert response.status == 200
        assert response.read().startswith(b"hello from composerv-request-")
    finally:
        connection.close()


class _TimedTransport(xmlrpc.client.Transport):
    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        connection = super().make_connection(host)
        connection.timeout = DEADLINE
        return connection


def _talk_xmlrpc(address: tuple[str, int], pid: int) -> None:
    url = "http://{}:{}/".format(*address)
    with xmlrpc.client.ServerProxy(url, transport=_TimedTransport()) as proxy:
        assert proxy.add(2, 40) == 42
        assert str(proxy.where()).startswith("composerv-request-")


PROGRAM_CLIENTS: dict[str, tuple[Callable[[tuple[str, int], int], None], tuple[str, ...]]] = {
    "line_server.py": (_talk_lines, ()),
    "guarded_server.py": (_talk_guarded, ()),
    "star_udp_server.py": (_talk_udp, ()),
    "http_server.py": (_talk_http, ("http.server",)),
    "xmlrpc_server.py": (_talk_xmlrpc, ("xmlrpc.server",)),
}


@pytest.fixture
def migrated_programs(tmp_path: Path) -> Path:
    shutil.copytree(PROGRAMS, tmp_path / "programs")
    result = run_to_exit("migrate", str(tmp_path / "programs"))
    assert result.returncode == 0, result.stderr
    return tmp_path / "programs"


@pytest.mark.parametrize("name", sorted(PROGRAM_CLIENTS))
def test_migrated_program_serves_a_real_client_on_compat(
    name: str, migrated_programs: Path
) -> None:
    talk, preload = PROGRAM_CLIENTS[name]
    with running(migrated_programs / name, *preload) as (program, address):
        talk(address, program.proc.pid)
        stop(program)


def test_every_legacy_program_is_run() -> None:
    assert sorted([*PROGRAM_CLIENTS, "python2_server.py"]) == sorted(
        path.name for path in PROGRAMS.glob("*.py")
    )


def test_an_unmigrated_program_cannot_run_with_the_stdlib_module_blocked() -> None:
    """The block is real: without migration the program does not start."""
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, str(PROGRAMS / "line_server.py")],
        env={**os.environ, "PYTHONPATH": ROOT},
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert result.returncode == 1
    assert "ModuleNotFoundError: import of socketserver halted" in result.stderr


def test_the_legacy_examples_run_on_compat_once_migrated(tmp_path: Path) -> None:
    shutil.copytree(LEGACY, tmp_path / "legacy")
    result = run_to_exit("migrate", str(tmp_path / "legacy"))
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2 * len(EXPECTED)  # a file line, an import line
    for name, expected in EXPECTED.items():
        path = tmp_path / "legacy" / name
        changed = set(path.read_text().splitlines()) ^ set((LEGACY / name).read_text().splitlines())
        assert changed == {"import SocketServer", "import compat.SocketServer as SocketServer"}
        completed = subprocess.run(
            [sys.executable, "-c", RUNNER, str(path)],
            env={**os.environ, "PYTHONPATH": ROOT},
            capture_output=True,
            text=True,
            timeout=DEADLINE * 3,
            check=False,
        )
        assert (completed.returncode, completed.stderr) == (0, "")
        for line in expected:
            assert line in completed.stdout


def test_python2_program_changes_only_its_import_line(migrated_programs: Path) -> None:
    original = (PROGRAMS / "python2_server.py").read_bytes().splitlines(keepends=True)
    migrated = (migrated_programs / "python2_server.py").read_bytes().splitlines(keepends=True)
    assert [i for i, (a, b) in enumerate(zip(original, migrated, strict=True)) if a != b] == [2]
    assert migrated[2] == b"import BaseHTTPServer, compat.SocketServer as SocketServer\n"
    assert b"caf\xe9" in migrated[1]  # still latin-1, as its coding cookie says


@pytest.mark.skipif(
    importlib.util.find_spec("lib2to3") is None, reason="lib2to3 left the stdlib in Python 3.13"
)
def test_python2_program_runs_on_compat_after_2to3(migrated_programs: Path) -> None:
    path = migrated_programs / "python2_server.py"
    subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "lib2to3", "--write", "--nobackups", str(path)],
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert "import http.server, compat.SocketServer as SocketServer\n" in path.read_text("latin-1")
    with running(path, "http.server") as (program, address):
        _talk_http(address, program.proc.pid)
        stop(program)


# -- the report ---------------------------------------------------------------------------


def _report(path: Path) -> list[str]:
    return report(str(path), path.read_bytes())


def test_report_on_the_threaded_example() -> None:
    lines = _report(LEGACY / "threaded_tcp_server.py")
    assert lines[0] == str(LEGACY / "threaded_tcp_server.py")
    assert (
        "  line 24: server class ThreadedTCPServer(SocketServer.ThreadingMixIn, "
        "SocketServer.TCPServer): threaded() on tcp"
    ) in lines
    assert (
        '    on the core: serve(tcp(("127.0.0.1", 0)), threaded(), '
        "request_handler(ThreadedTCPRequestHandler))"
    ) in lines
    stream = lines.index(
        '    as a stream_handler: serve(tcp(("127.0.0.1", 0)), threaded(), stream_handler(handle)),'
        " where handle(conn: Connection) is the body of ThreadedTCPRequestHandler.handle, with:"
    )
    assert lines[stream + 1 : stream + 3] == [
        "      self.request.recv(n) -> conn.recv(n)",
        "      self.request.sendall(data) -> conn.send_all(data)",
    ]
    assert lines[stream + 3].startswith(
        '    as a message_handler: serve(tcp(("127.0.0.1", 0)), evented(), message_handler(reply))'
    )
    assert lines[-1].startswith("  1 import of the stdlib module remains: composerv migrate ")


def test_report_carries_settings_over_and_lists_what_the_program_relies_on() -> None:
    lines = _report(PROGRAMS / "line_server.py")
    assert (
        '    on the core: serve(tcp(("127.0.0.1", 0)), threaded(daemon=True), '
        "request_handler(Handler), limits=limits(idle_timeout=10))"
    ) in lines
    assert "      self.rfile.readline() -> conn.readline()" in lines
    assert "      self.request.sendall(data) -> conn.send_all(data)" in lines
    assert any("it reads lines, so this fits" in line for line in lines)
    relied = lines[lines.index("  relies on:") + 1 : -1]
    assert relied == [
        "    line 14: Handler.timeout = 10: limits(idle_timeout=10)",
        "    line 25: Server.allow_reuse_address = True: what tcp() does by default",
        "    line 26: Server.daemon_threads = True: threaded(daemon=True)",
    ]


def test_report_names_the_hooks_a_program_overrides() -> None:
    text = "\n".join(_report(PROGRAMS / "guarded_server.py"))
    assert "line 21: Server overrides verify_request(): no hook on the core" in text
    assert "line 24: Server overrides handle_error(): the core logs handler errors" in text
    assert "a stream handler using self.request.recv, self.request.sendall" in text


def test_report_on_a_datagram_server() -> None:
    lines = _report(LEGACY / "udp_server.py")
    assert (
        '    on the core: serve(udp(("127.0.0.1", 0)), sync(), '
        'request_handler(MyUDPHandler, kind="datagram"))'
    ) in lines
    assert "      self.request[1].sendto(data, self.client_address) -> dgram.reply(data)" in lines
    assert any("message_handler(reply, datagrams())" in line for line in lines)
    assert not any("limits()" in line for line in lines)  # a datagram server has no connections


@pytest.mark.parametrize("name", ["http_server.py", "xmlrpc_server.py"])
def test_report_on_a_mixin_over_a_stdlib_server(name: str) -> None:
    text = "\n".join(_report(PROGRAMS / name))
    assert "Server mixes a socketserver mixin into a stdlib server" in text
    assert (
        "compat's ThreadingMixIn and ForkingMixIn work on such classes (compat/_mixins.py)" in text
    )
    assert "no core rewrite: it keeps its stdlib class; http.server and xmlrpc.server" in text
    assert '(sys.modules["socketserver"] = compat.socketserver) before http.server' in text


def test_report_on_a_python2_program_asks_for_conversion_first() -> None:
    _, note = _report(PROGRAMS / "python2_server.py")
    assert note.startswith("  not Python 3 (line 28: ")
    assert note.endswith(
        "): convert it from Python 2 (e.g. with 2to3), then run --report on it again"
    )


def test_report_flags_what_compat_lacks_and_state_on_the_server(tmp_path: Path) -> None:
    source = tmp_path / "state.py"
    source.write_text(
        "import socketserver\n"
        "class H(socketserver.StreamRequestHandler):\n"
        "    def handle(self):\n"
        "        self.server.clients.append(self.client_address)\n"
        "selector = socketserver._ServerSelector\n"
    )
    relied = _report(source)
    assert any(line.startswith("    line 4: H reads self.server.clients:") for line in relied)
    assert (
        "    line 5: uses socketserver._ServerSelector, which compat.socketserver does not have"
        in relied
    )


def test_report_follows_address_family_and_the_order_of_the_source(tmp_path: Path) -> None:
    source = tmp_path / "unix.py"
    source.write_text(
        "import socket, socketserver\n"
        "class H(socketserver.BaseRequestHandler):\n    pass\n"
        "class S(socketserver.ThreadingTCPServer):\n    address_family = socket.AF_UNIX\n"
        "class H(socketserver.StreamRequestHandler):\n    pass\n"
        "S('/run/app.sock', H)\n"
    )
    lines = _report(source)
    assert [line.split(":")[0] for line in lines if " class " in line] == [
        "  line 2",
        "  line 4",
        "  line 6",
    ]
    core = "    on the core: serve(unix_stream('/run/app.sock'), threaded(), request_handler(H))"
    assert core in lines
    family = "    line 5: S.address_family = socket.AF_UNIX: a unix socket, which "
    assert f"{family}unix_stream(path) binds" in lines


def test_report_mode_writes_nothing_and_skips_plain_files(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _tree(project)
    status, out, err = cli(capsys, "--report", project)
    assert (status, err) == (0, "")
    assert out.splitlines()[0] == f"{project}/app/handlers.py"
    assert f"{project}/app/clean.py" not in out
    assert _tree(project) == before


@pytest.mark.parametrize(
    ("name", "talk"),
    [
        ("threaded_tcp_server.py", "stream"),
        ("echo_stream_server.py", "lines"),
        ("udp_server.py", "datagram"),
    ],
)
def test_the_suggested_core_server_serves(name: str, talk: str, composerv_no_leaks: None) -> None:
    """The report's ``on the core:`` line is code that runs, with the program's own handler."""
    path = LEGACY / name
    suggestion = next(line for line in _report(path) if line.startswith("    on the core: "))
    namespace: dict[str, Any] = {"__name__": "legacy"}
    source = migrate_source(path.read_bytes()).text
    exec(compile(source, str(path), "exec"), namespace)
    namespace.update({n: getattr(composerv, n) for n in composerv.__all__})
    server = eval(suggestion.removeprefix("    on the core: "), namespace)
    with serving(server):
        if talk == "datagram":
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
                client.settimeout(DEADLINE)
                client.sendto(b"hello\n", server.address)
                assert client.recv(64) == b"HELLO"
        else:
            with connect(server.address) as client:
                client.sendall(b"hello\n")
                reply = client.recv(64)
                assert reply.endswith(b"HELLO\n" if talk == "lines" else b": hello\n")


# -- the docs show real output --------------------------------------------------------------

MIGRATING = Path(ROOT) / "docs" / "migrating.md"


def test_the_docs_show_what_the_tool_prints() -> None:
    text = MIGRATING.read_text()
    check = re.search(
        r"```console\n\$ composerv migrate --check examples/legacy\n(.*?)\$ ", text, re.S
    )
    assert check is not None
    result = run_to_exit("migrate", "--check", "examples/legacy")
    assert result.stdout == check.group(1)
    blocks = re.findall(r"```text\n(.*?)```", text, re.S)
    threaded = LEGACY / "threaded_tcp_server.py"
    assert blocks[0].splitlines() == report(threaded.name, threaded.read_bytes())
    for block, name in zip(blocks[1:], ["line_server.py", "guarded_server.py"], strict=True):
        lines = _report(PROGRAMS / name)
        assert block.splitlines() == lines[lines.index("  relies on:") : -1]
