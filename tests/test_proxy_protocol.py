"""`proxy_protocol`: behind a real HAProxy every handler kind, under every concurrency,
sees the client; forged, malformed, oversized and slow headers close the connection."""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from composerv import (
    ConfigurationError,
    ConfigurationTypeError,
    Connection,
    Server,
    async_stream_handler,
    asyncio_loop,
    evented,
    forking,
    message_handler,
    pooled,
    proxy_protocol,
    request_handler,
    serve,
    session_handler,
    stream_handler,
    sync,
    tcp,
    threaded,
    tls,
    udp,
    unix_stream,
    workers,
)
from composerv._addresses import Address
from composerv._proxy import ProxyHeader, ProxyTLVType, encode_proxy_header
from composerv._transports._proxy import HeaderReader, Relayed
from composerv.layers import allow_from
from composerv.testing import tls_contexts
from composerv.types import Workers

from .haproxy import running_haproxy
from .support import DEADLINE, connect, recv_exactly, recv_until_eof, serving, wait_until

pytestmark = pytest.mark.usefixtures("composerv_no_leaks")

CLIENT_HOST = "127.0.0.3"  # not HAProxy's 127.0.0.1: the handler must see this one
LOOPBACK = ["127.0.0.1/32"]


def _line(peer: Address, rest: bytes = b"") -> bytes:
    assert isinstance(peer, tuple)
    return f"{peer[0]} {peer[1]} ".encode() + rest


# Each handler kind answers a line with the peer it sees, then the line.


def _stream(conn: Connection) -> None:
    while line := conn.readline():
        conn.send_all(_line(conn.peer, line))


