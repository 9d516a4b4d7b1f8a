"""Layers hold under every concurrency and every handler kind, over real sockets.

Each test builds one layered handler per kind (a stream function, a message
function, a classic handler class, a coroutine, a session) and serves it under
each concurrency that runs that kind, so a layer that works for one pairing and not
another shows up as one red case in the matrix.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import socketserver
import time
from collections.abc import Callable
from typing import Any

import pytest

from composerv import (
    ConfigurationError,
    ConfigurationTypeError,
    Connection,
    Datagram,
    async_stream_handler,
    asyncio_loop,
    datagram_handler,
    datagrams,
    evented,
    layered,
    message_handler,
    pooled,
    request_handler,
    serve,
    session_handler,
    stream_handler,
    sync,
    tcp,
    threaded,
    udp,
)
from composerv.abc import Handler, Layer
from composerv.layers import (
    access_log,
    allow_from,
    deny_from,
    max_in_flight,
    message_layer,
    on_error,
    rate_limit,
)
from composerv.testing import wait_until

from .support import connect, recv_exactly, serving


def _echo(conn: Connection) -> None:
    while line := conn.readline():
        conn.send_all(line)


class _Classic(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        for line in self.rfile:
            self.wfile.write(line)


async def _echo_async(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while line := await reader.readline():
        writer.write(line)
        await writer.drain()


def _session_step(state: int, line: bytes) -> tuple[int, bytes]:
    return state + 1, line


# kind -> (handler factory, the concurrencies that run it)
BLOCKING = {"sync": sync, "threaded": threaded, "pooled": pooled}
KINDS: dict[str, tuple[Callable[[], Handler[Any]], dict[str, Callable[[], Any]]]] = {
    "stream": (lambda: stream_handler(_echo), BLOCKING),
    "message": (lambda: message_handler(lambda line: line), {**BLOCKING, "evented": evented}),
    "classic": (lambda: request_handler(_Classic), BLOCKING),
    "async": (lambda: async_stream_handler(_echo_async), {"asyncio": asyncio_loop}),
    "session": (
        lambda: session_handler(lambda _peer: 0, _session_step),
        {**BLOCKING, "evented": evented},
    ),
}
MESSAGES = ("message", "session")
"""The kinds whose messages a layer sees."""
PAIRS = [
    pytest.param(kind, name, id=f"{kind}-{name}")
    for kind, (_, concurrencies) in KINDS.items()
    for name in concurrencies
]


def _serve(kind: str, concurrency: str, *layers: Layer) -> Any:
    make, concurrencies = KINDS[kind]
    return serve(tcp(("127.0.0.1", 0)), concurrencies[concurrency](), layered(make(), *layers))


def _echoes(address: Any) -> bool:
    """Whether a new connection gets its line back (False: closed without a reply)."""
    with connect(address) as client:
        try:
            client.sendall(b"ping\n")
            return client.recv(5) == b"ping\n"
        except ConnectionError:
            return False


@pytest.mark.parametrize(("kind", "concurrency"), PAIRS)
def test_allow_from_and_deny_from_filter_by_peer_address(
    kind: str, concurrency: str, composerv_no_leaks: None
) -> None:
    with serving(_serve(kind, concurrency, allow_from("127.0.0.0/8"))) as server:
        assert _echoes(server.address)
    with serving(_serve(kind, concurrency, allow_from("10.0.0.0/8", "::1"))) as server:
        assert not _echoes(server.address)
    with serving(_serve(kind, concurrency, deny_from("127.0.0.1/32"))) as server:
        assert not _echoes(server.address)


@pytest.mark.parametrize(("kind", "concurrency"), PAIRS)
def test_rate_limit_refuses_connections_over_the_rate_and_logs_once_with_a_count(
    kind: str, concurrency: str, caplog: pytest.LogCaptureFixture, composerv_no_leaks: None
) -> None:
    # 0.001 a second with a burst of 2: two connections, then none for the test's life.
    server = _serve(kind, concurrency, rate_limit(0.001, burst=2))
    with caplog.at_level(logging.WARNING, logger="composerv"), serving(server):
        served = [_echoes(server.address) for _ in range(5)]
    assert served == [True, True, False, False, False]
    # One line as the episode begins; the server's close counts the other two.
    over = [r.getMessage() for r in caplog.records if "over its rate" in r.getMessage()]
    assert len(over) == 2, over
    assert "more like it" not in over[0]
    assert "(2 more like it since the last line" in over[1]


@pytest.mark.parametrize(("kind", "concurrency"), PAIRS)
def test_access_log_writes_one_record_per_connection_with_its_bytes(
    kind: str, concurrency: str, caplog: pytest.LogCaptureFixture, composerv_no_leaks: None
) -> None:
    server = _serve(kind, concurrency, access_log())
    with caplog.at_level(logging.INFO, logger="composerv.access"), serving(server):
        with connect(server.address) as client:
            client.sendall(b"hello\nworld\n")
            assert recv_exactly(client, 12) == b"hello\nworld\n"
            address = client.getsockname()
    records = [r for r in caplog.records if r.name == "composerv.access"]
    assert len(records) == 1, caplog.text
    record = records[0]
    if kind != "async":  # asyncio's streams read and write without the context
        assert (record.bytes_in, record.bytes_out) == (12, 12)  # type: ignore[attr-defined]  # the record's extra
    assert record.outcome == "ok"  # type: ignore[attr-defined]
    assert record.peer == address  # type: ignore[attr-defined]


@pytest.mark.parametrize("concurrency", ["threaded", "pooled"])
def test_max_in_flight_refuses_beyond_its_count(concurrency: str, composerv_no_leaks: None) -> None:
    server = _serve("stream", concurrency, max_in_flight(1, reply=b"BUSY\n"))
    with serving(server), connect(server.address) as first:
        first.sendall(b"ping\n")
        assert recv_exactly(first, 5) == b"ping\n"  # first holds the one place
        with connect(server.address) as second:
            assert recv_exactly(second, 5) == b"BUSY\n"
            assert second.recv(1) == b""
    with serving(_serve("stream", concurrency, max_in_flight(1))) as server:
        assert _echoes(server.address)
        # The place is given back when the handler returns, after the client has gone.
        wait_until(lambda: server.active_requests == 0, "the first request to end")
        assert _echoes(server.address), "places are given back"


@pytest.mark.parametrize("concurrency", ["threaded", "evented"])
def test_message_layers_answer_over_the_rate_and_on_errors(
    concurrency: str, composerv_no_leaks: None
) -> None:
    def answer(line: bytes) -> bytes:
        if line == b"boom":
            raise RuntimeError("the handler's bug")
        return line.upper()

    def shout(message: bytes, call_next: Callable[[bytes], bytes | None]) -> bytes | None:
        reply = call_next(message)
        return None if reply is None else reply + b"!"

    handler = layered(
        message_handler(answer),
        rate_limit(0.001, burst=3, messages=True, reply=b"SLOW DOWN"),
        on_error(b"ERR internal"),
        message_layer(shout),
    )
    factory = {"threaded": threaded, "evented": evented}[concurrency]
    with serving(serve(tcp(("127.0.0.1", 0)), factory(), handler)) as server:
        with connect(server.address) as client:
            client.sendall(b"a\nboom\nb\nc\n")
            assert recv_exactly(client, 29) == b"A!\nERR internal\nB!\nSLOW DOWN\n"


# Two connections at once: all but sync, which serves one at a time.
@pytest.mark.parametrize(
    ("kind", "concurrency"), [p for p in PAIRS if p.values[0] in MESSAGES and p.values[1] != "sync"]
)
def test_a_message_rate_refills_at_its_rate_and_is_shared_by_the_peers_connections(
    kind: str, concurrency: str, composerv_no_leaks: None
) -> None:
    # 2 a second, a burst of 2: two messages at once, then one each half second.
    server = _serve(kind, concurrency, rate_limit(2, burst=2, messages=True, reply=b"SLOW"))
    with serving(server), connect(server.address) as first, connect(server.address) as second:
        first.sendall(b"a\n")
        assert recv_exactly(first, 2) == b"a\n"
        second.sendall(b"b\nc\n")  # the same peer: its burst is spent
        assert recv_exactly(second, 7) == b"b\nSLOW\n"
        # Bounded waits for what must happen: a token is back within half a second.
        time.sleep(0.6)
        first.sendall(b"d\n")
        assert recv_exactly(first, 2) == b"d\n"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"per_second": 0},
            ConfigurationError,
            "per_second must be a positive number of requests a second, not 0",
        ),
        (
            {"per_second": "5"},
            ConfigurationTypeError,
            "per_second must be a number of requests a second, not str '5'",
        ),
        ({"per_second": 5, "burst": 0.5}, ConfigurationError, "burst must be at least 1 .*not 0.5"),
    ],
)
def test_bad_rate_limits_are_named(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        rate_limit(**kwargs)


@pytest.mark.parametrize("concurrency", [sync, threaded, pooled, evented], ids=str)
def test_datagram_layers_drop_what_they_refuse(
    concurrency: Callable[[], Any], composerv_no_leaks: None
) -> None:
    def echo(datagram: Datagram) -> None:
        datagram.reply(datagram.data)

    handlers: list[Handler[Datagram]] = [message_handler(lambda data: data, datagrams())]
    if concurrency is not evented:
        handlers.append(datagram_handler(echo))
    for handler in handlers:
        limited = layered(handler, rate_limit(0.001, burst=1))
        with serving(serve(udp(("127.0.0.1", 0)), concurrency(), limited)) as server:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
                client.settimeout(0.5)
                client.sendto(b"first", server.address)
                assert client.recv(100) == b"first"
                client.sendto(b"second", server.address)
                with pytest.raises(TimeoutError):
                    client.recv(100)


def test_layered_keeps_the_kind_and_adds_inner_layers(composerv_no_leaks: None) -> None:
    outer, inner = allow_from("127.0.0.0/8"), access_log()
    handler = layered(layered(message_handler(bytes.upper), outer), inner)
    assert type(handler).__name__ == "StreamMessageHandler"
    assert handler.layers == (outer, inner)
    with pytest.raises(TypeError, match="must hold Layer values"):
        layered(message_handler(bytes.upper), "not a layer")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"layered\(\) needs a handler value"):
        layered(object(), outer)  # type: ignore[type-var]
