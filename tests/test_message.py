"""Message handlers: the same pure function served correctly under every concurrency."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any

import pytest

from composerv import (
    ConfigurationTypeError,
    Datagram,
    RequestContext,
    datagrams,
    evented,
    forking,
    length_prefixed,
    limits,
    lines,
    message_handler,
    pooled,
    serve,
    sync,
    tcp,
    threaded,
    udp,
    unix_datagram,
    unix_stream,
)
from composerv.types import StreamMessageHandler

from .support import DEADLINE, connect, recv_exactly, recv_until_eof, serving

# Under forking a child would inherit the test's client sockets and never see EOF
# (see the brief); stream tests therefore leave it out, datagram tests keep it.
STREAM_CONCURRENCIES: dict[str, Callable[[], Any]] = {
    "sync": sync,
    "threaded": threaded,
    "pooled": pooled,
    "evented": evented,
}
TWO_CLIENT_CONCURRENCIES = {
    name: make for name, make in STREAM_CONCURRENCIES.items() if name != "sync"
}
"""For tests with two clients connected at once, which sync serves one at a time."""
DATAGRAM_CONCURRENCIES: dict[str, Callable[[], Any]] = {
    **STREAM_CONCURRENCIES,
    "forking": forking,
}
STREAM_TRANSPORTS: dict[str, Callable[[str], Any]] = {
    "tcp4": lambda _path: tcp(("127.0.0.1", 0)),
    "tcp6": lambda _path: tcp(("::1", 0)),
    "unix": unix_stream,
}
DATAGRAM_TRANSPORTS: dict[str, Callable[[str], Any]] = {
    "udp4": lambda _path: udp(("127.0.0.1", 0)),
    "unix_dgram": unix_datagram,
}


def shout(message: bytes) -> bytes | None:
    """Upper-cases each message; answers nothing to b"quiet"."""
    return None if message == b"quiet" else message.upper()


def roundtrip_lines(sock: socket.socket, sent: list[bytes]) -> bytes:
    sock.sendall(b"".join(line + b"\n" for line in sent))
    expected = sum(len(line) + 1 for line in sent if line != b"quiet")
    return recv_exactly(sock, expected)


@pytest.mark.parametrize(
    "make_concurrency", STREAM_CONCURRENCIES.values(), ids=list(STREAM_CONCURRENCIES)
)
@pytest.mark.parametrize("make_transport", STREAM_TRANSPORTS.values(), ids=list(STREAM_TRANSPORTS))
def test_lines_are_answered_in_order(
    make_concurrency: Callable[[], Any],
    make_transport: Callable[[str], Any],
    unix_path: str,
    composerv_no_leaks: None,
) -> None:
    server = serve(make_transport(unix_path), make_concurrency(), message_handler(shout))
    with serving(server):
        with connect(server.address) as client:
            assert roundtrip_lines(client, [b"a", b"quiet", b"bc"]) == b"A\nBC\n"
            # A message split across sends, and several in one send.
            client.sendall(b"hel")
            client.sendall(b"lo\nx\ny\n")
            assert recv_exactly(client, 8) == b"HELLO\nX\nY\n"[:8]
            assert recv_exactly(client, 2) == b"Y\n"


@pytest.mark.parametrize(
    "make_concurrency", STREAM_CONCURRENCIES.values(), ids=list(STREAM_CONCURRENCIES)
)
def test_length_prefixed_frames(
    make_concurrency: Callable[[], Any], unix_path: str, composerv_no_leaks: None
) -> None:
    framing = length_prefixed(header_size=2)
    server = serve(unix_stream(unix_path), make_concurrency(), message_handler(shout, framing))
    with serving(server):
        with connect(server.address) as client:
            payloads = [b"", b"with\nnewline", b"z" * 5000]
            client.sendall(b"".join(framing.encode(p) for p in payloads))
            for payload in payloads:
                assert recv_exactly(client, 2 + len(payload)) == framing.encode(payload.upper())


@pytest.mark.parametrize(
    "make_concurrency",
    TWO_CLIENT_CONCURRENCIES.values(),
    ids=list(TWO_CLIENT_CONCURRENCIES),
)
def test_an_oversize_message_closes_only_its_connection(
    make_concurrency: Callable[[], Any],
    caplog: pytest.LogCaptureFixture,
    composerv_no_leaks: None,
) -> None:
    server = serve(
        tcp(("127.0.0.1", 0)),
        make_concurrency(),
        message_handler(shout, lines(max_size=100)),
    )
    with caplog.at_level(logging.WARNING, logger="composerv"), serving(server):
        with connect(server.address) as good, connect(server.address) as bad:
            assert roundtrip_lines(good, [b"before"]) == b"BEFORE\n"
            bad.sendall(b"ok\n" + b"x" * 101 + b"\n")
            # The message before the oversize one is still answered, then EOF.
            assert recv_until_eof(bad) == b"OK\n"
            assert roundtrip_lines(good, [b"after"]) == b"AFTER\n"
            peer = bad.getsockname()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        "max_size=100" in r.getMessage() and f"{peer[0]}:{peer[1]}" in r.getMessage()
        for r in warnings
    ), [r.getMessage() for r in warnings]


@pytest.mark.parametrize(
    "make_concurrency", STREAM_CONCURRENCIES.values(), ids=list(STREAM_CONCURRENCIES)
)
def test_an_unfinished_last_message_is_logged(
    make_concurrency: Callable[[], Any],
    caplog: pytest.LogCaptureFixture,
    unix_path: str,
    composerv_no_leaks: None,
) -> None:
    server = serve(unix_stream(unix_path), make_concurrency(), message_handler(shout))
    with caplog.at_level(logging.WARNING, logger="composerv"), serving(server):
        with connect(server.address) as client:
            client.sendall(b"done\nunfinish")
            client.shutdown(socket.SHUT_WR)
            assert recv_until_eof(client) == b"DONE\n"
    assert any("8 bytes of an unfinished message" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "make_concurrency",
    TWO_CLIENT_CONCURRENCIES.values(),
    ids=list(TWO_CLIENT_CONCURRENCIES),
)
def test_an_exception_in_the_function_closes_only_its_connection(
    make_concurrency: Callable[[], Any], caplog: pytest.LogCaptureFixture, composerv_no_leaks: None
) -> None:
    def picky(message: bytes) -> bytes:
        if message == b"boom":
            raise ValueError("no boom here")
        return message

    server = serve(
        tcp(("127.0.0.1", 0)),
        make_concurrency(),
        message_handler(picky),
    )
    with caplog.at_level(logging.ERROR, logger="composerv"), serving(server):
        with connect(server.address) as good, connect(server.address) as bad:
            bad.sendall(b"boom\n")
            assert recv_until_eof(bad) == b""
            assert roundtrip_lines(good, [b"still here"]) == b"still here\n"
    assert any("no boom here" in (r.exc_text or "") for r in caplog.records)


@pytest.mark.parametrize(
    "make_concurrency", DATAGRAM_CONCURRENCIES.values(), ids=list(DATAGRAM_CONCURRENCIES)
)
@pytest.mark.parametrize(
    "make_transport", DATAGRAM_TRANSPORTS.values(), ids=list(DATAGRAM_TRANSPORTS)
)
def test_datagrams_are_answered(
    make_concurrency: Callable[[], Any],
    make_transport: Callable[[str], Any],
    unix_path: str,
    composerv_no_leaks: None,
) -> None:
    server = serve(
        make_transport(unix_path), make_concurrency(), message_handler(shout, datagrams())
    )
    with serving(server):
        if isinstance(server.address, str):
            client = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            client.bind(unix_path + ".client")
        else:
            client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with client:
            client.settimeout(DEADLINE)
            client.sendto(b"quiet", server.address)
            for payload in (b"one", b"two\nlines", b""):
                client.sendto(payload, server.address)
                assert client.recv(100) == payload.upper()


def test_message_handler_picks_its_kind_from_the_framing() -> None:
    assert message_handler(shout).kind == "stream"
    assert message_handler(shout, length_prefixed()).kind == "stream"
    assert message_handler(shout, datagrams()).kind == "datagram"
    handler = message_handler(shout)
    assert isinstance(handler, StreamMessageHandler)
    assert handler.framing == lines()


def test_bad_values_are_named() -> None:
    with pytest.raises(ConfigurationTypeError, match="fn must be callable"):
        message_handler(b"not callable")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationTypeError, match="framing must be a StreamFraming"):
        StreamMessageHandler(shout, framing="lines")  # type: ignore[arg-type]


def test_datagram_reply_needs_no_framing(unix_path: str) -> None:
    handler = message_handler(shout, datagrams())
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server_sock:
        server_sock.bind(unix_path)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as client:
            client.bind(unix_path + ".c")
            client.settimeout(DEADLINE)
            handler.handle(
                Datagram(b"hi", unix_path + ".c", server_sock),
                RequestContext(None, unix_path + ".c", limits()),
            )
            assert client.recv(10) == b"HI"