class _Classic(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        while line := self.rfile.readline():
            self.wfile.write(_line(self.client_address, line))


def _start(peer: Address) -> Address:
    return peer


def _step(peer: Address, line: bytes) -> tuple[Address, bytes]:
    return peer, _line(peer, line)


async def _async(reader: Any, writer: Any) -> None:
    while line := await reader.readline():
        writer.write(_line(writer.get_extra_info("peername"), line))
        await writer.drain()


STREAM = stream_handler(_stream)
CLASSIC = request_handler(_Classic)
SESSION = session_handler(_start, _step)
ASYNC = async_stream_handler(_async)

COMBINATIONS = {
    "sync-stream": (sync, STREAM),
    "threaded-stream": (threaded, STREAM),
    "threaded-classic": (threaded, CLASSIC),
    "threaded-session": (threaded, SESSION),
    "threaded-async": (threaded, ASYNC),
    "pooled-classic": (pooled, CLASSIC),
    "forking-stream": (forking, STREAM),
    "evented-session": (evented, SESSION),
    "asyncio-async": (asyncio_loop, ASYNC),
    "workers-evented-session": (lambda: workers(2, evented()), SESSION),
    "workers-threaded-classic": (lambda: workers(2, threaded()), CLASSIC),
}


def _server(name: str, **options: Any) -> Server[Any]:
    concurrency, handler = COMBINATIONS[name]
    transport = proxy_protocol(tcp(("127.0.0.1", 0)), trusted=LOOPBACK, **options)
    server: Server[Any] = serve(transport, concurrency(), handler)  # type: ignore[call-overload]
    return server


@contextlib.contextmanager
def _serving(name: str, **options: Any) -> Iterator[Server[Any]]:
    """`serving` the server of `name`; with workers, once every worker runs, so that
    none is forked while the test starts haproxy (a worker forked in the middle of
    Popen keeps its error pipe open, and Popen waits for it forever)."""
    server = _server(name, **options)
    with serving(server):
        if isinstance(server.concurrency, Workers):
            count = server.concurrency.count
            wait_until(lambda: server.active_requests == count, f"{count} workers")
        yield server


def _ask(client: socket.socket, line: bytes) -> bytes:
    client.sendall(line)
    reply = b""
    while not reply.endswith(b"\n"):  # bounded by the socket's timeout and the EOF check
        chunk = client.recv(4096)
        assert chunk, f"EOF after {reply!r}"
        reply += chunk
    return reply


# --- Through a real HAProxy ---------------------------------------------------------


@pytest.mark.parametrize("version", [1, 2], ids=["v1", "v2"])
@pytest.mark.parametrize("name", list(COMBINATIONS))
def test_every_handler_sees_the_client_behind_haproxy(name: str, version: int) -> None:
    option = "send-proxy" if version == 1 else "send-proxy-v2"
    with _serving(name) as server, running_haproxy(server.address, option) as haproxy:
        for _ in range(2):  # a fresh connection each time: each has its own header
            with connect(haproxy.address, source=CLIENT_HOST) as client:
                host, port = client.getsockname()
                # Two lines, so the bytes after the header are the client's, in order.
                assert _ask(client, b"one\n") == f"{host} {port} one\n".encode()
                assert _ask(client, b"two\n") == f"{host} {port} two\n".encode()


@pytest.mark.parametrize("concurrency", [threaded, asyncio_loop], ids=["threaded", "asyncio"])
def test_tls_after_the_header_behind_haproxy(concurrency: Callable[[], Any]) -> None:
    server_context, client_context = tls_contexts()
    handler = ASYNC if concurrency is asyncio_loop else STREAM
    transport = tls(proxy_protocol(tcp(("127.0.0.1", 0)), trusted=LOOPBACK), server_context)
    server = serve(transport, concurrency(), handler)
    with serving(server), running_haproxy(server.address, "send-proxy-v2") as haproxy:
        with client_context.wrap_socket(
            connect(haproxy.address, source=CLIENT_HOST), server_hostname="localhost"
        ) as client:
            host, port = client.getsockname()
            assert _ask(client, b"secret\n") == f"{host} {port} secret\n".encode()


def test_haproxy_health_checks_are_local_and_keep_the_server_up() -> None:
    seen: list[tuple[Address, str | None]] = []

    def record(conn: Connection) -> None:
        header = conn.context.proxy_header
        seen.append((conn.peer, None if header is None else header.command))
        conn.readline()  # the check closes (or resets) the connection

    server = serve(
        proxy_protocol(tcp(("127.0.0.1", 0)), trusted=LOOPBACK), threaded(), stream_handler(record)
    )
    options = "send-proxy-v2 check check-send-proxy inter 100ms rise 1"
    with serving(server), running_haproxy(server.address, options) as haproxy:
        wait_until(lambda: len(seen) >= 2, "two health checks")
        wait_until(lambda: haproxy.server_status() == "UP", "haproxy to see the server up")
    # A LOCAL header relays no one: the peer stays HAProxy's own address.
    assert {(peer[0], command) for peer, command in seen} == {("127.0.0.1", "LOCAL")}  # type: ignore[index]


def test_unique_id_tlv_reaches_the_handler() -> None:
    ids: list[bytes | None] = []

    def record(conn: Connection) -> None:
        assert conn.context.proxy_header is not None
        ids.append(conn.context.proxy_header.unique_id)
        conn.send_all(_line(conn.peer, conn.readline()))

    server = serve(
        proxy_protocol(tcp(("127.0.0.1", 0)), trusted=LOOPBACK), threaded(), stream_handler(record)
    )
    with (
        serving(server),
        running_haproxy(
            server.address,
            "send-proxy-v2 proxy-v2-options crc32c,unique-id",
            frontend=["unique-id-format %ci:%cp"],
        ) as haproxy,
        connect(haproxy.address, source=CLIENT_HOST) as client,
    ):
        host, port = client.getsockname()
        assert _ask(client, b"hi\n") == f"{host} {port} hi\n".encode()
    assert ids == [f"{host}:{port}".encode()]


# --- Directly, with headers written by hand -------------------------------------------

V2 = encode_proxy_header(
    ProxyHeader(version=2, source=("192.0.2.7", 51000), destination=("10.0.0.1", 8000))
)
V1 = b"PROXY TCP4 192.0.2.9 10.0.0.1 4242 8000\r\n"
# Under each kind of runtime: the blocking one, and both event loops.
DIRECT = ["threaded-stream", "evented-session", "asyncio-async"]


def _closed_unanswered(client: socket.socket) -> bool:
    """Whether the server closed the connection without a byte of reply."""
    try:
        return recv_until_eof(client) == b""
    except ConnectionResetError:
        return True


def _send_all_of(client: socket.socket, data: bytes) -> None:
    """Send `data` and the end of stream, unless the server has closed already."""
    with contextlib.suppress(ConnectionResetError, BrokenPipeError):
        client.sendall(data)
    with contextlib.suppress(OSError):  # ENOTCONN: the server has reset the connection
        client.shutdown(socket.SHUT_WR)


def _refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "before its PROXY header" in r.getMessage()]


@pytest.mark.parametrize("name", DIRECT)
def test_header_and_first_bytes_in_one_segment(name: str) -> None:
    with serving(_server(name)) as server:
        for header, client_host, client_port in [(V2, "192.0.2.7", 51000), (V1, "192.0.2.9", 4242)]:
            with connect(server.address) as client:
                # The header, and two lines, in one send: none of the lines is lost.
                client.sendall(header + b"a\nb\n")
                expected = f"{client_host} {client_port} a\n{client_host} {client_port} b\n"
                assert recv_exactly(client, len(expected)) == expected.encode()


