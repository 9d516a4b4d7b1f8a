"""The examples run as the README and ../shared/bench run them: READY, their wire
contract against real clients, SIGTERM."""

from __future__ import annotations

import ast
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from .support import CLOSED_ERRORS, DEADLINE, connect, recv_exactly, wait_until

ROOT = Path(__file__).resolve().parent.parent


def start(
    script: str, address: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], object]:
    """Start an example (with `env` added to the environment); return it and the
    address it reports on stderr."""
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / script), address],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
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


def _ask(client: socket.socket, lines: bytes, replies: bytes) -> None:
    client.sendall(lines)
    assert recv_exactly(client, len(replies)) == replies


def test_chat_example_relays_in_order_and_disconnects_a_client_that_stops_reading() -> None:
    proc, target = start("chat.py", "127.0.0.1:0")
    try:
        with connect(target) as al, connect(target) as bo, connect(target) as cy:
            _ask(al, b"hello\n", b"ERR nick first\n")
            for client, nick in ((al, b"al"), (bo, b"bo"), (cy, b"cy")):
                _ask(client, b"NICK " + nick + b"\n", b"* welcome " + nick + b"\n")
            al.sendall(b"one\ntwo\n")
            assert recv_exactly(bo, 16) == b"al: one\nal: two\n"
            bo.sendall(b"back\n")
            assert recv_exactly(al, 9) == b"bo: back\n", "the sender got nothing of its own"
            recv_exactly(cy, 25)  # what cy got so far; from now on it reads nothing
            # 10 MB: more than the 1 MiB bound and the kernel's buffers together.
            line, count = b"y" * 4000, 2500
            relayed = len(b"al: " + line + b"\n")
            total = count * relayed
            progress = [0]  # bytes bo has read

            def read_bo() -> None:
                while progress[0] < total:
                    chunk = bo.recv(1 << 18)
                    assert chunk, f"bo: EOF after {progress[0]} of {total} bytes"
                    progress[0] += len(chunk)

            reader = threading.Thread(target=read_bo, name="test-bo")
            reader.start()
            for sent in range(1, count + 1):
                al.sendall(line + b"\n")
                if sent % 50 == 0:
                    # al never gets more than 512 KiB ahead of what bo has read, far
                    # inside the bound: on a loaded machine bo's thread could fall
                    # behind a sender this fast, and be rightly cut. Only cy, who reads
                    # nothing, reaches the bound; bo still must not wait for cy.
                    wait_until(
                        lambda sent=sent: progress[0] >= sent * relayed - (512 << 10),
                        "bo to keep up with al (was it held up by cy, who does not read?)",
                    )
            reader.join(DEADLINE)
            assert progress == [total], "bo was held up by cy, who does not read"
            got = 0
            with pytest.raises((EOFError, *CLOSED_ERRORS)):  # read until closed
                while chunk := cy.recv(65536):
                    got += len(chunk)
                raise EOFError
            assert got < total, "cy was disconnected before it got everything"
    finally:
        stop(proc)


def test_kv_auth_example_authenticates_each_connection_and_shares_the_store() -> None:
    proc, target = start("kv_auth.py", "127.0.0.1:0")
    try:
        with connect(target) as first, connect(target) as second:
            _ask(first, b"GET k\nAUTH wrong\n", b"ERR auth required\nERR bad token\n")
            _ask(first, b"AUTH secret\nSET k v\nGET k\n", b"OK\nOK\nv\n")
            _ask(first, b"INCR n\nINCR n\nDEL k\nDEL k\nGET k\n", b"1\n2\n1\n0\nNIL\n")
            _ask(second, b"GET n\n", b"ERR auth required\n")  # auth is per connection
            _ask(second, b"AUTH secret\nGET n\n", b"OK\n2\n")  # the store is shared
    finally:
        stop(proc)


def test_kv_auth_example_takes_its_token_from_the_environment() -> None:
    proc, target = start("kv_auth.py", "127.0.0.1:0", env={"KV_TOKEN": "hunter2"})
    try:
        with connect(target) as client:
            _ask(client, b"AUTH secret\nAUTH hunter2\nGET k\n", b"ERR bad token\nOK\nNIL\n")
    finally:
        stop(proc)
