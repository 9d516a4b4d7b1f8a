"""TLS keeps every limit after its handshake, under every concurrency that runs TLS
and every handler kind it serves (issue 16, finding 1).

The blocking concurrencies (`sync`, `threaded`, `pooled`, `forking`) with a stream,
a message and a classic handler, and `asyncio_loop` (with and without uvloop) with
an async one; `evented` refuses TLS (tests/test_tls.py). A silent client is closed
at ``idle_timeout``, a slowloris at ``read_timeout`` from its first byte, a reader
that stops reading at ``write_timeout``; a client that leaves mid-reply is one INFO
line, as over plain TCP. Each bound holds no earlier than its limit, and well
before the defaults (60 s, 30 s, 60 s) could: within the suite's `DEADLINE`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import select
import socket
import socketserver
import ssl
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from composerv import (
    Connection,
    DrainReport,
    async_stream_handler,
    asyncio_loop,
    forking,
    limits,
    message_handler,
    pooled,
    request_handler,
    serve,
    stream_handler,
    sync,
    tcp,
    threaded,
    tls,
)
from composerv.testing import TLSContexts

from .support import (
    DEADLINE,
    EARLY_SLACK,
    connect,
    forked_for_each_connection,
    recv_exactly,
    serving,
    wait_until,
)

LIMIT = 0.4
"""The limit under test, in seconds."""

FLOOD = b"x" * (64 << 20)
"""A reply no socket buffer holds: its writer waits on the reader."""


def echo_or_flood(conn: Connection) -> None:
    while line := conn.readline():
        conn.send_all(FLOOD if line == b"flood\n" else line)


def reply_or_flood(message: bytes) -> bytes:
    return FLOOD if message == b"flood" else message


class EchoOrFlood(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        while line := self.rfile.readline():
            self.wfile.write(FLOOD if line == b"flood\n" else line)


async def async_echo_or_flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while line := await reader.readline():
        writer.write(FLOOD if line == b"flood\n" else line)
        await writer.drain()


BLOCKING = {"sync": sync, "threaded": threaded, "pooled": pooled, "forking": forking}
HANDLERS = {
    "stream": lambda: stream_handler(echo_or_flood),
    "message": lambda: message_handler(reply_or_flood),
    "classic": lambda: request_handler(EchoOrFlood),
}
no_uvloop = pytest.mark.skipif(
    importlib.util.find_spec("uvloop") is None, reason="uvloop is not installed"
)
SERVERS = [
    *(
        pytest.param(
            lambda c=concurrency, h=handler: (c(), h()), id=f"{concurrency_id}-{handler_id}"
        )
        for concurrency_id, concurrency in BLOCKING.items()
        for handler_id, handler in HANDLERS.items()
    ),
    pytest.param(
        lambda: (asyncio_loop(), async_stream_handler(async_echo_or_flood)), id="asyncio-async"
    ),
    pytest.param(
        lambda: (asyncio_loop(uvloop=True), async_stream_handler(async_echo_or_flood)),
        id="uvloop-async",
        marks=no_uvloop,
    ),
]
"""A concurrency and a handler, for each concurrency that serves TLS and each kind
of handler it serves."""

IN_PROCESS = [p for p in SERVERS if not str(p.id).startswith("forking")]
"""Those whose logs reach caplog."""

PER_CONCURRENCY = [p for p in SERVERS if str(p.id).endswith(("-stream", "-async"))]
"""One handler per concurrency, for what the concurrency alone decides."""

EVICTING = [p for p in PER_CONCURRENCY if not str(p.id).startswith(("sync", "forking"))]
"""Those that evict idle connections (see tests/test_idle_connections.py); `sync`
serves one connection at a time."""


def tls_server(
    composerv_tls: TLSContexts, server: Callable[[], tuple[Any, Any]], **kwargs: Any
) -> Any:
    return serve(
        tls(tcp(("127.0.0.1", 0)), composerv_tls.server), *server(), limits=limits(**kwargs)
    )


def tls_connect(running: Any, composerv_tls: TLSContexts) -> ssl.SSLSocket:
    with forked_for_each_connection(running):
        raw = connect(running.address)
    return composerv_tls.client.wrap_socket(raw, server_hostname="127.0.0.1")


def closed_within(client: ssl.SSLSocket, seconds: float) -> bool:
    """Whether the server ends the connection within `seconds` with close_notify, a
    clean end of the TLS stream (an alert or an EOF without it raises `ssl.SSLError`)."""
    client.settimeout(seconds)
    try:
        return client.recv(1) == b""
    except TimeoutError:
        return False


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors


@pytest.mark.parametrize("server", SERVERS)
def test_a_silent_tls_client_is_closed_at_idle_timeout(
    server: Any, composerv_tls: TLSContexts, composerv_no_leaks: None
) -> None:
    """Handshake, one round trip, then silence: closed, however the server runs."""
    with (
        serving(tls_server(composerv_tls, server, idle_timeout=LIMIT)) as running,
        tls_connect(running, composerv_tls) as client,
    ):
        sent = time.monotonic()
        client.sendall(b"one\n")
        assert recv_exactly(client, 4) == b"one\n"
        assert closed_within(client, DEADLINE), f"still open after {DEADLINE}s"
        assert time.monotonic() - sent >= LIMIT - EARLY_SLACK


@pytest.mark.parametrize("server", SERVERS)
def test_a_tls_slowloris_is_cut_at_read_timeout(
    server: Any, composerv_tls: TLSContexts, composerv_no_leaks: None
) -> None:
    """A byte every 50 ms (one TLS record each) never finishes its line."""
    with (
        serving(
            tls_server(composerv_tls, server, idle_timeout=DEADLINE, read_timeout=LIMIT)
        ) as running,
        tls_connect(running, composerv_tls) as client,
    ):
        first_byte = time.monotonic()
        cut = False
        while not cut and time.monotonic() - first_byte < DEADLINE:
            try:
                client.sendall(b"x")
            except OSError:
                cut = True
                break
            # The slowloris's pace; the server's close wakes it at once.
            if select.select([client], [], [], 0.05)[0]:
                cut = closed_within(client, DEADLINE)
        elapsed = time.monotonic() - first_byte
        assert cut, f"a slowloris is still connected after {elapsed:.1f}s"
        assert elapsed >= LIMIT - EARLY_SLACK


@pytest.mark.parametrize("server", SERVERS)
def test_a_tls_reader_that_stops_reading_is_cut_at_write_timeout(
    server: Any, composerv_tls: TLSContexts, composerv_no_leaks: None
) -> None:
    with (
        serving(tls_server(composerv_tls, server, write_timeout=LIMIT)) as running,
        tls_connect(running, composerv_tls) as client,
    ):
        asked = time.monotonic()
        client.sendall(b"flood\n")
        wait_until(lambda: running.active_requests == 1, "the flood to start")
        wait_until(lambda: running.active_requests == 0, "the writer to give up")
        assert time.monotonic() - asked >= LIMIT - EARLY_SLACK


@pytest.mark.parametrize("server", IN_PROCESS)
def test_timeouts_over_tls_are_logged_at_info(
    server: Any,
    composerv_tls: TLSContexts,
    caplog: pytest.LogCaptureFixture,
    composerv_no_leaks: None,
) -> None:
    """The three timeouts, each one INFO line naming its limit."""
    kwargs = {"idle_timeout": 0.2, "read_timeout": 0.2, "write_timeout": 0.2}
    with (
        caplog.at_level(logging.INFO, logger="composerv"),
        serving(tls_server(composerv_tls, server, **kwargs)) as running,
    ):
        for request in (b"one\n", b"half a line", b"flood\n"):
            with tls_connect(running, composerv_tls) as client:
                client.sendall(request)
                wait_until(lambda: running.active_requests == 0, "the client to be closed")
        for limit in ("idle_timeout", "read_timeout", "write_timeout"):
            wait_until(
                lambda limit=limit: any(limit in r.getMessage() for r in caplog.records),
                f"{limit} to be logged",
            )
    no_errors_logged(caplog)


@pytest.mark.parametrize("server", IN_PROCESS)
def test_a_tls_client_that_leaves_mid_reply_is_one_info_line(
    server: Any,
    composerv_tls: TLSContexts,
    caplog: pytest.LogCaptureFixture,
    composerv_no_leaks: None,
) -> None:
    """As over plain TCP: no ERROR, no traceback."""
    with (
        caplog.at_level(logging.INFO, logger="composerv"),
        serving(tls_server(composerv_tls, server)) as running,
    ):
        client = tls_connect(running, composerv_tls)
        port = client.getsockname()[1]
        client.sendall(b"flood\n")
        assert len(recv_exactly(client, 1024)) == 1024
        # Leave at once, with a reset: no close_notify, nothing more read.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        wait_until(lambda: running.active_requests == 0, "the server to notice")
        wait_until(
            lambda: any(f":{port}" in r.getMessage() for r in caplog.records),
            "the departure to be logged",
        )
    mine = [r for r in caplog.records if f":{port}" in r.getMessage()]
    assert [r.levelno for r in mine] == [logging.INFO], [r.getMessage() for r in mine]
    assert "went away" in mine[0].getMessage()
    assert mine[0].exc_info is None


@pytest.mark.parametrize("server", PER_CONCURRENCY)
def test_a_stalled_handshake_is_closed_at_handshake_timeout(
    server: Any, composerv_tls: TLSContexts, composerv_no_leaks: None
) -> None:
    transport = tls(tcp(("127.0.0.1", 0)), composerv_tls.server, handshake_timeout=LIMIT)
    with serving(serve(transport, *server())) as running, connect(running.address) as stalled:
        started = time.monotonic()
        assert stalled.recv(16) == b"", "a client that never starts its handshake is open"
        assert time.monotonic() - started >= LIMIT * 0.9
        with tls_connect(running, composerv_tls) as client:
            client.sendall(b"still serving\n")
            assert recv_exactly(client, 14) == b"still serving\n"


@pytest.mark.parametrize("server", PER_CONCURRENCY)
def test_at_max_connections_a_tls_client_waits_in_the_backlog(
    server: Any, composerv_tls: TLSContexts, composerv_no_leaks: None
) -> None:
    # The first client leaves by its idle timeout, not by closing: a forked child
    # holds a copy of every client socket this process had when it forked.
    kwargs = {"max_connections": 1, "evict_idle": False, "idle_timeout": 1.0}
    with (
        serving(tls_server(composerv_tls, server, **kwargs)) as running,
        tls_connect(running, composerv_tls) as first,
        connect(running.address) as waiting,
    ):
        first.sendall(b"one\n")
        assert recv_exactly(first, 4) == b"one\n"
        # A bounded wait for something that must not happen: a second request in flight.
        time.sleep(0.3)
        assert running.active_requests == 1
        with forked_for_each_connection(running):
            assert closed_within(first, DEADLINE)
        # Its place is free: the waiting client is accepted, and its handshake runs.
        with composerv_tls.client.wrap_socket(waiting, server_hostname="127.0.0.1") as second:
            second.sendall(b"two\n")
            assert recv_exactly(second, 4) == b"two\n"


@pytest.mark.parametrize("server", EVICTING)
def test_at_max_connections_an_idle_tls_connection_makes_room(
    server: Any, composerv_tls: TLSContexts, composerv_no_leaks: None
) -> None:
    with (
        serving(tls_server(composerv_tls, server, max_connections=1)) as running,
        tls_connect(running, composerv_tls) as idle,
    ):
        idle.sendall(b"one\n")
        assert recv_exactly(idle, 4) == b"one\n"
        with tls_connect(running, composerv_tls) as newcomer:
            newcomer.sendall(b"two\n")
            assert recv_exactly(newcomer, 4) == b"two\n"
            assert closed_within(idle, DEADLINE), "the idle TLS connection was not evicted"


@pytest.mark.parametrize("server", [p for p in SERVERS if not str(p.id).startswith("sync")])
def test_a_drain_closes_idle_tls_connections_and_lets_a_request_finish(
    server: Any, composerv_tls: TLSContexts, composerv_no_leaks: None
) -> None:
    with (
        serving(tls_server(composerv_tls, server)) as running,
        tls_connect(running, composerv_tls) as idle,
        tls_connect(running, composerv_tls) as busy,
    ):
        idle.sendall(b"one\n")
        assert recv_exactly(idle, 4) == b"one\n"
        busy.sendall(b"half a")  # mid-request
        wait_until(lambda: running.active_requests == 2, "both connections to be served")
        reports: list[DrainReport] = []
        drain = threading.Thread(target=lambda: reports.append(running.shutdown(drain=DEADLINE)))
        drain.start()
        try:
            assert closed_within(idle, DEADLINE), "the drain did not close the idle connection"
            busy.sendall(b" line\n")
            assert recv_exactly(busy, 12) == b"half a line\n"
            assert closed_within(busy, DEADLINE), "the finished request was not closed"
        finally:
            drain.join(DEADLINE)
        assert reports == [DrainReport(finished=1, closed_idle=1, cut=0)]
