"""Drain and timeouts for every handler kind under every concurrency, in one place.

Each cell says which promises the pair keeps, and so which tests it gets:
D drain (an idle connection is closed at once; during the drain new connections
are refused while a request is still in flight, and that request is cut at the
deadline), I idle timeout, R read timeout, W write timeout, L line bound (a line
longer than the default limit, 64 KiB, ends the connection at once, not at a
timeout, with nothing buffered beyond it); ``refused``: `serve` raises
`HandlerMismatchError`, by design (an event loop cannot run a handler that blocks,
asyncio_loop runs only coroutines).

============  =====  ========  ======  =======  =======  ========  =======
handler       sync   threaded  pooled  forking  evented  asyncio   workers
============  =====  ========  ======  =======  =======  ========  =======
recv          DIW    DIW       DIW     DIW      refused  refused   DIW
readline      DIRWL  DIRWL     DIRWL   DIRWL    refused  refused   DIRWL
rfile         DIRWL  DIRWL     DIRWL   DIRWL    refused  refused   DIRWL
message       DIRWL  DIRWL     DIRWL   DIRWL    DIRWL    refused   DIRWL
stdlib-class  DIRWL  DIRWL     DIRWL   DIRWL    refused  refused   DIRWL
compat-class  DIRWL  DIRWL     DIRWL   DIRWL    refused  refused   DIRWL
async         DL     DL        DL      DL       refused  DIRWL     DL
============  =====  ========  ======  =======  =======  ========  =======

- recv has no R nor L: each ``recv`` is a whole read, so a trickle of bytes is a
  stream of reads, each within the idle timeout, and there is no line to bound.
- async under a blocking concurrency has no I, R, W: asyncio does its own reads
  there and its timeouts are the coroutine's business (``asyncio.timeout``), as
  `async_stream_handler` documents. Its L is asyncio's: the reader's `limit`.
- workers is ``workers(1, threaded())``: one process, so the supervisor's drain
  and a worker's timeouts are what is tested, not the spread of connections.

The ``-tls`` cases run readline (threaded, forking, workers) and async
(asyncio) over ``tls(tcp(...))``; evented refuses TLS with a `ConfigurationError`
(its loop cannot run a blocking handshake).

Every handler speaks one protocol: a line comes back as sent, except
``b"flood\\n"``, answered with more bytes than socket buffers hold, so that a
client that does not read holds the handler in a write (the in-flight request of
the drain tests, the slow reader of the write timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import socketserver
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import compat.socketserver
from composerv import (
    Connection,
    DrainReport,
    HandlerMismatchError,
    async_stream_handler,
    asyncio_loop,
    evented,
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
    workers,
)
from composerv.abc import Concurrency, Handler

from .support import (
    CLOSED_ERRORS,
    DEADLINE,
    assert_closed_by_peer,
    assert_refused_while,
    assert_took,
    connect,
    forked_for_each_connection,
    recv_exactly,
    serving,
    wait_closed_while_trickling,
    wait_reset,
    wait_until,
)

# Distinct, so that a runtime that applies one limit where another belongs fails:
# each is outside the bounds `assert_took` gives the others.
IDLE = 0.25
READ = 0.35
WRITE = 0.5
DRAIN = 0.3
TRICKLE_PACE = 0.05
"""A slowloris's pace: well inside IDLE, so only the read timeout can cut it."""

FLOOD = b"f" * (16 << 20)
"""More than the kernel buffers of both ends hold (a few MiB on loopback)."""


def reply_to(line: bytes) -> bytes:
    return FLOOD if line == b"flood\n" else line


def by_recv(conn: Connection) -> None:
    while data := conn.recv():
        conn.send_all(reply_to(data))


def by_readline(conn: Connection) -> None:
    while line := conn.readline():
        conn.send_all(reply_to(line))


def by_rfile(conn: Connection) -> None:
    for line in conn.rfile:
        conn.wfile.write(reply_to(line))
        conn.wfile.flush()


def by_message(message: bytes) -> bytes:
    # lines() strips the newline and appends one to each reply.
    return reply_to(message + b"\n")[:-1]


