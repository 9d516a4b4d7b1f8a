"""The echo examples run as the README and ../shared/bench run them: READY, echo, SIGTERM."""

from __future__ import annotations

import ast
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from .support import DEADLINE, connect, recv_exactly

ROOT = Path(__file__).resolve().parent.parent


def start(script: str, address: str) -> tuple[subprocess.Popen[str], object]:
    """Start an example; return it and the address it reports on stderr."""
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
    assert proc.stderr is not None
    reported = proc.stderr.readline()  # printed before READY, so it is already there
    match = re.match(r"listening on (.*?); ", reported)
    assert match, reported
    return proc, ast.literal_eval(match.group(1))


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 0, err


@pytest.mark.parametrize("script", ["echo_tcp.py", "echo_unix.py"])
def test_stream_echo_example(script: str, unix_path: str) -> None:
    address = "127.0.0.1:0" if script == "echo_tcp.py" else f"unix:{unix_path}"
    proc, target = start(script, address)
    try:
        with connect(target) as client:
            client.sendall(b"hello\n")
            assert recv_exactly(client, 6) == b"hello\n"
    finally:
        stop(proc)


def test_udp_echo_example() -> None:
    proc, target = start("echo_udp.py", "127.0.0.1:0")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.settimeout(DEADLINE)
            client.sendto(b"hello", target)
            assert client.recv(16) == b"hello"
    finally:
        stop(proc)


def test_key_value_example_on_evented() -> None:
    proc, target = start("kv_evented.py", "127.0.0.1:0")
    try:
        with connect(target) as first, connect(target) as second:
            first.sendall(b"SET colour blue\nGET colour\n")
            assert recv_exactly(first, 8) == b"OK\nblue\n"
            second.sendall(b"GET colour\nDEL colour\nGET colour\nPUT x\n")
            reply = b"blue\nOK\nNIL\nERR use SET key value, GET key or DEL key\n"
            assert recv_exactly(second, len(reply)) == reply
            first.sendall(b"x" * 5000 + b"\n")  # over the 4096-byte line limit
            assert first.recv(1) == b""
            second.sendall(b"GET colour\n")
            assert recv_exactly(second, 4) == b"NIL\n"
    finally:
        stop(proc)
