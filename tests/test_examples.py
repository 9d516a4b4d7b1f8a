"""The echo examples run as the README and ../shared/bench run them: READY, echo, SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from .support import DEADLINE, connect, recv_exactly

ROOT = Path(__file__).resolve().parent.parent


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(script: str, address: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / script), address],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the example prints READY once listening
    if line != "READY\n":
        proc.kill()
        _, err = proc.communicate(timeout=DEADLINE)
        pytest.fail(f"{script} did not print READY: {line!r} {err}")
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 0, err
    assert "listening on" in err


@pytest.mark.parametrize("script", ["echo_tcp.py", "echo_unix.py"])
def test_stream_echo_example(script: str, unix_path: str) -> None:
    if script == "echo_tcp.py":
        address = f"127.0.0.1:{free_port(socket.SOCK_STREAM)}"
        target: object = ("127.0.0.1", int(address.rsplit(":", 1)[1]))
    else:
        address, target = f"unix:{unix_path}", unix_path
    proc = start(script, address)
    try:
        with connect(target) as client:
            client.sendall(b"hello\n")
            assert recv_exactly(client, 6) == b"hello\n"
    finally:
        stop(proc)


def test_udp_echo_example() -> None:
    port = free_port(socket.SOCK_DGRAM)
    proc = start("echo_udp.py", f"127.0.0.1:{port}")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.settimeout(DEADLINE)
            client.sendto(b"hello", ("127.0.0.1", port))
            assert client.recv(16) == b"hello"
    finally:
        stop(proc)
