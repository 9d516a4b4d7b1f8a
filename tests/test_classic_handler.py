"""request_handler(): classic request-handler classes served by the core serve()."""

from __future__ import annotations

import io
import logging
import socket
import time
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

from .support import DEADLINE, connect, recv_exactly, serving
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


# StreamRequestHandler's class attributes, each doing what the stdlib's does.


class Timed(socketserver.StreamRequestHandler):
    timeout = 0.3

    def handle(self) -> None:
        started = time.monotonic()
        try:
            self.rfile.readline()
        except TimeoutError:
            self.wfile.write(b"timed out after %.3f\n" % (time.monotonic() - started))


class NoNagle(socketserver.StreamRequestHandler):
    disable_nagle_algorithm = True

    def handle(self) -> None:
        nodelay = self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        self.wfile.write(b"nodelay=%d\n" % bool(nodelay))


class SaysWhatItsWfileIs(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        # The stdlib documents wfile as an io.BufferedIOBase (writes are whole).
        self.wfile.write(b"buffered=%d\n" % isinstance(self.wfile, io.BufferedIOBase))


class Unbuffered(socketserver.StreamRequestHandler):
    rbufsize = 0

    def handle(self) -> None:
        line = self.rfile.readline()
        # Unbuffered, rfile took only the line: the rest is still in the socket.
        self.wfile.write(line.upper() + self.connection.recv(100))


class SmallWriteBuffer(socketserver.StreamRequestHandler):
    wbufsize = 8

    def handle(self) -> None:
        self.wfile.write(b"0123456789\n")  # longer than the buffer: sent at once
        self.rfile.readline()  # the client's word that it got it
        self.wfile.write(b"done\n")  # shorter: sent as the request finishes


class ClosesItsOwnFiles(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        self.wfile.write(b"bye\n")
        self.wfile.close()


def test_a_handler_timeout_raises_in_the_handler_at_its_time(composerv_no_leaks: None) -> None:
    server = serve(tcp(("127.0.0.1", 0)), threaded(), request_handler(Timed))
    with serving(server, poll_interval=0.05), connect(server.address) as client:
        reply = client.makefile("rb").readline()
    took = float(reply.removeprefix(b"timed out after "))
    assert Timed.timeout <= took < Timed.timeout * 1.5 + 0.1


# (handler, what the client sends, the whole reply): on a TCP connection or any socket.
ON_ANY_SOCKET = [
    pytest.param(Unbuffered, b"line\nrest", b"LINE\nrest", id="rbufsize=0"),
    pytest.param(SaysWhatItsWfileIs, b"", b"buffered=1\n", id="wbufsize=0"),
    pytest.param(ClosesItsOwnFiles, b"", b"bye\n", id="closes-its-wfile"),
]


@pytest.mark.parametrize(
    ("handler", "sent", "reply"),
    [pytest.param(NoNagle, b"", b"nodelay=1\n", id="disable_nagle_algorithm"), *ON_ANY_SOCKET],
)
def test_stream_handler_attributes_do_what_the_stdlibs_do(
    handler: Any,
    sent: bytes,
    reply: bytes,
    caplog: pytest.LogCaptureFixture,
    composerv_no_leaks: None,
) -> None:
    server = serve(tcp(("127.0.0.1", 0)), threaded(), request_handler(handler))
    with serving(server, poll_interval=0.05), connect(server.address) as client:
        client.sendall(sent)
        assert recv_exactly(client, len(reply)) == reply
        assert client.recv(1) == b"", "the connection closes after finish()"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_buffered_wfile_sends_what_overflows_it_at_once_and_the_rest_at_finish(
    composerv_no_leaks: None,
) -> None:
    server = serve(tcp(("127.0.0.1", 0)), threaded(), request_handler(SmallWriteBuffer))
    with serving(server, poll_interval=0.05), connect(server.address) as client:
        assert recv_exactly(client, 11) == b"0123456789\n"
        client.sendall(b"got it\n")
        assert recv_exactly(client, 5) == b"done\n"
        assert client.recv(1) == b""


@pytest.mark.parametrize(("handler", "sent", "reply"), ON_ANY_SOCKET)
def test_a_handler_class_serves_a_plain_socket_as_the_stdlibs_does(
    handler: Any, sent: bytes, reply: bytes
) -> None:
    # Legacy code and its tests construct handlers on sockets of their own, where
    # the buffering of rfile and wfile is the socket module's, not a connection's.
    server_side, client = socket.socketpair()
    with server_side, client:
        server_side.settimeout(DEADLINE)
        client.sendall(sent)
        handler(server_side, "peer", None)
        assert recv_exactly(client, len(reply)) == reply
