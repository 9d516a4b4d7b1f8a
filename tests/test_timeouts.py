"""Per-connection deadlines: idle clients, slowloris writers and slow readers are cut off."""

from __future__ import annotations

import logging
import socket
import struct
import sys
import time
from typing import Any

import pytest

import composerv._context
from composerv import Connection, limits, serve, stream_handler, tcp, threaded, unix_stream
from composerv.abc import Handler
from composerv.testing import Resources

from .reliability import (
    CONCURRENCIES,
    IN_PROCESS,
    echo_lines,
    idle_client_is_closed,
    run_clients,
    slowloris_is_cut,
)
from .support import (
    SERVING_THREAD,
    assert_closed_by_peer,
    assert_took,
    connect,
    recv_exactly,
    serving,
    wait_reset,
    wait_until,
)


def _echo_server(concurrency: Any, **bounds: Any) -> Any:
    """`echo_lines` on loopback TCP under `concurrency`, bounded by ``limits(**bounds)``."""
    return serve(
        tcp(("127.0.0.1", 0)), concurrency, stream_handler(echo_lines), limits=limits(**bounds)
    )


@pytest.mark.parametrize("concurrency", CONCURRENCIES)
def test_idle_connection_is_closed_after_idle_timeout(
    concurrency: Any, composerv_no_leaks: None
) -> None:
    server = _echo_server(concurrency(), idle_timeout=0.3)
    with serving(server):
        idle_client_is_closed(server.address, idle_timeout=0.3)


@pytest.mark.parametrize("concurrency", IN_PROCESS)
def test_idle_timeout_is_logged_once_without_traceback(
    concurrency: Any, caplog: pytest.LogCaptureFixture, composerv_no_leaks: None
) -> None:
    server = _echo_server(concurrency(), idle_timeout=0.2)
    with caplog.at_level(logging.INFO, logger="composerv"), serving(server):
        with connect(server.address) as client:
            port = client.getsockname()[1]
            assert client.recv(1) == b""
        wait_until(lambda: len(caplog.records) >= 1, "the timeout to be logged")
    [record] = [r for r in caplog.records if "idle_timeout" in r.getMessage()]
    assert record.levelno == logging.INFO
    assert f"127.0.0.1:{port}" in record.getMessage()
    assert record.exc_info is None


@pytest.mark.parametrize("concurrency", IN_PROCESS)
def test_the_log_names_the_timeout_that_closed_the_connection(
    concurrency: Any, caplog: pytest.LogCaptureFixture, composerv_no_leaks: None
) -> None:
    # first_request_timeout shorter than idle_timeout: a client that never sent a
    # request and one that went quiet after one are closed by different limits.
    server = _echo_server(concurrency(), first_request_timeout=0.2, idle_timeout=0.4)
    with caplog.at_level(logging.INFO, logger="composerv"), serving(server):
        with connect(server.address) as silent:
            assert silent.recv(1) == b""
        with connect(server.address) as served:
            served.sendall(b"one\n")
            assert recv_exactly(served, 4) == b"one\n"
            assert served.recv(1) == b""
        wait_until(lambda: len(caplog.records) >= 2, "both timeouts to be logged")
    messages = [r.getMessage() for r in caplog.records if "timeout=" in r.getMessage()]
    assert len(messages) == 2, messages
    assert "sent nothing within first_request_timeout=0.2s" in messages[0]
    assert "idle for longer than idle_timeout=0.4s" in messages[1]


@pytest.mark.parametrize("concurrency", CONCURRENCIES)
def test_slowloris_is_cut_off_by_read_timeout(concurrency: Any, composerv_no_leaks: None) -> None:
    """A byte every 50 ms keeps the idle timeout happy but never finishes a line."""
    server = _echo_server(concurrency(), idle_timeout=2.0, read_timeout=0.4)
    with serving(server):
        slowloris_is_cut(server.address, read_timeout=0.4)


