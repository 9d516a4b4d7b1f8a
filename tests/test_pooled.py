"""pooled(): a bounded set of reused worker threads, with backpressure when full."""

from __future__ import annotations

import logging
import socket
import threading

import pytest

from composerv import (
    ConfigurationError,
    Connection,
    Datagram,
    datagram_handler,
    pooled,
    serve,
    stream_handler,
    tcp,
    udp,
)

from .support import DEADLINE, connect, recv_exactly, recv_until_eof, serving, wait_until


def worker_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if "-worker-" in t.name}


def test_requests_reuse_a_bounded_set_of_threads(composerv_no_leaks: None) -> None:
    served_by: list[str] = []

    def record(conn: Connection) -> None:
        served_by.append(threading.current_thread().name)
        conn.send_all(conn.readline())

    server = serve(tcp(("127.0.0.1", 0)), pooled(workers=3), stream_handler(record))
    with serving(server):
        for number in range(30):
            with connect(server.address) as client:
                client.sendall(b"%d\n" % number)
                assert recv_exactly(client, len(b"%d\n" % number)) == b"%d\n" % number
        assert len(worker_threads()) <= 3
    assert len(served_by) == 30
    assert len(set(served_by)) <= 3
    assert worker_threads() == set()


class Gate:
    """A stream handler that holds each connection until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = 0
        self.lock = threading.Lock()

    def __call__(self, conn: Connection) -> None:
        with self.lock:
            self.entered += 1
        assert self.release.wait(DEADLINE)
        conn.send_all(b"served\n")


def test_every_request_gets_a_worker_while_workers_remain(composerv_no_leaks: None) -> None:
    gate = Gate()
    server = serve(tcp(("127.0.0.1", 0)), pooled(workers=3, queue=1), stream_handler(gate))
    with serving(server):
        clients = [connect(server.address) for _ in range(3)]
        try:
            # All three block at once: none waits behind another in the queue.
            wait_until(lambda: gate.entered == 3, "three requests served at once")
            gate.release.set()
            for client in clients:
                assert recv_until_eof(client) == b"served\n"
        finally:
            for client in clients:
                client.close()


def test_when_full_wait_stops_accepting_until_a_worker_is_free(composerv_no_leaks: None) -> None:
    gate = Gate()
    server = serve(tcp(("127.0.0.1", 0)), pooled(workers=1, queue=1), stream_handler(gate))
    with serving(server):
        clients = [connect(server.address) for _ in range(4)]
        try:
            # One is served, one waits in the queue; the loop waits for a slot while
            # the others stay in the listen backlog.
            wait_until(lambda: gate.entered == 1 and server.active_requests == 2, "a full pool")
            assert server.active_requests == 2
            gate.release.set()
            for client in clients:
                assert recv_until_eof(client) == b"served\n"
        finally:
            for client in clients:
                client.close()
    assert gate.entered == 4


def test_busy_workers_leave_datagrams_in_the_socket_buffer(composerv_no_leaks: None) -> None:
    """With every worker in a handler nobody receives: the third datagram waits, unread."""
    release = threading.Event()
    entered: list[bytes] = []

    def held(datagram: Datagram) -> None:
        entered.append(datagram.data)
        assert release.wait(DEADLINE)
        datagram.reply(datagram.data)

    server = serve(udp(("127.0.0.1", 0)), pooled(workers=2), datagram_handler(held))
    with serving(server), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(DEADLINE)
        for data in (b"1", b"2", b"3"):
            client.sendto(data, server.address)
        wait_until(lambda: len(entered) == 2, "both workers busy")
        # Served inline by the workers that received them, and counted.
        assert server.active_requests == 2
        with pytest.raises(AssertionError):
            wait_until(lambda: len(entered) > 2, "a third datagram", timeout=0.3)
        release.set()
        assert sorted(client.recv(16) for _ in range(3)) == [b"1", b"2", b"3"]


def test_fast_datagrams_are_served_by_the_worker_that_receives_them(
    composerv_no_leaks: None,
) -> None:
    """No hand-off per request: the leading worker keeps serving while requests are quick,
    and never more than `workers` threads exist."""
    served_by: list[str] = []

    def echo(datagram: Datagram) -> None:
        served_by.append(threading.current_thread().name)
        datagram.reply(datagram.data)

    server = serve(udp(("127.0.0.1", 0)), pooled(workers=8), datagram_handler(echo))
    with serving(server), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(DEADLINE)
        for number in range(300):
            client.sendto(b"%d" % number, server.address)
            assert client.recv(16) == b"%d" % number
        assert len(worker_threads()) <= 8
    assert "composerv-testing-serve-forever" not in served_by
    # A worker hands over only when a request takes milliseconds (a loaded CI
    # machine can stall one now and then); most requests stay with one thread.
    most = max(served_by.count(name) for name in set(served_by))
    assert most >= 200, sorted(set(served_by))


def test_when_full_reject_closes_new_requests_and_logs(
    caplog: pytest.LogCaptureFixture, composerv_no_leaks: None
) -> None:
    gate = Gate()
    server = serve(
        tcp(("127.0.0.1", 0)),
        pooled(workers=1, queue=1, when_full="reject"),
        stream_handler(gate),
    )
    with caplog.at_level(logging.WARNING, logger="composerv"), serving(server):
        with connect(server.address) as first, connect(server.address) as second:
            wait_until(lambda: server.active_requests == 2, "a full pool")
            with connect(server.address) as third:
                assert recv_until_eof(third) == b""
            gate.release.set()
            assert recv_until_eof(first) == b"served\n"
            assert recv_until_eof(second) == b"served\n"
    assert gate.entered == 2
    refusals = [r for r in caplog.records if "refused a request" in r.getMessage()]
    assert len(refusals) == 1, caplog.text
    assert refusals[0].levelno == logging.WARNING and refusals[0].exc_info is None
    assert "all 1 workers are busy" in refusals[0].getMessage()


def test_closing_waits_for_requests_in_flight(composerv_no_leaks: None) -> None:
    gate = Gate()
    server = serve(tcp(("127.0.0.1", 0)), pooled(workers=2), stream_handler(gate))
    with connect(server.address) as client:
        with serving(server):
            wait_until(lambda: gate.entered == 1, "the request to start")
            releaser = threading.Timer(0.1, gate.release.set)
            releaser.start()
        # serving() has shut down and closed the server, which waited for the worker.
        assert gate.release.is_set()
        assert server.active_requests == 0
        assert recv_until_eof(client) == b"served\n"
    releaser.join()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"workers": 0}, "workers must be a positive int, not 0"),
        ({"queue": -1}, "queue must be a positive int, not -1"),
        ({"when_full": "drop"}, "when_full must be 'wait' or 'reject', not 'drop'"),
    ],
)
def test_bad_options_are_named(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        pooled(**options)  # type: ignore[arg-type]


def test_handle_request_hands_the_request_to_a_worker(composerv_no_leaks: None) -> None:
    served_by: list[str] = []

    def record(conn: Connection) -> None:
        served_by.append(threading.current_thread().name)
        conn.send_all(conn.readline())

    with serve(tcp(("127.0.0.1", 0)), pooled(workers=2), stream_handler(record)) as server:
        with connect(server.address) as client:
            client.sendall(b"one\n")
            server.handle_request(timeout=DEADLINE)
            assert recv_exactly(client, 4) == b"one\n"
    assert len(served_by) == 1
    assert "-worker-" in served_by[0]
    assert worker_threads() == set()


def test_shutdown_while_workers_are_stuck_returns_and_close_waits_for_them(
    composerv_no_leaks: None,
) -> None:
    gate = Gate()
    server = serve(tcp(("127.0.0.1", 0)), pooled(workers=3), stream_handler(gate))
    clients = [connect(server.address) for _ in range(3)]
    opener = threading.Timer(0.2, gate.release.set)
    try:
        with serving(server):
            wait_until(lambda: gate.entered == 3, "all workers busy")
            # serving() shuts down with every worker stuck in a handler: the loop
            # stops at once, and server_close waits until the gate opens.
            opener.start()
        assert gate.release.is_set()
        for client in clients:
            assert recv_until_eof(client) == b"served\n"
    finally:
        opener.join(DEADLINE)
        for client in clients:
            client.close()
    assert worker_threads() == set()
