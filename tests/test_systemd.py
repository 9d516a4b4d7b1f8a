"""systemd: notifications on $NOTIFY_SOCKET, and sockets passed in with their LISTEN_FDNAMES."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from composerv import ConfigurationError
from composerv._systemd import notify, ready, reloading, status, stopping
from composerv._transports._inherited import named_systemd_sockets

from .cli import ROOT
from .support import DEADLINE


@pytest.fixture
def systemd(unix_path: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A datagram socket standing in for systemd's, named in $NOTIFY_SOCKET."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(unix_path)
        sock.settimeout(DEADLINE)
        monkeypatch.setenv("NOTIFY_SOCKET", unix_path)
        yield sock


def test_ready_stopping_and_status(systemd: socket.socket) -> None:
    assert ready()
    assert systemd.recv(4096) == b"READY=1"
    assert status("serving 3 connections")
    assert systemd.recv(4096) == b"STATUS=serving 3 connections"
    assert stopping()
    assert systemd.recv(4096) == b"STOPPING=1"


def test_reloading_sends_the_monotonic_time(systemd: socket.socket) -> None:
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    first, second = systemd.recv(4096).decode().split("\n")
    assert first == "RELOADING=1"
    name, _, value = second.partition("=")
    assert name == "MONOTONIC_USEC"
    assert before <= int(value) <= after


def test_an_abstract_socket_is_written_with_an_at_sign(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"composerv-test-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(DEADLINE)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert notify("READY=1\nSTATUS=up")
        assert sock.recv(4096) == b"READY=1\nSTATUS=up"


def test_outside_systemd_nothing_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not ready()
    monkeypatch.setenv("NOTIFY_SOCKET", "")
    assert not ready()


@pytest.mark.parametrize(
    ("address", "logged"),
    [
        ("/nonexistent/notify.sock", "could not notify systemd at NOTIFY_SOCKET='/nonexistent/"),
        ("vsock:2:1234", "NOTIFY_SOCKET='vsock:2:1234' is not a unix socket"),
    ],
)
def test_an_unreachable_socket_is_logged_not_raised(
    address: str, logged: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    with caplog.at_level(logging.DEBUG, logger="composerv"):
        assert not stopping()
    assert [record.levelno for record in caplog.records] == [logging.DEBUG]
    assert logged in caplog.text


def test_status_is_one_line(systemd: socket.socket) -> None:
    with pytest.raises(ConfigurationError, match="status text must be one line"):
        status("up\nREADY=1")


# Run in a child that systemd's way of passing sockets is reproduced for: the sockets on
# descriptors 3, 4, ... and LISTEN_PID naming the child itself (exec keeps the shell's $$).
CHILD = """
import json, sys
from composerv._transports._inherited import named_systemd_sockets
named = named_systemd_sockets()
json.dump({name: [[t.fd, type(t).__name__] for t in ts] for name, ts in named.items()}, sys.stdout)
"""


def run_with_sockets(sockets: list[socket.socket], fdnames: str | None) -> object:
    # Copies on descriptors 10 and up, so that moving them to 3, 4, ... overwrites none.
    copies = [fcntl.fcntl(sock.fileno(), fcntl.F_DUPFD, 10) for sock in sockets]
    try:
        moves = " ".join(f"{3 + i}<&{copy}" for i, copy in enumerate(copies))
        names = "" if fdnames is None else f"LISTEN_FDNAMES={fdnames} "
        shell = f'LISTEN_PID=$$ LISTEN_FDS={len(copies)} {names}exec "$0" -c "$1" {moves}'
        child = subprocess.run(
            ["/bin/bash", "-c", shell, sys.executable, CHILD],
            pass_fds=copies,
            capture_output=True,
            cwd=ROOT,
            timeout=DEADLINE,
            check=True,
        )
    finally:
        for copy in copies:
            os.close(copy)
    return json.loads(child.stdout)


def test_sockets_are_grouped_by_their_names() -> None:
    with (
        socket.create_server(("127.0.0.1", 0)) as web,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as metrics,
        socket.create_server(("127.0.0.1", 0)) as second_web,
    ):
        metrics.bind(("127.0.0.1", 0))
        assert run_with_sockets([web, metrics, second_web], "web:metrics:web") == {
            "web": [[3, "InheritedStream"], [5, "InheritedStream"]],
            "metrics": [[4, "InheritedDatagram"]],
        }
        assert run_with_sockets([web], None) == {"unknown": [[3, "InheritedStream"]]}


def test_names_must_match_the_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    assert named_systemd_sockets() == {}
    monkeypatch.setenv("LISTEN_PID", str(os.getpid()))
    monkeypatch.setenv("LISTEN_FDS", "2")
    monkeypatch.setenv("LISTEN_FDNAMES", "web")
    with pytest.raises(ConfigurationError, match="must name each of the LISTEN_FDS=2 sockets"):
        named_systemd_sockets()
