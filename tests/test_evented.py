"""evented(): one thread, non-blocking sockets, message handlers only."""

from __future__ import annotations

import gc
import select
import socket
import threading
import tracemalloc

import pytest

import composerv._concurrency._evented as evented_module
from composerv import (
    Connection,
    HandlerMismatchError,
    async_stream_handler,
    evented,
    message_handler,
    serve,
    stream_handler,
    tcp,
    unix_stream,
)
from composerv._concurrency._poller import _EpollPoller, _SelectorsPoller

from .support import DEADLINE, connect, recv_exactly, recv_until_eof, serving, wait_until


def echo(message: bytes) -> bytes:
    return message


def test_a_blocking_handler_is_refused_with_a_hint() -> None:
    def blocking(conn: Connection) -> None:
        conn.send_all(conn.recv())

    with pytest.raises(HandlerMismatchError, match=r"use message_handler\(fn\)"):
        serve(tcp(("127.0.0.1", 0)), evented(), stream_handler(blocking))  # type: ignore[call-overload]


def test_an_async_handler_is_refused_with_a_hint() -> None:
    async def handler(reader: object, writer: object) -> None:
        pass

    with pytest.raises(HandlerMismatchError, match=r"evented\(\) serves only message handlers"):
        serve(tcp(("127.0.0.1", 0)), evented(), async_stream_handler(handler))  # type: ignore[call-overload, arg-type]


