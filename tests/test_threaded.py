"""threaded(): every request at once in a thread of its own, threads kept a moment for reuse."""

from __future__ import annotations

import contextvars
import socket
import threading
import time

import pytest

from composerv import (
    ConfigurationError,
    Datagram,
    Server,
    datagram_handler,
    serve,
    threaded,
    udp,
)

from .support import DEADLINE, serving, wait_until

request_marker: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_marker", default=None
)


class Recorder:
    """A datagram handler that notes its thread and what it inherited, then answers."""

    def __init__(self) -> None:
        self.threads: list[str] = []
        self.inherited: list[str | None] = []

    def __call__(self, datagram: Datagram) -> None:
        self.threads.append(threading.current_thread().name)
        self.inherited.append(request_marker.get())
        request_marker.set(datagram.data.decode())
        datagram.reply(datagram.data)


def exchange(server: Server[Datagram], count: int) -> None:
    """`count` requests one after another, each sent once the one before has ended."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(DEADLINE)
        for number in range(count):
            client.sendto(b"%d" % number, server.address)
            assert client.recv(16) == b"%d" % number
            wait_until(lambda: server.active_requests == 0, "the request to end")


def test_a_thread_serves_the_next_request_while_it_waits(composerv_no_leaks: None) -> None:
    recorder = Recorder()
    server = serve(udp(("127.0.0.1", 0)), threaded(), datagram_handler(recorder))
    with serving(server):
        exchange(server, 20)
    # One request at a time: the thread of the first serves them all.
    assert len(recorder.threads) == 20
    assert len(set(recorder.threads)) == 1


def test_each_request_starts_in_a_fresh_context(composerv_no_leaks: None) -> None:
    """A context variable one request sets is not seen by the next on the same thread."""
    recorder = Recorder()
    server = serve(udp(("127.0.0.1", 0)), threaded(), datagram_handler(recorder))
    with serving(server):
        exchange(server, 5)
    assert len(set(recorder.threads)) == 1
    assert recorder.inherited == [None] * 5


def test_keep_idle_zero_starts_a_thread_per_request(composerv_no_leaks: None) -> None:
    recorder = Recorder()
    server = serve(udp(("127.0.0.1", 0)), threaded(keep_idle=0), datagram_handler(recorder))
    with serving(server):
        exchange(server, 5)
    assert len(set(recorder.threads)) == 5


def test_idle_threads_end_after_keep_idle(composerv_no_leaks: None) -> None:
    recorder = Recorder()
    server = serve(udp(("127.0.0.1", 0)), threaded(keep_idle=0.1), datagram_handler(recorder))

    def request_threads() -> set[str]:
        return {t.name for t in threading.enumerate() if t.name.startswith("composerv-request-")}

    with serving(server):
        exchange(server, 1)
        assert request_threads() <= set(recorder.threads)
        wait_until(lambda: not request_threads(), "the idle thread to end")
        # A request after that gets a new thread.
        exchange(server, 1)
    assert len(set(recorder.threads)) == 2


def test_requests_never_wait_for_a_busy_thread(composerv_no_leaks: None) -> None:
    """Idle threads are reused, but a request that finds none gets a new one at once."""
    release = threading.Event()
    entered = threading.Semaphore(0)

    def held(datagram: Datagram) -> None:
        entered.release()
        assert release.wait(DEADLINE)
        datagram.reply(datagram.data)

    server = serve(udp(("127.0.0.1", 0)), threaded(), datagram_handler(held))
    with serving(server), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(DEADLINE)
        for number in range(8):
            client.sendto(b"%d" % number, server.address)
        for _ in range(8):
            assert entered.acquire(timeout=DEADLINE), "a request waited for a thread"
        assert server.active_requests == 8
        release.set()
        assert sorted(client.recv(16) for _ in range(8)) == [b"%d" % n for n in range(8)]
        wait_until(lambda: server.active_requests == 0, "the requests to end")


def test_close_ends_idle_threads_at_once(composerv_no_leaks: None) -> None:
    """A server closed long before keep_idle leaves no thread behind (composerv_no_leaks checks)."""
    server = serve(udp(("127.0.0.1", 0)), threaded(keep_idle=60), datagram_handler(Recorder()))
    with serving(server):
        exchange(server, 3)
    started = time.monotonic()
    wait_until(
        lambda: not any(t.name.startswith("composerv-request-") for t in threading.enumerate()),
        "idle threads to end",
    )
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("value", "error"),
    [(-1, ConfigurationError), ("1", TypeError), (True, TypeError), (None, TypeError)],
)
def test_bad_keep_idle_is_named(value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="keep_idle"):
        threaded(keep_idle=value)  # type: ignore[arg-type]
