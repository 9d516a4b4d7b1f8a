"""Echo correctness for every transport x concurrency pairing of the core."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from composerv import (
    Connection,
    Datagram,
    Server,
    datagram_handler,
    datagrams,
    evented,
    forking,
    message_handler,
    pooled,
    serve,
    stream_handler,
    sync,
    tcp,
    threaded,
    udp,
    unix_datagram,
    unix_stream,
)

from .support import DEADLINE, assert_took, connect, recv_exactly, serving

# Loops take up to 64 ready requests per wake-up; a burst of several batches checks
# that none is taken and then forgotten at a batch's edge.
BURST = 3 * 64 + 5

CONCURRENCIES = {
    "sync": sync,
    "threaded": threaded,
    "forking": forking,
}


def echo_lines(conn: Connection) -> None:
    """Echo each line until the client sends b"bye\\n" (no EOF needed: forking-safe)."""
    while line := conn.readline():
        conn.send_all(line)
        if line == b"bye\n":
            return


def echo_datagram(datagram: Datagram) -> None:
    datagram.reply(datagram.data)


StreamFactory = Callable[[str], Any]

STREAM_TRANSPORTS: dict[str, StreamFactory] = {
    "tcp4": lambda _path: tcp(("127.0.0.1", 0)),
    "tcp6": lambda _path: tcp(("::1", 0)),
    "unix": unix_stream,
}

DATAGRAM_TRANSPORTS: dict[str, StreamFactory] = {
    "udp4": lambda _path: udp(("127.0.0.1", 0)),
    "udp6": lambda _path: udp(("::1", 0)),
    "unix_dgram": unix_datagram,
}


@pytest.mark.parametrize("concurrency", CONCURRENCIES.values(), ids=CONCURRENCIES.keys())
@pytest.mark.parametrize("make_transport", STREAM_TRANSPORTS.values(), ids=STREAM_TRANSPORTS.keys())
def test_stream_echo(
    make_transport: StreamFactory,
    concurrency: Callable[[], Any],
    unix_path: str,
    composerv_no_leaks: None,
) -> None:
    server: Server[socket.socket] = serve(
        make_transport(unix_path), concurrency(), stream_handler(echo_lines)
    )
    with serving(server):
        for client_number in range(3):
            with connect(server.address) as client:
                for line_number in range(5):
                    message = f"client {client_number} line {line_number}\n".encode()
                    client.sendall(message)
                    assert recv_exactly(client, len(message)) == message
                client.sendall(b"bye\n")
                assert recv_exactly(client, 4) == b"bye\n"
                assert client.recv(1) == b"", "the server must close after the handler returns"


@pytest.mark.parametrize("concurrency", CONCURRENCIES.values(), ids=CONCURRENCIES.keys())
@pytest.mark.parametrize(
    "make_transport", DATAGRAM_TRANSPORTS.values(), ids=DATAGRAM_TRANSPORTS.keys()
)
def test_datagram_echo(
    make_transport: StreamFactory,
    concurrency: Callable[[], Any],
    unix_path: str,
    composerv_no_leaks: None,
) -> None:
    server: Server[Datagram] = serve(
        make_transport(unix_path), concurrency(), datagram_handler(echo_datagram)
    )
    with serving(server), _datagram_client(server.address, unix_path) as client:
        for number in range(5):
            payload = f"datagram {number}".encode() * (number + 1)
            client.send(payload)
            assert client.recv(65536) == payload


BURST_CONCURRENCIES = {**CONCURRENCIES, "pooled": pooled}
BURST_DATAGRAM_SERVERS: dict[str, Callable[[], tuple[Any, Any]]] = {
    **{
        name: lambda make=make: (make(), datagram_handler(echo_datagram))
        for name, make in BURST_CONCURRENCIES.items()
    },
    "evented": lambda: (evented(), message_handler(bytes, datagrams())),
}


@pytest.mark.parametrize(
    "make_server", BURST_DATAGRAM_SERVERS.values(), ids=BURST_DATAGRAM_SERVERS.keys()
)
def test_every_datagram_of_a_burst_is_served(
    make_server: Callable[[], tuple[Any, Any]], composerv_no_leaks: None
) -> None:
    server: Server[Datagram] = serve(udp(("127.0.0.1", 0)), *make_server())
    sent = {b"datagram %d" % number for number in range(BURST)}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(DEADLINE)
        client.connect(server.address)
        # All queued before the loop starts, so it finds them ready at once.
        for payload in sent:
            client.send(payload)
        with serving(server):
            assert {client.recv(64) for _ in range(BURST)} == sent


@pytest.mark.parametrize(
    "concurrency", BURST_CONCURRENCIES.values(), ids=BURST_CONCURRENCIES.keys()
)
def test_every_connection_of_a_burst_is_served(
    concurrency: Callable[[], Any], composerv_no_leaks: None
) -> None:
    server: Server[socket.socket] = serve(
        tcp(("127.0.0.1", 0), backlog=BURST), concurrency(), stream_handler(echo_lines)
    )
    clients = []
    try:
        for _ in range(BURST):
            client = connect(server.address)
            clients.append(client)
            client.sendall(b"bye\n")
        with serving(server):
            for client in clients:
                assert recv_exactly(client, 4) == b"bye\n"
    finally:
        for client in clients:
            client.close()


def _datagram_client(address: Any, unix_path: str) -> socket.socket:
    if isinstance(address, str):
        client = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        client.bind(unix_path + ".client")  # unbound unix peers cannot be answered
    else:
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        client = socket.socket(family, socket.SOCK_DGRAM)
    client.settimeout(DEADLINE)
    client.connect(address)
    return client


def test_port_zero_reads_back_the_real_port(composerv_no_leaks: None) -> None:
    with serve(tcp(("127.0.0.1", 0)), sync(), stream_handler(echo_lines)) as server:
        host, port = server.address
        assert host == "127.0.0.1"
        assert 0 < port < 65536


def test_handle_request_serves_exactly_one(composerv_no_leaks: None) -> None:
    with serve(tcp(("127.0.0.1", 0)), sync(), stream_handler(echo_lines)) as server:
        with connect(server.address) as client:
            client.sendall(b"one\nbye\n")
            server.handle_request(timeout=DEADLINE)
            assert recv_exactly(client, 8) == b"one\nbye\n"


def test_handle_request_times_out_when_nobody_comes(composerv_no_leaks: None) -> None:
    with serve(tcp(("127.0.0.1", 0)), sync(), stream_handler(echo_lines)) as server:
        started = time.monotonic()
        server.handle_request(timeout=0.3)
        assert_took(started, 0.3, "handle_request with nobody connecting")


def test_bind_and_activate_false_defers_binding(composerv_no_leaks: None) -> None:
    server = serve(
        tcp(("127.0.0.1", 0), bind_and_activate=False), sync(), stream_handler(echo_lines)
    )
    with server:
        assert server.address == ("0.0.0.0", 0)
        server.bind_and_activate()
        assert server.address[1] != 0
        with pytest.raises(RuntimeError, match="already bound"):
            server.bind_and_activate()


def test_dual_stack_accepts_ipv4_clients(composerv_no_leaks: None) -> None:
    with (
        serve(tcp(("::", 0), dual_stack=True), threaded(), stream_handler(echo_lines)) as server,
        serving(server),
    ):
        with connect(("127.0.0.1", server.address[1])) as client:
            client.sendall(b"bye\n")
            assert recv_exactly(client, 4) == b"bye\n"


def test_forking_children_are_all_reaped(composerv_no_leaks: None) -> None:
    server = serve(tcp(("127.0.0.1", 0)), forking(max_children=2), stream_handler(echo_lines))
    with serving(server):
        clients = [connect(server.address) for _ in range(4)]
        try:
            for client in clients:
                client.sendall(b"bye\n")
            for client in clients:
                assert recv_exactly(client, 4) == b"bye\n"
        finally:
            for client in clients:
                client.close()
    assert server.active_requests == 0


def first_line_only(conn: Connection) -> None:
    conn.send_all(conn.readline())


def echo_until_eof(conn: Connection) -> None:
    while data := conn.recv():
        conn.send_all(data)


@pytest.mark.parametrize("concurrency", CONCURRENCIES.values(), ids=CONCURRENCIES.keys())
def test_a_reply_arrives_whole_before_eof_whether_or_not_the_handler_read_to_the_end(
    concurrency: Callable[[], Any], composerv_no_leaks: None
) -> None:
    """Left unread, the client's bytes make close() reset the connection: the server
    shuts down its side first, so the reply and the FIN arrive before the reset.
    Read to the end, nothing is unread and close() alone sends the FIN."""
    server = serve(tcp(("127.0.0.1", 0)), concurrency(), stream_handler(first_line_only))
    with serving(server):
        for _ in range(5):
            with connect(server.address) as client:
                client.sendall(b"first\n" + b"unread" * 10_000)
                assert recv_exactly(client, 6) == b"first\n"
                assert client.recv(1) == b""
    server = serve(tcp(("127.0.0.1", 0)), concurrency(), stream_handler(echo_until_eof))
    with serving(server):
        for _ in range(5):
            with connect(server.address) as client:
                client.sendall(b"all of it")
                client.shutdown(socket.SHUT_WR)
                assert recv_exactly(client, 9) == b"all of it"
                assert client.recv(1) == b""


def nodelay_of(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


@pytest.mark.parametrize(
    ("nodelay", "concurrency", "expected"),
    [
        (None, threaded, 0),
        (None, sync, 0),
        (None, evented, 1),
        (True, threaded, 1),
        (False, evented, 0),
    ],
    ids=["blocking-default", "sync-default", "evented-default", "asked-on", "asked-off"],
)
def test_tcp_nodelay_is_the_concurrencys_unless_the_transport_says(
    nodelay: bool | None, concurrency: Callable[[], Any], expected: int, composerv_no_leaks: None
) -> None:
    """Event loops send each batch of replies at once; blocking handlers keep Nagle.
    The listener carries the option, which accepted connections inherit (Linux)."""
    seen: list[int] = []
    handler: Any = (
        message_handler(bytes)
        if concurrency is evented
        else stream_handler(lambda conn: seen.append(nodelay_of(conn.socket)))
    )
    server = serve(tcp(("127.0.0.1", 0), nodelay=nodelay), concurrency(), handler)
    with serving(server), connect(server.address) as client:
        assert nodelay_of(server.socket) == expected
        client.sendall(b"x\n")
        if concurrency is evented:
            assert recv_exactly(client, 2) == b"x\n"
        else:
            assert client.recv(1) == b""
            assert seen == [expected]
