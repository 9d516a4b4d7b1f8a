"""Draining shutdown: stop accepting, finish what is in flight, close idle, cut the rest."""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from composerv import (
    Connection,
    Datagram,
    DrainReport,
    datagram_handler,
    limits,
    pooled,
    serve,
    stream_handler,
    tcp,
    threaded,
    udp,
)
from composerv._context import RequestContext
from composerv._runtime._drain import CUT_GRACE

from .reliability import CONCURRENCIES, IN_PROCESS, STREAM_TRANSPORTS, echo_lines, run_clients
from .support import DEADLINE, assert_refused_while, assert_took, connect, recv_exactly, wait_until


class ProcessFlag:
    """A flag a handler raises from any process (a forked child too) for a test to see."""

    def __init__(self, directory: Path) -> None:
        self._path = directory / "raised"

    def raise_flag(self) -> None:
        self._path.touch()

    def wait(self, what: str) -> None:
        wait_until(self._path.exists, what)


def start(server: Any) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="test-serve")
    thread.start()
    wait_until(lambda: server.serving, "serve_forever to start")
    return thread


@pytest.mark.parametrize("transport", STREAM_TRANSPORTS)
def test_idle_connections_are_closed_at_once(
    transport: Any, unix_path: str, composerv_no_leaks: None
) -> None:
    server = serve(transport(unix_path), threaded(), stream_handler(echo_lines))
    thread = start(server)
    clients = [connect(server.address) for _ in range(3)]
    try:
        for client in clients:
            client.sendall(b"hi\n")
            assert recv_exactly(client, 3) == b"hi\n"
        wait_until(lambda: server.active_requests == 3, "three connections in flight")
        started = time.monotonic()
        report = server.shutdown(drain=DEADLINE)
        assert time.monotonic() - started < 0.2, "idle connections are not waited for"
        assert report == DrainReport(finished=0, closed_idle=3, cut=0)
        for client in clients:
            assert client.recv(1) == b""
    finally:
        for client in clients:
            client.close()
    thread.join(DEADLINE)
    assert not thread.is_alive()


@pytest.mark.parametrize("concurrency", CONCURRENCIES)
def test_request_in_flight_finishes_and_new_connections_are_refused(
    concurrency: Any, tmp_path: Path, composerv_no_leaks: None
) -> None:
    started = ProcessFlag(tmp_path)

    def slow(conn: Connection) -> None:
        line = conn.readline()
        started.raise_flag()
        time.sleep(0.3)  # the work in flight that the drain must wait for
        conn.send_all(b"done " + line)

    server = serve(tcp(("127.0.0.1", 0)), concurrency(), stream_handler(slow))
    address = server.address
    thread = start(server)
    with connect(address) as client:
        client.sendall(b"job\n")
        started.wait("the request to start")
        reports: list[DrainReport] = []
        stopper = threading.Thread(target=lambda: reports.append(server.shutdown(drain=5.0)))
        stopper.start()
        # Stop accepting comes first: with the request still in flight, a new
        # client is refused.
        assert_refused_while(address, stopper.is_alive, "the drain")
        assert recv_exactly(client, 9) == b"done job\n"
        stopper.join(DEADLINE)
    thread.join(DEADLINE)
    assert reports == [DrainReport(finished=1, closed_idle=0, cut=0)]


# Not strict: the warning races the loop. The drain checks for the loop's end
# with no time left, so it warns unless serve_forever has already returned after
# the cut request ended, which on a loaded machine it now and then has.
SYNC_WARNS_AFTER_A_CUT = pytest.mark.xfail(
    strict=False,
    reason="under sync the loop runs the request, so it stops only after the cut; the "
    "drain waits for it with the deadline's remaining time, zero by then, and so "
    "almost always warns that the loop did not stop within the drain",
)


