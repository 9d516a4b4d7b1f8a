"""Helpers shared by the tests: real sockets and deadlines on every wait.

`serving` and `wait_until` are composerv.testing's, re-exported for the suite; the
leak checks are the plugin's ``composerv_no_leaks`` fixture.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import shutil
import socket
import ssl
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from composerv.testing import Resources, serving, wait_until
from composerv.types import Forking

__all__ = [
    "CLOSED_ERRORS",
    "DEADLINE",
    "EARLY_SLACK",
    "LATE_FACTOR",
    "LATE_SLACK",
    "SERVING_THREAD",
    "assert_closed_by_peer",
    "assert_does_not_spin",
    "assert_refused",
    "assert_refused_while",
    "assert_took",
    "connect",
    "forked_for_each_connection",
    "recv_exactly",
    "recv_until_eof",
    "required_program",
    "serving",
    "stop_process",
    "thread_cpu_seconds",
    "wait_closed_while_trickling",
    "wait_reset",
    "wait_until",
]

# Every wait in the suite is bounded by this many seconds, so a bug shows up as a
# failure with a message, never as a hung CI run.
DEADLINE = 10.0

# How a timing promise is checked (see `assert_took`). A timeout of T must end a
# wait no earlier than T and no later than LATE_FACTOR * T + LATE_SLACK: with the
# suite's timeouts of 0.3-0.5 s, the bound lies halfway between T and 2T, so a
# timeout twice as long (or a loop that notices it late) fails, and so does one
# half as long, while a loaded machine still has ~0.2 s of slack.
LATE_FACTOR = 1.5
LATE_SLACK = 0.05
# How a client sees the server end a connection: EOF aside, a reset (unread bytes
# were left), or under TLS an end without close_notify.
CLOSED_ERRORS = (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError)

# The thread `serving` (composerv.testing's) runs serve_forever in, whose CPU time
# shows a loop spinning; should the name change, `thread_cpu_seconds` fails loudly.
SERVING_THREAD = "composerv-testing-serve-forever"

# The client's clock starts a little after the server's (the server starts its
# idle clock when it has sent the reply the client is still receiving).
EARLY_SLACK = 0.05

# How long `assert_refused_while` waits for one connect to be answered, and between
# two attempts.
REFUSAL_ATTEMPT = 0.05
REFUSAL_PAUSE = 0.002


def connect(
    address: Any,
    *,
    kind: int = socket.SOCK_STREAM,
    source: str | None = None,
    timeout: float = DEADLINE,
) -> socket.socket:
    """A client socket connected to `address` (inet tuple or unix path), with `timeout`
    for the connect and what follows; from the loopback host `source`, if given (a
    client the server must tell apart)."""
    if isinstance(address, (str, bytes)):
        sock = socket.socket(socket.AF_UNIX, kind)
    else:
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        sock = socket.socket(family, kind)
    sock.settimeout(timeout)
    try:
        if source is not None:
            sock.bind((source, 0))
        sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock


def required_program(name: str, packages: str) -> str:
    """The path of program `name` (a real peer: haproxy, nginx). Skips the test without
    it, except under CI, where it fails: CI installs `packages`, so a missing program
    there is a broken CI image, not a skip."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed, but $CI is set and CI must run these tests")
        pytest.skip(f"needs {name} (apt-get install {packages})")
    return path


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM `process` and wait for it; SIGKILL it if it has not gone in `DEADLINE`."""
    process.terminate()
    try:
        process.wait(DEADLINE)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(DEADLINE)


@contextlib.contextmanager
def forked_for_each_connection(server: Any) -> Iterator[None]:
    """If `server` forks a child per connection (`forking()`): the block makes it fork
    one (it opens a connection, or frees room for one); on exit, wait until it has.

    A TLS client of an in-process forking server starts its handshake only after:
    a child forked while this thread is inside OpenSSL copies the locks it holds,
    and hangs on one in its own handshake until `handshake_timeout` (seen in CI)."""
    if not isinstance(server.concurrency, Forking):
        yield
        return
    before = Resources.now().children
    yield
    wait_until(
        lambda: bool(Resources.now().children - before),
        "the server to fork the child for the connection",
    )


def ask_version(address: Any, *, source: str | None = None) -> list[str]:
    """Ask an app of `tests.apps.versioned` (from `source`, if given) and return its
    reply's words, ``VERSION PID HOST PORT``; ConnectionError if it closes before a
    whole line (the socket's timeout bounds the wait)."""
    with connect(address, source=source) as client:
        client.sendall(b"which?\n")
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = client.recv(4096)
            if not chunk:
                raise ConnectionError(f"EOF after {reply!r}")
            reply += chunk
    return reply.decode().split()


def wait_delivered(sock: socket.socket) -> None:
    """Wait until the server's kernel has acknowledged every byte sent on `sock`, so
    that they are in its socket when the test goes on: on a loaded machine loopback
    can deliver them later than ``sendall`` returns."""

    def unacknowledged() -> int:
        queued = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, bytes(4))
        return int(struct.unpack("i", queued)[0])

    wait_until(lambda: unacknowledged() == 0, "the bytes sent to be acknowledged")


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    """Read exactly `size` bytes, failing on EOF (the socket's timeout bounds the wait)."""
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise AssertionError(f"EOF after {len(chunks)} of {size} bytes")
        chunks += chunk
    return bytes(chunks)