@pytest.mark.parametrize("name", DIRECT)
def test_a_forged_header_from_an_untrusted_source_is_refused(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="composerv"), serving(_server(name)) as server:
        for _ in range(3):
            with connect(server.address, source=CLIENT_HOST) as client:
                client.sendall(V2 + b"hi\n")
                assert _closed_unanswered(client)
        wait_until(lambda: len(_refusals(caplog)) >= 1, "the refusal to be logged")
        # Still serves its proxy.
        with connect(server.address) as client:
            assert _ask(client, V2 + b"ok\n") == b"192.0.2.7 51000 ok\n"
    # Once: the two after it are counted, and the count logged as the server closes.
    refusal, count = _refusals(caplog)
    assert "(2 more like it since the last line" in count
    assert CLIENT_HOST in refusal
    assert "not a trusted proxy (trusted=127.0.0.1/32)" in refusal


@pytest.mark.parametrize("name", DIRECT)
@pytest.mark.parametrize(
    ("sent", "reason"),
    [
        (b"GET / HTTP/1.0\r\n\r\n", "expected a PROXY protocol header"),
        (b"PROXY TCP4 192.0.2.1 10.0.0.1 01 80\r\nhi\n", "without leading zeros"),
        (V2[:14] + (5000).to_bytes(2, "big") + bytes(5000), "over max_size=4096"),
        (b"PROXY TCP4 192.0.2.1 ", "closed after 21 bytes"),
    ],
    ids=["not-a-header", "malformed", "oversized", "cut-short"],
)
def test_a_bad_header_closes_the_connection(
    name: str, sent: bytes, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="composerv"), serving(_server(name)) as server:
        with connect(server.address) as client:
            _send_all_of(client, sent)
            assert _closed_unanswered(client)
        wait_until(lambda: len(_refusals(caplog)) == 1, "the refusal to be logged")
        wait_until(lambda: server.active_requests == 0, "the connection to be released")
    (refusal,) = _refusals(caplog)
    assert reason in refusal