@pytest.mark.parametrize(
    "concurrency",
    [
        pytest.param(*p.values, id=p.id, marks=SYNC_WARNS_AFTER_A_CUT if p.id == "sync" else ())
        for p in CONCURRENCIES
    ],
)
def test_requests_still_running_at_the_deadline_are_cut(
    concurrency: Any, caplog: pytest.LogCaptureFixture, composerv_no_leaks: None
) -> None:
    server = serve(tcp(("127.0.0.1", 0)), concurrency(), stream_handler(echo_lines))
    thread = start(server)
    with caplog.at_level(logging.WARNING, logger="composerv"), connect(server.address) as client:
        # a whole line, then a request in progress: not idle, never finished
        client.sendall(b"start\nhalf a li")
        assert recv_exactly(client, 6) == b"start\n"
        started = time.monotonic()
        report = server.shutdown(drain=0.3)
        assert_took(started, 0.3, "a drain with a request still running")
        assert report == DrainReport(finished=0, closed_idle=0, cut=1)
        client.settimeout(DEADLINE)
        with pytest.raises((ConnectionResetError, AssertionError)):
            recv_exactly(client, 1)
    thread.join(DEADLINE)
    assert not thread.is_alive()
    # The cut request noticed at once: nothing to warn about.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_a_request_that_ignores_the_cut_is_waited_for_only_a_grace_period(
    caplog: pytest.LogCaptureFixture, composerv_no_leaks: None
) -> None:
    """A handler blocked on something other than its connection does not notice the
    cut: the drain gives it CUT_GRACE more, then returns and says so."""
    release = threading.Event()

    def deaf(conn: Connection) -> None:
        conn.readline()
        release.wait(DEADLINE)

    server = serve(tcp(("127.0.0.1", 0)), threaded(), stream_handler(deaf))
    thread = start(server)
    try:
        with (
            caplog.at_level(logging.WARNING, logger="composerv"),
            connect(server.address) as client,
        ):
            client.sendall(b"hold\n")
            wait_until(lambda: server.active_requests == 1, "the request to start")
            started = time.monotonic()
            report = server.shutdown(drain=0.2)
            assert_took(started, 0.2 + CUT_GRACE, "a drain whose cut request does not end")
            assert report == DrainReport(finished=0, closed_idle=0, cut=1)
    finally:
        release.set()
        thread.join(DEADLINE)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    grace = f"1 request(s) still running {CUT_GRACE:.1f}s after being cut; not waiting for them"
    assert grace in warnings, warnings


def test_server_close_no_longer_blocks_forever_on_an_idle_client(composerv_no_leaks: None) -> None:
    """socketserver pitfall: server_close waits forever for a client that sends nothing."""
    server = serve(
        tcp(("127.0.0.1", 0)),
        threaded(),
        stream_handler(echo_lines),
        limits=limits(idle_timeout=None, drain_timeout=0.5),
    )
    thread = start(server)
    with connect(server.address) as idle, connect(server.address) as partial:
        # a whole line (so the server has read what follows), then half a request
        partial.sendall(b"start\nno newline yet")
        assert recv_exactly(partial, 6) == b"start\n"
        wait_until(lambda: server.active_requests == 2, "both connections in flight")
        server.shutdown()
        thread.join(DEADLINE)
        started = time.monotonic()
        server.server_close()
        assert_took(started, 0.5, "server_close with a request never finished (drain_timeout)")
        assert server.drain_report == DrainReport(finished=0, closed_idle=1, cut=1)
        assert idle.recv(1) == b""
    server.server_close()  # idempotent
    assert server.drain_report == DrainReport(finished=0, closed_idle=1, cut=1)


def test_daemon_threads_are_not_waited_for(composerv_no_leaks: None) -> None:
    release = threading.Event()

    def blocked(conn: Connection) -> None:
        release.wait(DEADLINE)

    server = serve(tcp(("127.0.0.1", 0)), threaded(daemon=True), stream_handler(blocked))
    thread = start(server)
    try:
        with connect(server.address):
            wait_until(lambda: server.active_requests == 1, "the request to start")
            server.shutdown()
            started = time.monotonic()
            server.server_close()
            assert time.monotonic() - started < 0.5
    finally:
        release.set()
    thread.join(DEADLINE)
    wait_until(lambda: server.active_requests == 0, "the daemon thread to end")


@pytest.fixture
def handled_log() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as directory:
        yield os.path.join(directory, "handled")