def recv_until_eof(sock: socket.socket) -> bytes:
    """Read until the peer closes (the socket's timeout bounds the wait)."""
    chunks = bytearray()
    while chunk := sock.recv(65536):
        chunks += chunk
    return bytes(chunks)


def assert_took(started: float, expected: float, what: str) -> float:
    """Fail unless `expected` seconds (a timeout, a drain) have passed since
    `started` (a `time.monotonic()`), and not much more; the elapsed time.

    The one place the suite bounds a timing promise, on both sides: see
    `LATE_FACTOR`."""
    elapsed = time.monotonic() - started
    earliest = expected - EARLY_SLACK
    latest = expected * LATE_FACTOR + LATE_SLACK
    assert earliest <= elapsed <= latest, (
        f"{what} took {elapsed:.3f}s, expected {expected}s (between {earliest:.2f}s and "
        f"{latest:.2f}s)"
    )
    return elapsed


def assert_closed_by_peer(sock: socket.socket) -> bytes:
    """Read until the peer ends the connection (EOF or reset) and return what came
    before; the socket's timeout bounds the wait, and runs out as a failure."""
    received = bytearray()
    try:
        while chunk := sock.recv(1 << 20):
            received += chunk
    except CLOSED_ERRORS:
        pass
    except TimeoutError:
        raise AssertionError(
            f"the peer did not close the connection within {sock.gettimeout()}s"
        ) from None
    return bytes(received)


def wait_closed_while_trickling(sock: socket.socket, byte: bytes, pace: float) -> None:
    """Send `byte` every `pace` seconds (a slowloris) until the peer closes the
    connection, which is seen at once by waiting on the socket, not by sleeping."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        try:
            sock.sendall(byte)
        except CLOSED_ERRORS:
            return
        readable, _, _ = select.select([sock], [], [], pace)
        if readable:
            with contextlib.suppress(*CLOSED_ERRORS):
                assert sock.recv(1) == b"", "the server answered a request never completed"
            return
    raise AssertionError(f"the peer did not cut the trickling client within {DEADLINE}s")


def wait_reset(sock: socket.socket) -> None:
    """Wait for the server to close `sock`, a connection holding bytes the server
    never read (so its close is a reset), without reading from it: poll reports
    the reset at once, even with unread bytes queued on this side."""
    poller = select.poll()
    poller.register(sock, 0)  # POLLERR and POLLHUP are always reported
    assert poller.poll(DEADLINE * 1000), f"the server did not close the connection in {DEADLINE}s"


def assert_refused(address: Any, timeout: float = DEADLINE) -> None:
    """Fail unless connecting to `address` is refused at once: ECONNREFUSED, or
    ENOENT for a unix path removed with its listening socket. A connect not answered
    within `timeout` raises TimeoutError."""
    try:
        connect(address, timeout=timeout).close()
    except (ConnectionRefusedError, FileNotFoundError) as exc:
        assert exc.errno in (errno.ECONNREFUSED, errno.ENOENT)
        return
    raise AssertionError(f"a connection to {address!r} was accepted")


def thread_cpu_seconds(name: str) -> Callable[[], float]:
    """A clock of the CPU time used by the live thread named `name` (e.g. the one
    `serving` starts): what shows a loop spinning, whatever else the machine runs."""
    [thread] = [t for t in threading.enumerate() if t.name == name]
    assert thread.ident is not None
    clock = time.pthread_getcpuclockid(thread.ident)
    return lambda: time.clock_gettime(clock)


def assert_does_not_spin(name: str, what: str) -> None:
    """Fail if the thread named `name` uses more than a tenth of a CPU over a
    short window: a loop waiting for something must sleep in the kernel. A
    spinning loop uses the whole window, or most of it on a loaded machine."""
    cpu = thread_cpu_seconds(name)
    window = 0.3
    before = cpu()
    time.sleep(window)  # the window measured, not a wait for readiness
    used = cpu() - before
    assert used < window / 10, f"{what}: the loop used {used:.3f}s of CPU in {window}s"


def assert_refused_while(address: Any, running: Callable[[], bool], what: str) -> None:
    """Fail unless a connect to `address` is refused while `running()` holds (a
    drain with a request still in flight).

    The listening socket is closed as the drain begins, but the kernel keeps it
    listening until a poll() on it in the serve loop returns, a few milliseconds
    later: a connect in that window completes and is then reset, or is reset as
    it connects. So try again until refused, for as long as `running()` holds.
    The attempts are paced, and one unanswered for `REFUSAL_ATTEMPT` seconds is
    given up: in that window they fill the listen backlog, and the kernel drops
    the next SYN, which TCP sends again only a second later."""
    while True:
        assert running(), f"connections were not refused before {what} ended"
        try:
            assert_refused(address, timeout=REFUSAL_ATTEMPT)
            return
        except (AssertionError, ConnectionResetError, TimeoutError):
            time.sleep(REFUSAL_PAUSE)