@pytest.mark.parametrize("name", DIRECT)
def test_a_slow_header_is_closed_at_the_header_timeout(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    timeout = 0.3
    server = _server(name, header_timeout=timeout)
    with caplog.at_level(logging.WARNING, logger="composerv"), serving(server):
        with connect(server.address) as client:
            started = time.monotonic()
            client.sendall(V1[:10])  # and no more
            assert _closed_unanswered(client)
            waited = time.monotonic() - started
    # An event loop's sweep runs four times per shortest timeout: at most 25% late.
    assert timeout * 0.9 <= waited < timeout * 1.25 + 1.0, waited
    (refusal,) = _refusals(caplog)
    assert "header_timeout=0.3s (10 bytes of it came)" in refusal


@pytest.mark.parametrize("concurrency", [threaded, evented], ids=["threaded", "evented"])
def test_layers_see_the_relayed_client(concurrency: Callable[[], Any]) -> None:
    handler = message_handler(bytes.upper, layers=(allow_from("192.0.2.0/24"),))
    transport = proxy_protocol(tcp(("127.0.0.1", 0)), trusted=LOOPBACK)
    with serving(serve(transport, concurrency(), handler)) as server:
        with connect(server.address) as client:
            assert _ask(client, V2 + b"in\n") == b"IN\n"
        outsider = encode_proxy_header(
            ProxyHeader(version=1, source=("198.51.100.1", 1), destination=("10.0.0.1", 80))
        )
        with connect(server.address) as client:
            client.sendall(outsider + b"out\n")
            assert _closed_unanswered(client)


def test_unix_socket_peers_are_trusted_and_see_the_client(unix_path: str) -> None:
    server = serve(proxy_protocol(unix_stream(unix_path), trusted=()), threaded(), STREAM)
    with serving(server), socket.socket(socket.AF_UNIX) as client:
        client.settimeout(DEADLINE)
        client.connect(unix_path)
        assert _ask(client, V1 + b"x\n") == b"192.0.2.9 4242 x\n"


# --- The reader, split every way; the server, under random bytes ---------------------

HEADERS = [
    V1,
    V2,
    encode_proxy_header(
        ProxyHeader(
            version=2,
            source=("2001:db8::1", 443),
            destination=("2001:db8::2", 8443),
            tlvs=[(ProxyTLVType.UNIQUE_ID, b"abc"), (ProxyTLVType.CRC32C, bytes(4))],
        )
    ),
    encode_proxy_header(ProxyHeader(version=2, command="LOCAL")),
    encode_proxy_header(ProxyHeader(version=2, source="/run/client", destination="/run/srv")),
    b"PROXY UNKNOWN\r\n",
]


@contextlib.contextmanager
def _pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        yield ours, theirs


@settings(max_examples=200, deadline=None)
@given(
    header=st.sampled_from(HEADERS),
    cuts=st.lists(st.integers(min_value=1, max_value=120), max_size=6),
    payload=st.binary(max_size=64),
)
def test_any_split_of_the_header_reads_the_same(
    header: bytes, cuts: list[int], payload: bytes
) -> None:
    proxy = ("127.0.0.1", 40000)
    expected = None
    whole = HeaderReader(proxy, max_size=4096, timeout=DEADLINE)
    with _pair() as (ours, theirs):
        ours.sendall(header + payload)
        expected = whole.step(theirs)
        assert recv_exactly(theirs, len(payload)) == payload
    assert isinstance(expected, Relayed)
    reader = HeaderReader(proxy, max_size=4096, timeout=DEADLINE)
    points = sorted({c for c in cuts if c < len(header)})
    pieces = [header[a:b] for a, b in zip([0, *points], [*points, len(header)], strict=True)]
    with _pair() as (ours, theirs):
        found = None
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            ours.sendall(piece + (payload if last else b""))
            found = reader.step(theirs)
            assert (found is None) != last, (pieces, index)
        assert found == expected
        # Not a byte of the client's was taken with the header.
        assert recv_exactly(theirs, len(payload)) == payload


def test_random_bytes_never_crash_the_server_or_leak_a_connection() -> None:
    server = _server("evented-session", header_timeout=DEADLINE)
    with serving(server), pytest.MonkeyPatch.context() as patch:
        # Many refusals from one address: the episodes keep them to a line.
        patch.setattr(logging.getLogger("composerv"), "disabled", True)

        @settings(max_examples=150, deadline=None)
        @given(
            prefix=st.sampled_from([b"", V1[:6], V2[:12], V2[:16]]),
            noise=st.binary(min_size=1, max_size=300),
        )
        def send(prefix: bytes, noise: bytes) -> None:
            with connect(server.address) as client:
                _send_all_of(client, prefix + noise)
                # Refused, or (noise that made a valid header) served to its end:
                # either way the server closes, within the socket's timeout.
                with contextlib.suppress(ConnectionResetError):
                    recv_until_eof(client)

        send()
        wait_until(lambda: server.active_requests == 0, "every connection to be closed")
        with connect(server.address) as client:
            assert _ask(client, V2 + b"still\n") == b"192.0.2.7 51000 still\n"


# --- Construction ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda: proxy_protocol(tcp(("127.0.0.1", 0)), trusted=[]),
            ConfigurationError,
            "trusted must name the networks the proxy connects from",
        ),
        (
            lambda: proxy_protocol(tcp(("127.0.0.1", 0)), trusted="10.0.0.0/8"),
            ConfigurationTypeError,
            "trusted must be a sequence of networks",
        ),
        (
            lambda: proxy_protocol(tcp(("127.0.0.1", 0)), trusted=["10.0.0.300/8"]),
            ConfigurationError,
            "network '10.0.0.300/8' is not an IPv4 or IPv6",
        ),
        (
            lambda: proxy_protocol(udp(("127.0.0.1", 0)), trusted=LOOPBACK),  # type: ignore[arg-type]
            ConfigurationTypeError,
            "the PROXY protocol runs over streams only",
        ),
        (
            lambda: proxy_protocol(tls(tcp(("127.0.0.1", 0)), tls_contexts()[0]), trusted=LOOPBACK),
            ConfigurationError,
            r"wrap TLS outside it, tls\(proxy_protocol\(tcp",
        ),
        (
            lambda: proxy_protocol(tcp(("127.0.0.1", 0)), trusted=LOOPBACK, header_timeout=0),
            ConfigurationError,
            "header_timeout must be a positive number",
        ),
        (
            lambda: proxy_protocol(tcp(("127.0.0.1", 0)), trusted=LOOPBACK, max_size=10),
            ConfigurationError,
            r"max_size must be between 107 \(the longest v1 line\)",
        ),
    ],
    ids=["no-trusted", "a-string", "bad-network", "udp", "inside-tls", "timeout", "max-size"],
)
def test_construction_errors_name_the_field(
    make: Callable[[], object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        make()


def test_event_loops_refuse_tls_over_the_header_only_where_they_must() -> None:
    server_context, _ = tls_contexts()
    transport = tls(proxy_protocol(tcp(("127.0.0.1", 0)), trusted=LOOPBACK), server_context)
    with pytest.raises(ConfigurationError, match="TLS handshake"):
        serve(transport, evented(), SESSION)
    # asyncio runs the handshake itself, after the loop read the header.
    serve(transport, asyncio_loop(), ASYNC).server_close()
