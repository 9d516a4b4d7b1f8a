"""composerv.testing as a typed user's tests use it: must type-check under mypy --strict."""

import socket
import ssl

from typing_extensions import assert_type

from composerv import (
    Connection,
    Datagram,
    Server,
    datagram_handler,
    message_handler,
    serve,
    stream_handler,
    tcp,
    threaded,
    udp,
)
from composerv.compat import socketserver
from composerv.testing import (
    Resources,
    ServingFactory,
    TLSContexts,
    connect_handler,
    free_port,
    no_leaks,
    run_bytes,
    run_messages,
    serving,
    tls_contexts,
)


def echo(conn: Connection) -> None:
    conn.send_all(conn.recv())


def answer(datagram: Datagram) -> None:
    datagram.reply(datagram.data)


def test_serving_keeps_the_server_type() -> None:
    with serving(serve(tcp(("127.0.0.1", 0)), threaded(), stream_handler(echo))) as server:
        assert_type(server, Server[socket.socket, tuple[str, int]])
    with serving(serve(udp(("127.0.0.1", 0)), threaded(), datagram_handler(answer))) as server2:
        assert_type(server2, Server[Datagram, tuple[str, int]])
    classic = socketserver.TCPServer(("127.0.0.1", 0), socketserver.StreamRequestHandler)
    with serving(classic, poll_interval=0.05, check_leaks=False) as running:
        assert_type(running, socketserver.TCPServer)


def test_fixtures(composerv_serving: ServingFactory, composerv_tls: TLSContexts) -> None:
    server = composerv_serving(serve(tcp(("127.0.0.1", 0)), threaded(), stream_handler(echo)))
    assert_type(server, Server[socket.socket, tuple[str, int]])
    assert_type(composerv_tls.server, ssl.SSLContext)
    server_context, client_context = tls_contexts()
    assert_type(server_context, ssl.SSLContext)
    assert_type(client_context, ssl.SSLContext)


def test_the_others() -> None:
    with no_leaks() as before:
        assert_type(before, Resources)
    replies = run_messages(message_handler(bytes.upper), [b"a"])
    assert_type(replies, list[bytes])
    assert_type(run_bytes(message_handler(bytes.upper), [b"a\n"]), bytes)
    with connect_handler(echo, timeout=1.0) as client:
        assert_type(client, socket.socket)
    with connect_handler(stream_handler(echo)) as client2:
        assert_type(client2, socket.socket)
    assert_type(free_port("::1", socket.SOCK_DGRAM), int)