@pytest.mark.parametrize("concurrency", CONCURRENCIES)
@pytest.mark.parametrize(
    ("idle", "read"),
    # The third: the kernel timeout of the idle wait is kept for a read while it is
    # at most twice what remains (one setsockopt less per receive); 0.55 s is more.
    # The last: no idle timeout at all, so the read's is the socket's first.
    [(0.3, 3.0), (3.0, 0.3), (0.55, 0.2), (None, 0.3)],
    ids=["idle-after-a-long-read", "stalled-read-after-a-long-idle", "just-over-twice", "no-idle"],
)
def test_each_timeout_holds_after_a_wait_under_the_other(
    concurrency: Any, idle: float | None, read: float, composerv_no_leaks: None
) -> None:
    """The socket's timeout is switched as a connection goes from waiting for a
    request (idle_timeout) to waiting for the rest of one (read_timeout): each must
    hold after a wait under the other, not only as a connection's first wait."""
    server = _echo_server(concurrency(), idle_timeout=idle, read_timeout=read)
    with serving(server), connect(server.address) as client:
        client.sendall(b"first line\nsecond ")
        assert recv_exactly(client, 11) == b"first line\n"
        client.sendall(b"half\n")  # the rest of a line: a second receive, under read_timeout
        assert recv_exactly(client, 12) == b"second half\n"
        stalls = idle is None or read < idle
        if stalls:
            client.sendall(b"stalled")  # a request begun, under the idle timeout's wait
        started = time.monotonic()
        assert assert_closed_by_peer(client) == b""
        assert_took(started, read if stalls else idle, "the timeout after a wait under the other")


def test_many_slowloris_clients_do_not_exhaust_threads(composerv_no_leaks: None) -> None:
    """Twenty trickling clients are all cut, their threads end, and a good client is served."""

    server = _echo_server(threaded(), max_connections=30, read_timeout=0.3)
    before = Resources.now()

    def slowloris(_i: int) -> None:
        with connect(server.address) as client:
            client.sendall(b"GET / HTTP/1.1\r\n")  # a line, then a trickle with no end
            assert recv_exactly(client, 16) == b"GET / HTTP/1.1\r\n"
            with pytest.raises((BrokenPipeError, ConnectionResetError)):
                for _ in range(200):
                    client.sendall(b"X-a: b")
                    time.sleep(0.02)  # the slowloris's pace

    with serving(server):
        run_clients(20, slowloris)
        wait_until(lambda: server.active_requests == 0, "every slowloris request to end")
        # Their threads wait keep_idle (1 s) for another request, then end.
        wait_until(
            lambda: {t.name for t in Resources.now().new_since(before).threads} <= {SERVING_THREAD},
            "every slowloris thread to end",
        )
        with connect(server.address) as good:
            good.sendall(b"bye\n")
            assert recv_exactly(good, 4) == b"bye\n"


def test_a_slow_but_timely_client_is_served(composerv_no_leaks: None) -> None:

    server = _echo_server(threaded(), idle_timeout=1.0, read_timeout=1.0)
    with serving(server), connect(server.address) as client:
        for part in (b"sl", b"ow ", b"line\n"):
            client.sendall(part)
            time.sleep(0.1)  # a slow client, well within read_timeout
        assert recv_exactly(client, 10) == b"slow line\n"
        client.sendall(b"bye\n")
        assert recv_exactly(client, 4) == b"bye\n"


@pytest.mark.parametrize("concurrency", CONCURRENCIES)
def test_slow_reader_is_cut_off_by_write_timeout(
    concurrency: Any, composerv_no_leaks: None
) -> None:
    """A client that never reads a big reply holds its handler only for write_timeout."""

    def flood(conn: Connection) -> None:
        if conn.readline() == b"flood\n":
            conn.send_all(b"x" * 64 * 1024 * 1024)
        else:
            conn.send_all(b"ok\n")

    server = serve(
        tcp(("127.0.0.1", 0)),
        concurrency(),
        stream_handler(flood),
        limits=limits(write_timeout=0.3),
    )
    with serving(server), connect(server.address) as slow:
        slow.sendall(b"flood\n")
        assert slow.recv(1) == b"x"  # the handler is writing
        started = time.monotonic()
        slow.sendall(b"unread")  # the server's close is then a reset, seen at once
        # under sync the good client is served only once the slow one is cut
        with connect(server.address) as good:
            good.sendall(b"hi\n")
            assert recv_exactly(good, 3) == b"ok\n"
        wait_reset(slow)
        assert_took(started, 0.3, "cutting a reader that stopped reading")


def test_connection_made_by_hand_has_no_limits() -> None:
    """Outside a server, a Connection leaves the socket's own timeout alone."""
    left, right = socket.socketpair()
    with left, right:
        left.settimeout(7.0)
        conn = Connection(left, "")
        right.sendall(b"line\n")
        assert conn.readline() == b"line\n"
        conn.send_all(b"back")
        assert left.gettimeout() == 7.0
        conn.close()