def classic(base: type[Any]) -> type[Any]:
    """A StreamRequestHandler subclass speaking the matrix's protocol."""

    class Lines(base):  # type: ignore[misc, valid-type]  # either StreamRequestHandler
        def handle(self) -> None:
            for line in self.rfile:
                self.wfile.write(reply_to(line))

    return Lines


async def by_async(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while line := await reader.readline():
        writer.write(reply_to(line))
        await writer.drain()


HANDLERS: dict[str, Callable[[], Handler[Any]]] = {
    "recv": lambda: stream_handler(by_recv),
    "readline": lambda: stream_handler(by_readline),
    "rfile": lambda: stream_handler(by_rfile),
    "message": lambda: message_handler(by_message),
    "stdlib-class": lambda: request_handler(classic(socketserver.StreamRequestHandler)),
    "compat-class": lambda: request_handler(classic(compat.socketserver.StreamRequestHandler)),
    "async": lambda: async_stream_handler(by_async),
}

CONCURRENCIES: dict[str, Callable[[], Concurrency]] = {
    "sync": sync,
    "threaded": threaded,
    "pooled": pooled,
    "forking": forking,
    "evented": evented,
    "asyncio": asyncio_loop,
    "workers": lambda: workers(1, threaded()),
}

EVENT_LOOP_HANDLERS = {"evented": {"message"}, "asyncio": {"async"}}
"""The only handlers each event loop accepts; every blocking concurrency accepts all."""


def promises(concurrency: str, handler: str) -> str:
    """The letters of the module's table for this pair ("" for a refused pair)."""
    if handler not in EVENT_LOOP_HANDLERS.get(concurrency, HANDLERS):
        return ""
    if handler == "async" and concurrency != "asyncio":
        return "DL"
    if handler == "recv":
        return "DIW"
    return "DIRWL"


PAIRS = [(c, h) for c in CONCURRENCIES for h in HANDLERS]
TLS_PAIRS = [(c, "readline") for c in ("threaded", "forking", "workers")] + [("asyncio", "async")]
"""A thread, a child process, a worker process and an event loop, over TLS."""


def cases(promise: str) -> list[Any]:
    """The pairs that keep `promise` (a letter of the table), plain and over TLS."""
    plain = [(c, h, False) for c, h in PAIRS if promise in promises(c, h)]
    secure = [(c, h, True) for c, h in TLS_PAIRS]
    return [
        pytest.param(
            c,
            h,
            tls_on,
            id=f"{c}-{h}-tls" if tls_on else f"{c}-{h}",
        )
        for c, h, tls_on in plain + secure
    ]


@pytest.fixture(scope="module")
def tls_contexts(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server and a client context sharing a fresh self-signed certificate."""
    if shutil.which("openssl") is None:
        pytest.skip("needs openssl")
    directory: Path = tmp_path_factory.mktemp("matrix-tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=DEADLINE,
    )  # fmt: skip
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client


class Pair:
    """One cell of the matrix, served; `client` opens a connection to it."""

    def __init__(
        self, concurrency: str, server: Any, client_context: ssl.SSLContext | None
    ) -> None:
        self.concurrency = concurrency
        self.server = server
        self.address = server.address
        self._client_context = client_context

    def client(self, *, small_buffer: bool = False) -> socket.socket:
        """A connected client (TLS done); `small_buffer`: one that holds little
        unread, so that a flood fills it at once."""
        family = socket.AF_INET
        raw = socket.socket(family, socket.SOCK_STREAM)
        if small_buffer:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.settimeout(DEADLINE)
        if self._client_context is None:
            raw.connect(self.address)
            return raw
        with forked_for_each_connection(self.server):
            raw.connect(self.address)
        return self._client_context.wrap_socket(raw, server_hostname="127.0.0.1")


@pytest.fixture
def make_pair(
    request: pytest.FixtureRequest, composerv_no_leaks: None
) -> Iterator[Callable[..., Pair]]:
    """Serve a pair with the given limits; the server closes when the test ends."""
    stack: list[Any] = []

    def make(concurrency: str, handler: str, secure: bool, **limit_values: Any) -> Pair:
        transport: Any = tcp(("127.0.0.1", 0))
        client_context = None
        if secure:
            server_context, client_context = request.getfixturevalue("tls_contexts")
            transport = tls(transport, server_context, handshake_timeout=DEADLINE)
        server = serve(
            transport,
            CONCURRENCIES[concurrency](),
            HANDLERS[handler](),
            limits=limits(**limit_values),
        )
        context = serving(server, poll_interval=0.05)
        context.__enter__()
        stack.append(context)
        return Pair(concurrency, server, client_context)

    yield make
    for context in reversed(stack):
        context.__exit__(None, None, None)


def assert_closed_with_nothing_sent(client: socket.socket) -> None:
    """The server closed `client` (a drain, a line over the bound) with nothing more
    sent; over TLS the close may come as an alert (see
    test_a_drain_ends_an_idle_tls_connection_with_close_notify)."""
    with contextlib.suppress(ssl.SSLError):
        assert assert_closed_by_peer(client) == b""


def echo_once(client: socket.socket) -> None:
    client.sendall(b"ping\n")
    assert recv_exactly(client, 5) == b"ping\n"


def start_flood(client: socket.socket) -> None:
    """Ask for the flood and read its first bytes: the handler is now writing (and
    has read everything sent so far)."""
    client.sendall(b"flood\n")
    assert client.recv(1) == b"f"


def wait_cut(pair: Pair, client: socket.socket) -> None:
    """Wait for the server to drop `client`, a connection flooded by a reply it
    does not read, without reading (which would let the flood go on).

    A blocking handler leaves unread the bytes sent after the flood began, so
    the server's close resets the connection, which poll reports at once. An
    event loop reads them, so its close is a FIN stuck behind the flood: there,
    watch the request count, which only the flooded connection holds."""
    if pair.concurrency in EVENT_LOOP_HANDLERS:
        wait_until(lambda: pair.server.active_requests == 0, "the flooded connection to end")
        return
    wait_reset(client)


@pytest.mark.parametrize(
    ("concurrency", "handler"),
    [pytest.param(c, h, id=f"{c}-{h}") for c, h in PAIRS if not promises(c, h)],
)
def test_refused_pairs_raise_handler_mismatch_at_serve(concurrency: str, handler: str) -> None:
    with pytest.raises(HandlerMismatchError, match=concurrency.replace("asyncio", "asyncio_loop")):
        serve(tcp(("127.0.0.1", 0)), CONCURRENCIES[concurrency](), HANDLERS[handler]())


def test_the_table_covers_every_pair() -> None:
    """The docstring's table is what `promises` says, cell by cell."""
    table = {
        line.split()[0]: line.split()[1:]
        for line in (__doc__ or "").splitlines()
        if line.split() and line.split()[0] in HANDLERS
    }
    for handler, cells in table.items():
        expected = [promises(c, handler) or "refused" for c in CONCURRENCIES]
        assert cells == expected, handler
    assert set(table) == set(HANDLERS)


@pytest.mark.parametrize(("concurrency", "handler", "secure"), cases("D"))
def test_drain_closes_an_idle_connection_at_once(
    concurrency: str, handler: str, secure: bool, make_pair: Callable[..., Pair]
) -> None:
    pair = make_pair(concurrency, handler, secure, idle_timeout=None)
    with pair.client() as idle:
        echo_once(idle)
        started = time.monotonic()
        report = pair.server.shutdown(drain=2 * DRAIN)
        assert time.monotonic() - started < DRAIN / 2, "the drain waited for an idle connection"
        assert report == DrainReport(finished=0, closed_idle=1, cut=0)
        assert_closed_with_nothing_sent(idle)


@pytest.mark.parametrize(("concurrency", "handler", "secure"), cases("D"))
def test_during_a_drain_new_connections_are_refused_and_the_rest_is_cut_at_the_deadline(
    concurrency: str, handler: str, secure: bool, make_pair: Callable[..., Pair]
) -> None:
    pair = make_pair(concurrency, handler, secure, idle_timeout=None, write_timeout=None)
    reports: list[DrainReport] = []
    with pair.client(small_buffer=True) as busy:
        start_flood(busy)
        # Closed as the drain begins, just after the listening socket: idle, or
        # (under sync, busy with the flood) still in the listen backlog.
        witness = pair.client() if concurrency != "sync" else connect(pair.address)
        with witness:
            if concurrency != "sync":
                echo_once(witness)
            started = time.monotonic()
            drainer = threading.Thread(
                target=lambda: reports.append(pair.server.shutdown(drain=DRAIN)),
                name="test-drain",
            )
            drainer.start()
            try:
                assert_closed_with_nothing_sent(witness)
                assert_refused_while(pair.address, drainer.is_alive, "the drain")
            finally:
                drainer.join(DEADLINE)
        assert_took(started, DRAIN, "a drain with a request in flight")
    witnessed_idle = 0 if concurrency == "sync" else 1
    assert reports == [DrainReport(finished=0, closed_idle=witnessed_idle, cut=1)]


LONG_LINE = b"x" * (1 << 20)
"""Sixteen times the default line limit, and no newline."""


@pytest.mark.parametrize(("concurrency", "handler", "secure"), cases("L"))
def test_a_line_over_the_default_limit_ends_the_connection(
    concurrency: str, handler: str, secure: bool, make_pair: Callable[..., Pair]
) -> None:
    """The limits' timeouts are the defaults (30 s and more), longer than the client
    waits: only the line bound can end the connection in time."""
    pair = make_pair(concurrency, handler, secure)
    with pair.client() as client:
        with contextlib.suppress(*CLOSED_ERRORS):
            client.sendall(LONG_LINE)
        assert_closed_with_nothing_sent(client)
    with pair.client() as client:  # and the server serves on
        echo_once(client)


def check_idle_timeout(pair: Pair) -> None:
    with pair.client() as client:
        echo_once(client)
        started = time.monotonic()
        assert assert_closed_by_peer(client) == b""
        assert_took(started, IDLE, "closing an idle connection (idle_timeout)")


def check_read_timeout(pair: Pair) -> None:
    with pair.client() as client:
        echo_once(client)
        started = time.monotonic()
        wait_closed_while_trickling(client, b"x", TRICKLE_PACE)
        assert_took(started, READ, "cutting a read that never completes (read_timeout)")


def check_write_timeout(pair: Pair) -> None:
    with pair.client(small_buffer=True) as client:
        start_flood(client)
        started = time.monotonic()
        client.sendall(b"unread\n")  # makes a blocking handler's close a reset
        wait_cut(pair, client)
        assert_took(started, WRITE, "cutting a reader that stopped reading (write_timeout)")


CHECKS = {"I": check_idle_timeout, "R": check_read_timeout, "W": check_write_timeout}


@pytest.mark.parametrize(("concurrency", "handler", "secure"), cases("I"))
def test_timeouts_close_within_their_bounds(
    concurrency: str, handler: str, secure: bool, make_pair: Callable[..., Pair]
) -> None:
    """Idle, read and write timeouts, on three connections at once; one after
    another under sync, which serves one connection at a time, under the event
    loops, where the write check counts requests (see `wait_cut`), and under
    forking over TLS: the clients are threads of the process that forks, and a
    child forked while one of them is inside OpenSSL inherits its locks held and
    hangs in its own handshake."""
    pair = make_pair(
        concurrency, handler, secure, idle_timeout=IDLE, read_timeout=READ, write_timeout=WRITE
    )
    checks = [CHECKS[p] for p in promises(concurrency, handler) if p in CHECKS]
    one_at_a_time = {"sync", *EVENT_LOOP_HANDLERS, *(("forking",) if secure else ())}
    if concurrency in one_at_a_time:
        for check in checks:
            check(pair)
        return
    errors: list[BaseException] = []

    def run(check: Callable[[Pair], None]) -> None:
        try:
            check(pair)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(check,)) for check in checks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)
    if errors:
        raise errors[0]


@pytest.mark.parametrize("concurrency", ["threaded", "forking"])
def test_a_drain_ends_an_idle_tls_connection_with_close_notify(
    concurrency: str, make_pair: Callable[..., Pair]
) -> None:
    pair = make_pair(concurrency, "readline", True, idle_timeout=None)
    with pair.client() as idle:
        echo_once(idle)
        pair.server.shutdown(drain=DEADLINE)
        assert idle.recv(1) == b""  # close_notify: a clean end of the TLS stream
