"""Helpers shared by the tests: real sockets, deadlines on every wait, resource snapshots."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs

# Every wait in the suite is bounded by this many seconds, so a bug shows up as a
# failure with a message, never as a hung CI run.
DEADLINE = 10.0


@contextlib.contextmanager
def serving(server: Any, poll_interval: float = 0.5) -> Iterator[Any]:
    """Run ``server.serve_forever`` in a thread; on exit shut it down, close it, join the thread."""
    thread = threading.Thread(
        target=server.serve_forever, args=(poll_interval,), name="test-serve-forever"
    )
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join(DEADLINE)
        server.server_close()
        assert not thread.is_alive(), "serve_forever did not stop after shutdown()"


def connect(address: Any, *, kind: int = socket.SOCK_STREAM) -> socket.socket:
    """A client socket connected to `address` (inet tuple or unix path), with a timeout."""
    if isinstance(address, (str, bytes)):
        sock = socket.socket(socket.AF_UNIX, kind)
    else:
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        sock = socket.socket(family, kind)
    sock.settimeout(DEADLINE)
    try:
        sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock


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


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    """Poll `predicate` until it is true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    pause = 0.001
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def child_pids() -> set[int]:
    """The live (or zombie) children of this process, from /proc."""
    pids: set[int] = set()
    for task in os.listdir(f"/proc/{os.getpid()}/task"):
        # A thread that just ended can vanish between listdir and open.
        with (
            contextlib.suppress(FileNotFoundError),
            open(f"/proc/{os.getpid()}/task/{task}/children") as f,
        ):
            pids.update(int(pid) for pid in f.read().split())
    return pids


@attrs.frozen
class Resources:
    """What a server could leak: descriptors, threads, child processes."""

    fds: frozenset[int]
    threads: frozenset[str]
    children: frozenset[int]

    @classmethod
    def now(cls) -> Resources:
        return cls(
            fds=frozenset(int(fd) for fd in os.listdir("/proc/self/fd")),
            threads=frozenset(t.name for t in threading.enumerate()),
            children=frozenset(child_pids()),
        )


def assert_no_leaks(before: Resources) -> None:
    """Fail if descriptors, threads or children exist now that did not before.

    Waits briefly: a thread that has announced its end may still be exiting.
    """

    def settled() -> bool:
        now = Resources.now()
        return (
            now.fds <= before.fds
            and now.threads <= before.threads
            and now.children <= before.children
        )

    with contextlib.suppress(AssertionError):
        wait_until(settled, "resources to return to their baseline", timeout=2.0)
    now = Resources.now()
    assert now.fds - before.fds == set(), (
        f"leaked descriptors: {_describe_fds(now.fds - before.fds)}"
    )
    assert now.threads - before.threads == set(), f"leaked threads: {now.threads - before.threads}"
    assert now.children - before.children == set(), (
        f"leaked children: {now.children - before.children}"
    )


def _describe_fds(fds: frozenset[int]) -> dict[int, str]:
    described = {}
    for fd in fds:
        try:
            described[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            described[fd] = "?"
    return described
