"""A real HAProxy for tests: a config, a frontend on a socket the test made, start and stop.

HAProxy 2.6 takes over a listening socket with ``bind fd@N``, so the frontend
listens on a port 0 socket whose address is read back: no guessed port, no race.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import attrs
import pytest

from .support import DEADLINE, required_program, stop_process, wait_until

CONFIG = """\
global
    nbthread 1
    stats socket {stats} mode 600 level user

defaults
    mode tcp
    # A connection the server refuses must fail the client, not be retried unseen.
    retries 0
    timeout connect {timeout}s
    timeout client {timeout}s
    timeout server {timeout}s

frontend front
    bind fd@{fd}{bind_options}
{frontend}
    default_backend back

backend back
    server s1 {server} {server_options}
"""


@attrs.frozen
class HAProxy:
    """A running HAProxy."""

    address: tuple[str, int]
    """Where clients connect (the frontend)."""
    log: Path
    """Its stdout and stderr, for failure messages."""
    stats: str
    """Its stats socket (see `show`)."""

    def show(self, command: str) -> str:
        """What the stats socket answers to `command`, e.g. ``"show stat"``."""
        return _ask(self.stats, command)

    def server_status(self, backend: str = "back", server: str = "s1") -> str:
        """The check status of `server` in `backend`: ``UP``, ``DOWN``, ``no check``..."""
        header, *rows = self.show("show stat").splitlines()
        names = header.lstrip("# ").split(",")
        for row in rows:
            fields = dict(zip(names, row.split(","), strict=False))
            if (fields.get("pxname"), fields.get("svname")) == (backend, server):
                return fields["status"]
        raise AssertionError(f"no server {server} in backend {backend}:\n{header}")


@contextlib.contextmanager
def running_haproxy(
    server: tuple[str, int],
    server_options: str,
    *,
    bind_options: str = "",
    frontend: Sequence[str] = (),
) -> Iterator[HAProxy]:
    """Run HAProxy in TCP mode, relaying to `server` with ``server s1 HOST:PORT <server_options>``.

    `bind_options` follow the frontend's ``bind`` (e.g. ``" ssl crt x.pem"``) and
    `frontend` adds lines to it. HAProxy is stopped, and waited for, on exit.
    """

    def config(stats: str, fd: int) -> str:
        return CONFIG.format(
            stats=stats,
            timeout=int(DEADLINE),
            fd=fd,
            bind_options=bind_options,
            frontend="".join(f"    {line}\n" for line in frontend),
            server=f"{server[0]}:{server[1]}",
            server_options=server_options,
        )

    with _running(config) as haproxy:
        yield haproxy


@contextlib.contextmanager
def running_haproxy_config(text: str, *, bind: str) -> Iterator[HAProxy]:
    """Run HAProxy with the configuration `text` as written (docs/deploying.md's), but
    for its frontend's ``bind BIND``, which listens on a port 0 socket instead, and a
    stats socket added to its ``global`` section."""
    assert f"bind {bind}\n" in text and text.startswith("global\n"), text

    def config(stats: str, fd: int) -> str:
        with_stats = text.replace(
            "global\n", f"global\n    stats socket {stats} mode 600 level user\n", 1
        )
        return with_stats.replace(f"bind {bind}\n", f"bind fd@{fd}\n")

    with _running(config) as haproxy:
        yield haproxy


@contextlib.contextmanager
def _running(config: Callable[[str, int], str]) -> Iterator[HAProxy]:
    """HAProxy with ``config(stats_socket_path, frontend_fd)``, until the block ends."""
    program = required_program("haproxy", "haproxy")
    with (
        tempfile.TemporaryDirectory(prefix="csv-haproxy-") as directory,
        socket.create_server(("127.0.0.1", 0)) as listener,
    ):
        stats = os.path.join(directory, "stats.sock")
        path = os.path.join(directory, "haproxy.cfg")
        log = Path(directory, "haproxy.log")
        Path(path).write_text(config(stats, listener.fileno()))
        with open(log, "wb") as output:
            process = subprocess.Popen(
                [program, "-db", "-f", path],
                pass_fds=(listener.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_until(
                lambda: _answers(process, stats, log), "haproxy to answer on its stats socket"
            )
            yield HAProxy(listener.getsockname(), log, stats)
        finally:
            stop_process(process)


def _answers(process: subprocess.Popen[bytes], stats: str, log: Path) -> bool:
    """True once HAProxy's event loop runs: its stats socket answers ``show info``."""
    if process.poll() is not None:
        raise AssertionError(f"haproxy exited with {process.returncode}:\n{log.read_text()}")
    try:
        return "Name: HAProxy" in _ask(stats, "show info")
    except (FileNotFoundError, ConnectionRefusedError):
        return False


def _ask(stats: str, command: str) -> str:
    with socket.socket(socket.AF_UNIX) as probe:
        probe.settimeout(DEADLINE)
        probe.connect(stats)
        probe.sendall(command.encode() + b"\n")
        return b"".join(iter(lambda: probe.recv(65536), b"")).decode()


def certificate_pem(directory: Path) -> Path:
    """A self-signed certificate for ``localhost`` and its key, in one PEM as ``crt`` takes it."""
    if shutil.which("openssl") is None:
        pytest.skip("needs openssl")
    cert, key, both = directory / "cert.pem", directory / "key.pem", directory / "both.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=DEADLINE,
    )  # fmt: skip
    both.write_bytes(cert.read_bytes() + key.read_bytes())
    return both