@pytest.fixture(
    params=[
        pytest.param(
            _EpollPoller,
            marks=pytest.mark.skipif(not hasattr(select, "epoll"), reason="epoll is Linux's"),
        ),
        _SelectorsPoller,
    ],
    ids=["epoll", "selectors"],
)
def each_poller(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs a test over epoll (Linux) and over the selectors poller used elsewhere."""
    monkeypatch.setattr(evented_module, "new_poller", request.param)


@pytest.mark.usefixtures("each_poller")
def test_many_connections_share_one_thread(unix_path: str, composerv_no_leaks: None) -> None:
    server = serve(unix_stream(unix_path), evented(), message_handler(echo))
    with serving(server):
        threads = threading.active_count()
        clients = [connect(server.address) for _ in range(100)]
        try:
            for number, client in enumerate(clients):
                client.sendall(b"%d\n" % number)
            for number, client in enumerate(clients):
                assert recv_exactly(client, len(b"%d\n" % number)) == b"%d\n" % number
            assert threading.active_count() == threads
            wait_until(lambda: server.active_requests == 100, "100 open connections")
        finally:
            for client in clients:
                client.close()
        wait_until(lambda: server.active_requests == 0, "the connections to be dropped")


@pytest.mark.usefixtures("each_poller")
def test_a_peer_that_does_not_read_is_paused_and_others_go_on(composerv_no_leaks: None) -> None:
    server = serve(tcp(("127.0.0.1", 0)), evented(), message_handler(echo))
    line = b"y" * 1023 + b"\n"
    total = 64 * 1024 * 1024
    with serving(server), connect(server.address) as slow, connect(server.address) as fast:
        # Without reading, the slow peer fills both directions' buffers: the server
        # must then stop reading from it rather than buffer its replies.
        slow.setblocking(False)
        chunk = memoryview(line * 64)
        sent = 0
        while sent < total:
            try:
                # Go on from where a short send stopped, so that the stream stays a
                # run of whole lines (a fresh chunk after it would cut a line short).
                sent += slow.send(chunk[sent % len(chunk) :])
            except BlockingIOError:
                break
        assert sent < total, "the server kept reading from a peer that never reads"
        fast.sendall(b"still served\n")
        assert recv_exactly(fast, 13) == b"still served\n"
        slow.settimeout(DEADLINE)
        # Now read: every byte comes back, in order, and the rest can be sent.
        received = recv_exactly(slow, sent - sent % len(line))
        assert received == line * (len(received) // len(line))


@pytest.mark.usefixtures("each_poller")
def test_bulk_echo_is_complete_and_in_order(unix_path: str, composerv_no_leaks: None) -> None:
    server = serve(unix_stream(unix_path), evented(), message_handler(echo))
    payload = b"".join(b"%07d" % n + b"x" * 4088 + b"\n" for n in range(1024))  # 4 MiB
    with serving(server), connect(server.address) as client:
        sender = threading.Thread(target=client.sendall, args=(payload,))
        sender.start()
        assert recv_exactly(client, len(payload)) == payload
        sender.join(DEADLINE)


@pytest.mark.usefixtures("each_poller")
def test_server_close_closes_open_connections(composerv_no_leaks: None) -> None:
    server = serve(tcp(("127.0.0.1", 0)), evented(), message_handler(echo))
    with connect(server.address) as client:
        with serving(server):
            client.sendall(b"hi\n")
            assert recv_exactly(client, 3) == b"hi\n"
        assert recv_until_eof(client) == b""


def test_connections_survive_between_serve_forever_calls(composerv_no_leaks: None) -> None:
    server = serve(tcp(("127.0.0.1", 0)), evented(), message_handler(echo))
    with server, connect(server.address) as client:
        for word in (b"first\n", b"second\n"):
            thread = threading.Thread(target=server.serve_forever, args=(0.05,))
            thread.start()
            client.sendall(word)
            assert recv_exactly(client, len(word)) == word
            server.shutdown()
            thread.join(DEADLINE)
            assert not thread.is_alive()


@pytest.mark.usefixtures("each_poller")
def test_handle_request_runs_one_turn(composerv_no_leaks: None) -> None:
    server = serve(tcp(("127.0.0.1", 0)), evented(), message_handler(echo))
    with server, connect(server.address) as client:
        server.handle_request(DEADLINE)  # the accept
        client.sendall(b"one\n")
        server.handle_request(DEADLINE)  # the message
        assert recv_exactly(client, 4) == b"one\n"
        # Nothing to do: returns after the timeout (handle_timeout is a no-op here).
        server.handle_request(0.01)
        assert server.active_requests == 1


def test_shutdown_from_the_message_function_does_not_deadlock(composerv_no_leaks: None) -> None:
    holder: list[object] = []

    def stop(message: bytes) -> bytes:
        holder[0].shutdown()  # type: ignore[attr-defined]
        return b"stopping"

    server = serve(tcp(("127.0.0.1", 0)), evented(), message_handler(stop))
    holder.append(server)
    thread = threading.Thread(target=server.serve_forever)
    with server, connect(server.address) as client:
        thread.start()
        client.sendall(b"stop\n")
        assert recv_exactly(client, 9) == b"stopping\n"
        thread.join(DEADLINE)
        assert not thread.is_alive()


IDLE_CONNECTION_BUDGET = 16 * 1024
"""Bytes an idle connection may hold: a quarter of one receive buffer."""


def test_idle_connections_keep_no_receive_buffer(unix_path: str, composerv_no_leaks: None) -> None:
    count = 200
    server = serve(unix_stream(unix_path), evented(), message_handler(echo))
    with serving(server):
        clients: list[socket.socket] = []
        try:
            gc.collect()
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(count):
                # One at a time: a unix listen queue that is full refuses at once.
                clients.append(connect(server.address))
                clients[-1].sendall(b"x\n")
                assert recv_exactly(clients[-1], 2) == b"x\n"
            wait_until(lambda: server.active_requests == count, "every connection")
            after = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
            for client in clients:
                client.close()
    # Both sides' objects are counted here (the client sockets too). What this
    # guards is a behaviour: an idle connection keeps no receive buffer (one of
    # recv_size, 64 KiB, would show at once); the figure itself (under 2 KiB) is a
    # benchmark's business, not a pass/fail line in the suite.
    per_connection = (after - before) / count
    assert per_connection < IDLE_CONNECTION_BUDGET, per_connection