@pytest.mark.parametrize("concurrency", CONCURRENCIES)
def test_shutdown_under_load_handles_every_acknowledged_request(
    concurrency: Any, handled_log: str, composerv_no_leaks: None
) -> None:
    """Clients keep sending while the server drains: every request the server read was
    handled and acknowledged, and every acknowledgement is for a handled request."""

    def record(conn: Connection) -> None:
        fd = os.open(handled_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            while line := conn.readline():
                os.write(fd, line)  # O_APPEND: one atomic write per line, across processes
                conn.send_all(b"ack " + line)
        finally:
            os.close(fd)

    server = serve(tcp(("127.0.0.1", 0)), concurrency(), stream_handler(record))
    address = server.address
    thread = start(server)
    draining = threading.Event()
    acked: set[bytes] = set()

    def client(i: int) -> None:
        try:
            sock = connect(address)
        except (ConnectionRefusedError, ConnectionResetError):
            # Came after the drain began: refused, or reset in the backlog of the
            # listening socket that the drain closed.
            return
        with sock:
            for n in range(10_000):
                line = b"%d-%d\n" % (i, n)
                try:
                    sock.sendall(line)
                    reply = recv_exactly(sock, len(line) + 4)
                except (AssertionError, ConnectionResetError, BrokenPipeError):
                    return  # the drain closed us between requests
                assert reply == b"ack " + line
                acked.add(line)
                if n == 20 and i == 0:
                    draining.set()

    clients = threading.Thread(target=run_clients, args=(8, client))
    clients.start()
    assert draining.wait(DEADLINE)
    report = server.shutdown(drain=5.0)
    clients.join(DEADLINE)
    thread.join(DEADLINE)
    with open(handled_log, "rb") as f:
        handled = set(f.read().splitlines(keepends=True))
    assert acked, "some requests were served before the drain"
    assert handled == acked
    assert report.cut == 0


@pytest.mark.parametrize("concurrency", IN_PROCESS)
def test_draining_from_inside_a_handler_drains_once_the_handler_returns(
    concurrency: Any, composerv_no_leaks: None
) -> None:
    """A drain asked by a handler cannot wait for its own request: it returns None at
    once, and the drain (which the handler's request is part of) runs beside it."""
    returned: list[object] = []

    def stop(conn: Connection) -> None:
        returned.append(server.shutdown(drain=DEADLINE))
        conn.send_all(b"stopping\n")

    server = serve(tcp(("127.0.0.1", 0)), concurrency(), stream_handler(stop))
    thread = start(server)
    with connect(server.address) as client:
        assert recv_exactly(client, 9) == b"stopping\n"
        assert client.recv(1) == b""
    wait_until(lambda: server.drain_report is not None, "the drain to end")
    thread.join(DEADLINE)
    assert not thread.is_alive()
    assert returned == [None]
    # The drain begins beside the handler, or under sync() once serve_forever has
    # returned: the handler's request may have ended by then. It is never cut.
    report = server.drain_report
    assert report.cut == report.closed_idle == 0 and report.finished <= 1
    server.server_close()


def test_concurrent_drains_both_return_the_report(composerv_no_leaks: None) -> None:
    server = serve(tcp(("127.0.0.1", 0)), threaded(), stream_handler(echo_lines))
    thread = start(server)
    reports: list[DrainReport] = []
    with connect(server.address) as client:
        client.sendall(b"hi\n")
        assert recv_exactly(client, 3) == b"hi\n"
        stoppers = [
            threading.Thread(target=lambda: reports.append(server.shutdown(drain=5.0)))
            for _ in range(2)
        ]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join(DEADLINE)
    thread.join(DEADLINE)
    assert reports == [DrainReport(finished=0, closed_idle=1, cut=0)] * 2
    server.server_close()


@pytest.mark.parametrize("concurrency", [threaded, pooled], ids=["threaded", "pooled"])
def test_a_drain_waits_for_every_datagram_handler_in_flight(
    concurrency: Any, composerv_no_leaks: None
) -> None:
    """Datagrams arrive faster than they are served while the server drains: every
    handler that started has finished when the drain returns (requests are tracked
    without a lock, so this is the race the ordering of their stores must win)."""
    started: list[bytes] = []
    finished: list[bytes] = []

    def slow(datagram: Datagram) -> None:
        started.append(datagram.data)
        if datagram.data == b"0":
            # In flight when the drain begins, however fast the others go.
            wait_until(lambda: server.closed, "the drain to begin")
        time.sleep(0.002)
        finished.append(datagram.data)

    server = serve(udp(("127.0.0.1", 0)), concurrency(), datagram_handler(slow))
    thread = start(server)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        for n in range(200):
            client.sendto(b"%d" % n, server.address)
        wait_until(lambda: len(started) >= 20, "20 datagrams to be served")
        report = server.shutdown(drain=5.0)
        finished_at_return = sorted(finished)
        started_at_return = sorted(started)
    thread.join(DEADLINE)
    assert finished_at_return == started_at_return
    assert sorted(started) == started_at_return, "a handler started after the drain"
    assert report.cut == 0
    assert report.finished >= 1


def test_a_request_taken_from_the_socket_as_the_drain_looks_is_served_not_closed_idle() -> None:
    # The window: this thread's recv has taken the request from the socket but has
    # not yet run on, so the read still looks idle and the socket empty. The drain
    # then shuts the reading side; the bytes received are still the request's.
    server_side, client = socket.socketpair()
    with server_side, client:
        context = RequestContext(server_side, "", limits())
        client.sendall(b"request\n")

        def recv_as_the_drain_looks(max_bytes: int) -> bytes:
            received = server_side.recv(max_bytes)
            context.drain()
            return received

        assert context.receive(recv_as_the_drain_looks, 4096, b"") == b"request\n"
        assert not context.closed_idle, "the drain took a connection whose request it had"
        context.send_all(b"reply\n")
        assert client.recv(16) == b"reply\n"
        assert context.recv(4096) == b"", "the drained connection's next read is its end"
        assert not context.closed_idle, "a connection that was served counts as finished"


def test_a_connection_waiting_for_room_in_the_pool_is_drained_once_it_gets_it(
    composerv_no_leaks: None,
) -> None:
    # The loop took the third connection before the drain, but the pool (one worker,
    # one place in its queue) has room for it only once the first request ends,
    # after the drain began, while the second still runs: the drain must ask it to
    # finish then (it closes as idle at once), not wait for it until the deadline.
    busy, release = threading.Event(), threading.Event()

    def work(conn: Connection) -> None:
        for line in iter(conn.readline, b""):
            if line == b"slow\n":
                busy.set()
                release.wait(DEADLINE)
            elif line == b"pause\n":
                time.sleep(0.3)  # the second request's work, for the third to come meanwhile
            conn.send_all(line)

    concurrency = pooled(workers=1, queue=1, when_full="wait")
    server = serve(tcp(("127.0.0.1", 0)), concurrency, stream_handler(work))
    address = server.address
    thread = start(server)
    with connect(address) as first, connect(address) as queued, connect(address) as waiting:
        first.sendall(b"slow\n")
        assert busy.wait(DEADLINE)
        queued.sendall(b"pause\n")
        wait_until(lambda: server.stats().connections == 3, "the loop to take the third")
        reports: list[DrainReport] = []
        started = time.monotonic()
        stopper = threading.Thread(target=lambda: reports.append(server.shutdown(drain=DEADLINE)))
        stopper.start()
        assert_refused_while(address, stopper.is_alive, "the drain")
        release.set()
        assert recv_exactly(first, 5) == b"slow\n"
        assert recv_exactly(queued, 6) == b"pause\n"
        for done in (first, queued, waiting):
            done.settimeout(DEADLINE)
            assert done.recv(1) == b"", "a connection waiting for a request was not closed"
        stopper.join(DEADLINE)
    assert time.monotonic() - started < DEADLINE / 4, "the drain waited for its deadline"
    # The first had been served before the drain: then it too waited for a request.
    assert reports == [DrainReport(finished=1, closed_idle=2, cut=0)]
    thread.join(DEADLINE)
    assert not thread.is_alive()


@pytest.mark.parametrize("concurrency", CONCURRENCIES)
def test_a_request_that_came_while_the_handler_was_busy_is_served_then_the_connection_closes(
    concurrency: Any, tmp_path: Path, composerv_no_leaks: None
) -> None:
    started = ProcessFlag(tmp_path)

    def slow_then_echo(conn: Connection) -> None:
        while line := conn.readline():
            if line == b"slow\n":
                started.raise_flag()
                time.sleep(0.3)  # busy when the drain begins and the next request comes
            conn.send_all(line)

    server = serve(tcp(("127.0.0.1", 0)), concurrency(), stream_handler(slow_then_echo))
    thread = start(server)
    with connect(server.address) as client:
        client.sendall(b"slow\n")
        started.wait("the request to start")
        # In the socket, not in the connection's buffer: the handler's next read
        # is the first to ask for it, after the drain began.
        client.sendall(b"next\n")
        report = server.shutdown(drain=DEADLINE)
        assert recv_exactly(client, 10) == b"slow\nnext\n"
        assert client.recv(1) == b"", "a request after the one that had come was read"
    thread.join(DEADLINE)
    assert report == DrainReport(finished=1, closed_idle=0, cut=0)