def test_a_handler_on_the_raw_socket_gets_the_idle_timeout(composerv_no_leaks: None) -> None:
    """A handler that bypasses Connection still cannot wait forever on a silent client."""

    class RawEcho(Handler[socket.socket]):
        kind = "stream"

        def handle(self, request: socket.socket, peer: Any) -> None:
            while data := request.recv(4096):
                request.sendall(data)

    server = serve(tcp(("127.0.0.1", 0)), threaded(), RawEcho(), limits=limits(idle_timeout=0.3))
    with serving(server), connect(server.address) as client:
        client.sendall(b"raw")
        assert recv_exactly(client, 3) == b"raw"
        started = time.monotonic()
        assert client.recv(1) == b""
        assert_took(started, 0.3, "closing an idle raw-socket handler's connection")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kernel timeouts are Linux's")
@pytest.mark.parametrize("kind", ["tcp", "unix"])
def test_connections_start_with_the_idle_and_write_timeouts(
    kind: str, unix_path: str, composerv_no_leaks: None
) -> None:
    """TCP connections inherit them from the listener, which the server sets once;
    unix ones, which inherit nothing, get them as they start."""
    seen: list[tuple[int, ...]] = []

    class Report(Handler[socket.socket]):
        kind = "stream"

        def handle(self, request: socket.socket, peer: Any) -> None:
            for option in (socket.SO_RCVTIMEO, socket.SO_SNDTIMEO):
                seen.append(struct.unpack("@ll", request.getsockopt(socket.SOL_SOCKET, option, 16)))
            request.sendall(b"ok")

    transport = tcp(("127.0.0.1", 0)) if kind == "tcp" else unix_stream(unix_path)
    server = serve(
        transport, threaded(), Report(), limits=limits(idle_timeout=7.0, write_timeout=9.0)
    )
    with serving(server):
        for _ in range(2):
            with connect(server.address) as client:
                assert recv_exactly(client, 2) == b"ok"
    assert seen == [(7, 0), (9, 0)] * 2


@pytest.mark.parametrize("kernel", [True, False], ids=["kernel-timeouts", "settimeout"])
def test_both_ways_of_enforcing_timeouts_cut_idle_and_slow_clients(
    kernel: bool, monkeypatch: pytest.MonkeyPatch, composerv_no_leaks: None
) -> None:
    """Linux uses SO_RCVTIMEO/SO_SNDTIMEO; other platforms settimeout(): same limits."""
    monkeypatch.setattr(composerv._context, "KERNEL_TIMEOUTS", kernel)

    def flood(conn: Connection) -> None:
        if conn.readline() == b"flood\n":
            conn.send_all(b"x" * 64 * 1024 * 1024)

    server = serve(
        tcp(("127.0.0.1", 0)),
        threaded(),
        stream_handler(flood),
        limits=limits(idle_timeout=0.3, write_timeout=0.3),
    )
    with serving(server):
        with connect(server.address) as idle:
            started = time.monotonic()
            assert idle.recv(1) == b""
            assert_took(started, 0.3, "closing an idle connection")
        with connect(server.address) as slow:
            slow.sendall(b"flood\n")
            assert slow.recv(1) == b"x"  # the handler is writing
            started = time.monotonic()
            slow.sendall(b"unread")
            wait_reset(slow)
            assert_took(started, 0.3, "cutting a reader that stopped reading")


def test_a_connection_on_another_socket_inside_a_handler_has_no_limits(
    composerv_no_leaks: None,
) -> None:
    """Only the request's own socket gets the request's limits."""
    seen: list[object] = []

    def open_side_channel(conn: Connection) -> None:
        left, right = socket.socketpair()
        with left, right:
            left.settimeout(7.0)
            side = Connection(left, "")
            right.sendall(b"x\n")
            side.readline()
            seen.append(left.gettimeout())
            seen.append(side.context.limits.idle_timeout)
            side.close()
        conn.send_all(b"ok\n")

    server = serve(tcp(("127.0.0.1", 0)), threaded(), stream_handler(open_side_channel))
    with serving(server), connect(server.address) as client:
        assert recv_exactly(client, 3) == b"ok\n"
    assert seen == [7.0, None]


def test_a_pause_mid_read_longer_than_idle_timeout_is_the_read_timeouts_business(
    composerv_no_leaks: None,
) -> None:
    """Once a request has begun, only read_timeout bounds it, however short idle_timeout is."""
    server = _echo_server(threaded(), idle_timeout=0.2, read_timeout=3.0)
    with serving(server), connect(server.address) as client:
        client.sendall(b"first line\nsecond ")
        assert recv_exactly(client, 11) == b"first line\n"
        time.sleep(0.6)  # the pause under test: three idle timeouts, mid-line
        client.sendall(b"half\n")
        assert recv_exactly(client, 12) == b"second half\n"
