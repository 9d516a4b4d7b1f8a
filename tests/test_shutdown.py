"""Stopping and closing: from any thread, at once, idempotent, nothing left behind."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from typing import Any

import pytest

from composerv import (
    Connection,
    Datagram,
    async_stream_handler,
    asyncio_loop,
    datagram_handler,
    evented,
    message_handler,
    pooled,
    serve,
    stream_handler,
    sync,
    tcp,
    threaded,
    udp,
    unix_stream,
)

from .support import DEADLINE, connect, recv_exactly, serving, wait_until


def echo_until_eof(conn: Connection) -> None:
    while data := conn.recv():
        conn.send_all(data)


def test_shutdown_from_another_thread_with_clients_connected(composerv_no_leaks: None) -> None:
    server = serve(tcp(("127.0.0.1", 0)), threaded(), stream_handler(echo_until_eof))
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    clients = [connect(server.address) for _ in range(3)]
    try:
        for client in clients:
            client.sendall(b"ping")
            assert recv_exactly(client, 4) == b"ping"
        started = time.monotonic()
        server.shutdown()
        # the loop wakes through its socket pair, not after a 0.5 s poll
        assert time.monotonic() - started < 0.4
        assert not server.serving
        thread.join(DEADLINE)
        assert not thread.is_alive()
        # still-connected clients keep being served until they leave
        clients[0].sendall(b"after")
        assert recv_exactly(clients[0], 5) == b"after"
    finally:
        for client in clients:
            client.close()
    server.server_close()


def test_shutdown_from_inside_a_sync_handler_does_not_deadlock(composerv_no_leaks: None) -> None:
    def stop(conn: Connection) -> None:
        server.shutdown()
        conn.send_all(b"stopping")

    server = serve(tcp(("127.0.0.1", 0)), sync(), stream_handler(stop))
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    with connect(server.address) as client:
        assert recv_exactly(client, 8) == b"stopping"
    thread.join(DEADLINE)
    assert not thread.is_alive()
    server.server_close()


def test_shutdown_from_a_request_thread_waits_for_the_loop(composerv_no_leaks: None) -> None:
    stopped = threading.Event()

    def stop(conn: Connection) -> None:
        server.shutdown()
        stopped.set()

    server = serve(tcp(("127.0.0.1", 0)), threaded(), stream_handler(stop))
    with serving(server):
        connect(server.address).close()
        assert stopped.wait(DEADLINE)
        assert not server.serving


def _echo_datagram(datagram: Datagram) -> None:
    datagram.reply(datagram.data)


SERVERS = {
    "sync": lambda: serve(tcp(("127.0.0.1", 0)), sync(), stream_handler(echo_until_eof)),
    "pooled-udp": lambda: serve(udp(("127.0.0.1", 0)), pooled(), datagram_handler(_echo_datagram)),
    "evented": lambda: serve(tcp(("127.0.0.1", 0)), evented(), message_handler(bytes.upper)),
    "asyncio": lambda: serve(
        tcp(("127.0.0.1", 0)), asyncio_loop(), async_stream_handler(_echo_async)
    ),
}
"""One server per kind of loop: ServeLoop, the pool's receiving workers, two event loops."""


async def _echo_async(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(await reader.read(100))


@pytest.mark.parametrize("make_server", SERVERS.values(), ids=list(SERVERS))
def test_shutdown_without_serve_forever_returns_at_once(
    make_server: Any, composerv_no_leaks: None
) -> None:
    with make_server() as server:
        server.shutdown()
        server.shutdown()
        # a shutdown that came first makes the next serve_forever return at once
        loop = threading.Thread(target=server.serve_forever)
        loop.start()
        loop.join(DEADLINE)
        assert not loop.is_alive(), "serve_forever ignored the shutdown that came first"


def test_server_close_is_idempotent_and_closes_the_socket(composerv_no_leaks: None) -> None:
    server = serve(tcp(("127.0.0.1", 0)), threaded(), stream_handler(echo_until_eof))
    address = server.address
    server.server_close()
    server.server_close()
    with pytest.raises(ConnectionRefusedError), connect(address):
        pass
    with pytest.raises(RuntimeError, match="closed"):
        server.serve_forever()


def test_close_waits_for_request_threads(composerv_no_leaks: None) -> None:
    release = threading.Event()
    finished = threading.Event()

    def slow(conn: Connection) -> None:
        release.wait(DEADLINE)
        finished.set()

    server = serve(tcp(("127.0.0.1", 0)), threaded(), stream_handler(slow))
    with serving(server), connect(server.address):
        wait_until(lambda: server.active_requests == 1, "the request thread to start")
        threading.Timer(0.1, release.set).start()
    assert finished.is_set(), "server_close returned before its request thread finished"


def test_context_manager_stops_a_running_loop(composerv_no_leaks: None) -> None:
    server = serve(tcp(("127.0.0.1", 0)), threaded(), stream_handler(echo_until_eof))
    thread = threading.Thread(target=server.serve_forever)
    with server:
        thread.start()
        wait_until(lambda: server.serving, "serve_forever to start")
    thread.join(DEADLINE)
    assert not thread.is_alive()


def test_serve_forever_twice_at_once_is_an_error(composerv_no_leaks: None) -> None:
    server = serve(tcp(("127.0.0.1", 0)), sync(), stream_handler(echo_until_eof))
    with serving(server):
        wait_until(lambda: server.serving, "serve_forever to start")
        with pytest.raises(RuntimeError, match="already running"):
            server.serve_forever()


def test_unix_server_removes_its_path_on_close(unix_path: str, composerv_no_leaks: None) -> None:
    server = serve(unix_stream(unix_path), sync(), stream_handler(echo_until_eof))
    assert os.path.exists(unix_path)
    server.server_close()
    assert not os.path.exists(unix_path)


def test_unix_server_leaves_a_path_it_no_longer_owns(
    unix_path: str, composerv_no_leaks: None
) -> None:
    server = serve(unix_stream(unix_path), sync(), stream_handler(echo_until_eof))
    os.unlink(unix_path)
    with socket.socket(socket.AF_UNIX) as other:
        other.bind(unix_path)  # another server took the path over
        server.server_close()
        assert os.path.exists(unix_path)
    os.unlink(unix_path)
