"""Stopping from anywhere: a signal on the serving thread drains the server, twice cuts.

`serve_forever(stop_signals=...)` is what code that starts a server itself uses to
get what ``composerv run`` does. The signal handler runs on the thread inside
`serve_forever`, under every concurrency: it must not wait there, must not run the
loop again from inside itself, and a second signal during the drain must cut what
is left at once instead of hanging. SIGUSR1 stands in for SIGTERM, so that a bug
cannot kill the test process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from composerv import (
    Connection,
    DrainReport,
    async_stream_handler,
    asyncio_loop,
    evented,
    forking,
    limits,
    message_handler,
    pooled,
    serve,
    stream_handler,
    sync,
    tcp,
    threaded,
    workers,
)

from .support import DEADLINE, connect, recv_exactly

DRAIN = 5.0


def _echo(conn: Connection) -> None:
    while line := conn.readline():
        conn.send_all(line)


async def _echo_async(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while line := await reader.readline():
        writer.write(line)
        await writer.drain()


SERVERS: dict[str, Callable[[], tuple[Any, Any]]] = {
    "sync": lambda: (sync(), stream_handler(_echo)),
    "threaded": lambda: (threaded(), stream_handler(_echo)),
    "pooled": lambda: (pooled(), stream_handler(_echo)),
    "forking": lambda: (forking(), stream_handler(_echo)),
    "evented": lambda: (evented(), message_handler(lambda line: line)),
    "asyncio": lambda: (asyncio_loop(), async_stream_handler(_echo_async)),
    "workers": lambda: (workers(2, threaded()), stream_handler(_echo)),
}


def _server(name: str) -> Any:
    concurrency, handler = SERVERS[name]()
    # sync() serves one client at a time: its idle client is the one in flight.
    return serve(tcp(("127.0.0.1", 0)), concurrency, handler, limits=limits(drain_timeout=DRAIN))


def _served(sock: socket.socket) -> None:
    sock.sendall(b"ping\n")
    assert recv_exactly(sock, 5) == b"ping\n"


def _stop_signal() -> None:
    os.kill(os.getpid(), signal.SIGUSR1)


@pytest.fixture(autouse=True)
def stray_signals_are_harmless() -> Iterator[Callable[[int, Any], None]]:
    """Outside serve_forever a SIGUSR1 is recorded, not fatal to the test process."""

    def previous(_signum: int, _frame: Any) -> None:
        """The handler serve_forever must put back."""

    old = signal.signal(signal.SIGUSR1, previous)
    yield previous
    signal.signal(signal.SIGUSR1, old)


def _serve_while(server: Any, client: Callable[[], None]) -> float:
    """Run `client` in a thread while `serve_forever` (with SIGUSR1 as its stop signal)
    runs here, in the main thread; how long serving took. Re-raises what the client
    raised."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            client()
        except BaseException as error:
            errors.append(error)
            _stop_signal()  # do not leave the main thread serving

    thread = threading.Thread(target=run, name="test-client")
    thread.start()
    started = time.monotonic()
    server.serve_forever(0.05, stop_signals=(signal.SIGUSR1,))
    took = time.monotonic() - started
    thread.join(DEADLINE)
    assert not thread.is_alive(), "the client did not finish"
    if errors:
        raise errors[0]
    return took


def _closed_by_server(sock: socket.socket) -> bool:
    """Whether the server ended the connection: EOF, or a reset (a cut may send one)."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


@pytest.mark.parametrize("name", SERVERS)
def test_a_stop_signal_drains_closes_idle_and_lets_a_request_in_flight_finish(
    name: str, stray_signals_are_harmless: Callable[[int, Any], None], composerv_no_leaks: None
) -> None:
    server = _server(name)
    # sync() serves one client at a time: there, the idle client is the one in flight.
    with_busy = name != "sync"

    def client() -> None:
        with connect(server.address) as idle, connect(server.address) as busy:
            _served(idle)
            if with_busy:
                _served(busy)
                busy.sendall(b"hal")  # a request begun: the drain must wait for it
                time.sleep(0.1)  # read by the server before the drain (see below)
            _stop_signal()
            if with_busy:
                time.sleep(0.2)  # the client's own pace, after the drain began
                busy.sendall(b"f\n")
                assert recv_exactly(busy, 5) == b"half\n"
                assert busy.recv(1) == b""
            assert idle.recv(1) == b""

    took = _serve_while(server, client)
    assert server.closed
    assert server.drain_report == DrainReport(finished=int(with_busy), closed_idle=1, cut=0)
    assert took < DRAIN / 2, f"the drain waited {took:.1f}s for nothing"
    assert signal.getsignal(signal.SIGUSR1) is stray_signals_are_harmless, "the old handler is back"


@pytest.mark.parametrize("name", [n for n in SERVERS if n != "sync"])
def test_a_second_stop_signal_cuts_what_is_left_at_once(
    name: str, composerv_no_leaks: None
) -> None:
    server = _server(name)

    def client() -> None:
        with connect(server.address) as busy:
            _served(busy)
            busy.sendall(b"never finished")  # would hold the drain to its deadline
            # A request that arrives as the drain begins may be taken for an idle
            # connection (docs/reliability.md): let the server read this one first.
            time.sleep(0.1)
            _stop_signal()
            time.sleep(0.3)  # well into the drain
            _stop_signal()
            assert _closed_by_server(busy)

    took = _serve_while(server, client)
    assert took < DRAIN / 2, f"the second signal did not cut: {took:.1f}s"
    assert server.drain_report == DrainReport(finished=0, closed_idle=0, cut=1)


def test_stop_signals_need_the_main_thread(composerv_no_leaks: None) -> None:
    server = _server("threaded")
    errors: list[BaseException] = []

    def serve_elsewhere() -> None:
        try:
            server.serve_forever(stop_signals=(signal.SIGUSR1,))
        except RuntimeError as error:
            errors.append(error)

    thread = threading.Thread(target=serve_elsewhere)
    thread.start()
    thread.join(DEADLINE)
    server.server_close()
    assert len(errors) == 1 and "main thread" in str(errors[0])
