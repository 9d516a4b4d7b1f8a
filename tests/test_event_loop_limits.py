"""Limits and drain under the event loops: evented() and asyncio_loop() keep them too."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time

import pytest

from composerv import (
    DrainReport,
    async_stream_handler,
    asyncio_loop,
    evented,
    length_prefixed,
    limits,
    message_handler,
    serve,
    tcp,
)

from .reliability import idle_client_is_closed, slowloris_is_cut
from .support import DEADLINE, assert_took, connect, recv_exactly, serving, wait_until


def echo(message: bytes) -> bytes:
    return message


async def echo_lines(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while line := await reader.readline():
        writer.write(line)
        await writer.drain()


def start(server: object) -> threading.Thread:
    thread = threading.Thread(
        target=server.serve_forever,
        args=(0.05,),
        name="test-serve",
    )
    thread.start()
    wait_until(lambda: server.serving, "serve_forever to start")
    return thread


def test_idle_connection_is_closed_and_logged(
    caplog: pytest.LogCaptureFixture, composerv_no_leaks: None
) -> None:
    server = serve(
        tcp(("127.0.0.1", 0)), evented(), message_handler(echo), limits=limits(idle_timeout=0.3)
    )
    with caplog.at_level(logging.INFO, logger="composerv"), serving(server):
        port = idle_client_is_closed(server.address, idle_timeout=0.3)
    [record] = [r for r in caplog.records if "idle_timeout=0.3" in r.getMessage()]
    assert f"127.0.0.1:{port}" in record.getMessage()
    assert record.levelno == logging.INFO


def test_slowloris_is_cut_by_read_timeout(composerv_no_leaks: None) -> None:
    """A byte every 50 ms keeps the connection busy but never finishes a line."""
    server = serve(
        tcp(("127.0.0.1", 0)),
        evented(),
        message_handler(echo),
        limits=limits(idle_timeout=5.0, read_timeout=0.4),
    )
    with serving(server):
        slowloris_is_cut(server.address, read_timeout=0.4)


def test_a_peer_that_never_reads_is_cut_by_write_timeout(composerv_no_leaks: None) -> None:
    server = serve(
        tcp(("127.0.0.1", 0)),
        evented(),
        message_handler(echo, framing=length_prefixed(max_size=1 << 24)),
        limits=limits(write_timeout=0.3),
    )
    with serving(server), connect(server.address) as client:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        frame = (8 << 20).to_bytes(4, "big") + b"z" * (8 << 20)
        # The 8 MiB reply cannot fit in the socket buffers of a peer that does not read.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            client.sendall(frame)
        started = time.monotonic()  # the reply is stuck from here on
        wait_until(lambda: server.active_requests == 0, "the stuck connection to be cut")
        assert_took(started, 0.3, "cutting a peer that never reads")


@pytest.mark.parametrize("loop", ["evented", "asyncio"])
def test_max_connections_parks_clients_in_the_backlog(loop: str, composerv_no_leaks: None) -> None:
    limited = limits(max_connections=2, drain_timeout=0.5, evict_idle=False)
    server = (
        serve(tcp(("127.0.0.1", 0)), evented(), message_handler(echo), limits=limited)
        if loop == "evented"
        else serve(
            tcp(("127.0.0.1", 0)), asyncio_loop(), async_stream_handler(echo_lines), limits=limited
        )
    )
    with serving(server):
        first, second = connect(server.address), connect(server.address)
        try:
            for client in (first, second):
                client.sendall(b"in\n")
                assert recv_exactly(client, 3) == b"in\n"
            with connect(server.address) as third:
                third.sendall(b"waits\n")
                third.settimeout(0.3)
                with pytest.raises(TimeoutError):
                    third.recv(1)  # connected by the kernel, not served
                assert server.active_requests == 2
                first.close()
                third.settimeout(DEADLINE)
                assert recv_exactly(third, 6) == b"waits\n"
        finally:
            first.close()
            second.close()


def test_drain_closes_idle_finishes_partial_and_cuts_stuck(composerv_no_leaks: None) -> None:
    server = serve(
        tcp(("127.0.0.1", 0)),
        evented(),
        message_handler(echo),
        limits=limits(idle_timeout=None, read_timeout=None),
    )
    thread = start(server)
    idle, partial, stuck = (connect(server.address) for _ in range(3))
    try:
        for client in (idle, partial, stuck):
            client.sendall(b"hi\n")
            assert recv_exactly(client, 3) == b"hi\n"
        partial.sendall(b"half a li")
        stuck.sendall(b"never ends")
        wait_until(lambda: server.active_requests == 3, "three connections")
        reports: list[DrainReport] = []
        started = time.monotonic()
        drainer = threading.Thread(target=lambda: reports.append(server.shutdown(drain=0.4)))
        drainer.start()
        # The idle connection is closed as the drain begins: then finish the line.
        assert idle.recv(1) == b""
        partial.sendall(b"ne\n")
        drainer.join(DEADLINE)
        assert_took(started, 0.4, "a drain with a stuck request")
        assert reports == [DrainReport(finished=1, closed_idle=1, cut=1)]
        assert recv_exactly(partial, 12) == b"half a line\n", "the message read in full is served"
        for client in (partial, stuck):
            assert client.recv(1) == b""
    finally:
        for client in (idle, partial, stuck):
            client.close()
    thread.join(DEADLINE)
    assert not thread.is_alive()


def test_server_close_without_clients_is_immediate(composerv_no_leaks: None) -> None:
    server = serve(tcp(("127.0.0.1", 0)), evented(), message_handler(echo))
    thread = start(server)
    started = time.monotonic()
    server.shutdown()
    server.server_close()
    thread.join(DEADLINE)
    assert time.monotonic() - started < 1.0
    assert server.drain_report == DrainReport(finished=0, closed_idle=0, cut=0)


def test_asyncio_loop_drain_closes_idle_finishes_busy_and_cancels_stuck(
    composerv_no_leaks: None,
) -> None:
    """A coroutine waiting to read with nothing buffered is idle: the drain gives it
    end of stream, as a blocking handler's read gets; one busy elsewhere is cut."""
    finished = threading.Event()
    lines_read: list[bytes] = []

    async def slow_then_done(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await reader.readline()
        lines_read.append(line)
        if line == b"slow\n":
            await asyncio.sleep(0.3)
            writer.write(b"done\n")
            await writer.drain()
            finished.set()
        elif line == b"idle\n":
            assert await reader.read() == b""  # the drain's end of stream
        else:
            await asyncio.sleep(DEADLINE)  # not reading: only a cut ends it

    server = serve(tcp(("127.0.0.1", 0)), asyncio_loop(), async_stream_handler(slow_then_done))
    thread = start(server)
    with (
        connect(server.address) as slow,
        connect(server.address) as idle,
        connect(server.address) as stuck,
    ):
        slow.sendall(b"slow\n")
        idle.sendall(b"idle\n")
        stuck.sendall(b"stuck\n")
        # Each coroutine has its line (else one still waiting for it would be idle).
        wait_until(lambda: len(lines_read) == 3, "each coroutine to read its line")
        started = time.monotonic()
        report = server.shutdown(drain=0.5)
        assert_took(started, 0.5, "a drain with a stuck coroutine")
        assert finished.is_set()
        assert recv_exactly(slow, 5) == b"done\n"
        assert report == DrainReport(finished=1, closed_idle=1, cut=1)
        assert idle.recv(1) == b""
        assert stuck.recv(1) == b""
    thread.join(DEADLINE)
    assert not thread.is_alive()
