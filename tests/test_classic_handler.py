"""request_handler(): classic request-handler classes served by the core serve()."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from compat import socketserver
from composerv import (
    ConfigurationTypeError,
    HandlerMismatchError,
    forking,
    request_handler,
    serve,
    sync,
    tcp,
    threaded,
    udp,
    unix_datagram,
    unix_stream,
)
from composerv.types import ClassicDatagramHandler, ClassicServer, ClassicStreamHandler

from .support import DEADLINE, connect, serving
from .typecheck import CHECKERS, Checker, Expected, assert_errors_match, snippet_errors

EXPECTED_ERRORS = {
    "stream-kind-on-udp": Expected(
        'Argument 1 to "serve" has incompatible type "UDP"',
        'Argument of type "ClassicStreamHandler" cannot be assigned to parameter "handler" of '
        'type "Handler[Datagram]"',
    ),
    "datagram-kind-on-tcp": Expected(
        'Argument 3 to "serve" has incompatible type "ClassicDatagramHandler"',
        'Argument of type "ClassicDatagramHandler" cannot be assigned to parameter "handler" of '
        'type "Handler[socket]"',
    ),
    "unknown-kind": Expected(
        'No overload variant of "request_handler" matches argument types',
        'Argument of type "Literal[\'raw\']" cannot be assigned to parameter "kind"',
    ),
    "not-a-class": Expected(
        'No overload variant of "request_handler" matches argument type "int"',
        'Argument of type "Literal[42]" cannot be assigned to parameter "handler_class"',
    ),
}

seen: list[Any] = []


class Upper(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        seen.append((self.client_address, self.server))
        for line in self.rfile:
            self.wfile.write(line.upper())
            if line == b"last\n":
                return


class Pong(socketserver.DatagramRequestHandler):
    def handle(self) -> None:
        seen.append((self.client_address, self.server))
        self.wfile.write(b"pong:" + self.rfile.read())


@pytest.fixture(autouse=True)
def _forget() -> None:
    seen.clear()


@pytest.mark.parametrize("concurrency", [sync(), threaded(), forking()], ids=repr)
def test_stream_handler_class_over_tcp(concurrency: Any, composerv_no_leaks: None) -> None:
    server = serve(tcp(("127.0.0.1", 0)), concurrency, request_handler(Upper))
    address = server.address
    with serving(server, poll_interval=0.05), connect(address) as client:
        client_address = client.getsockname()
        reader = client.makefile("rb")
        client.sendall(b"one\nlast\n")
        assert reader.readline() == b"ONE\n"
        assert reader.readline() == b"LAST\n"
        assert reader.readline() == b""  # the server closed the connection after finish()
        reader.close()
    if not isinstance(concurrency, type(forking())):
        ((peer, view),) = seen
        assert peer == client_address
        assert isinstance(view, ClassicServer)
        assert view.server_address == address


def test_datagram_handler_class_over_udp(composerv_no_leaks: None) -> None:
    server = serve(udp(("127.0.0.1", 0)), sync(), request_handler(Pong, kind="datagram"))
    address = server.address
    with (
        serving(server, poll_interval=0.05),
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client,
    ):
        client.bind(("127.0.0.1", 0))
        client.settimeout(DEADLINE)
        client.sendto(b"ping", address)
        assert client.recv(100) == b"pong:ping"
        client_address = client.getsockname()
    ((peer, view),) = seen
    assert peer == client_address
    assert view.server_address == address


def test_handler_classes_over_unix_sockets(unix_path: str, composerv_no_leaks: None) -> None:
    server = serve(unix_stream(unix_path), threaded(), request_handler(Upper))
    with serving(server, poll_interval=0.05), connect(unix_path) as client:
        client.sendall(b"last\n")
        assert client.recv(100) == b"LAST\n"
    reply_path = unix_path + ".client"
    server = serve(unix_datagram(unix_path), sync(), request_handler(Pong, kind="datagram"))
    with (
        serving(server, poll_interval=0.05),
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as client,
    ):
        client.bind(reply_path)
        client.settimeout(DEADLINE)
        client.sendto(b"x", unix_path)
        assert client.recv(100) == b"pong:x"


def test_kind_selects_the_handler_type() -> None:
    assert isinstance(request_handler(Upper), ClassicStreamHandler)
    assert isinstance(request_handler(Pong, kind="datagram"), ClassicDatagramHandler)
    assert request_handler(Upper) == request_handler(Upper, kind="stream")
    with pytest.raises(ValueError, match="kind must be 'stream' or 'datagram', not 'raw'"):
        request_handler(Upper, kind="raw")  # type: ignore[call-overload]
    with pytest.raises(ConfigurationTypeError, match="handler_class must be callable"):
        request_handler(42)  # type: ignore[arg-type]


def test_mismatched_kind_is_refused_at_run_time() -> None:
    with pytest.raises(HandlerMismatchError, match="a stream handler cannot serve"):
        serve(udp(("127.0.0.1", 0)), sync(), request_handler(Upper))  # type: ignore[arg-type]


@pytest.mark.parametrize("checker", CHECKERS)
def test_checkers_accept_matching_kinds_and_reject_the_rest(checker: Checker) -> None:
    found = snippet_errors(checker, "classic_pairings.py")
    assert_errors_match(found, "classic_pairings.py", EXPECTED_ERRORS, checker)
