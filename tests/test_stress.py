"""Many clients at once over every concurrency and stream transport: every byte verified."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from composerv import (
    Connection,
    async_stream_handler,
    asyncio_loop,
    evented,
    limits,
    lines,
    message_handler,
    serve,
    stream_handler,
    tcp,
)

from .reliability import CONCURRENCIES, STREAM_TRANSPORTS, echo_lines, run_clients
from .support import connect, recv_exactly, serving

CLIENTS = 64
MESSAGES = 50


def chatty_client(address: Any, i: int) -> int:
    """Send MESSAGES lines of random sizes and check each echo, then b"bye\n"."""
    rng = random.Random(i)
    sent = 0
    with connect(address) as sock:
        for n in range(MESSAGES):
            # sizes from tiny to larger than one 64 KiB recv, so lines span reads
            size = 70000 if n % 10 == 0 else rng.choice((1, 17, 1000))
            body = rng.randbytes(size).replace(b"\n", b"!")
            line = b"%d:%d:%s\n" % (i, n, body)
            sock.sendall(line)
            assert recv_exactly(sock, len(line)) == line
            sent += len(line)
        sock.sendall(b"bye\n")
        assert recv_exactly(sock, 4) == b"bye\n"
    return sent


def echo_long_lines(conn: Connection) -> None:
    """`echo_lines` for lines past readline's default 64 KiB limit."""
    while line := conn.readline(1 << 20):
        conn.send_all(line)
        if line == b"bye\n":
            return


def run_chatty_clients(server: Any) -> None:
    with serving(server):
        totals = run_clients(CLIENTS, lambda i: chatty_client(server.address, i))
    assert all(total > MESSAGES for total in totals)
    assert server.drain_report is not None and server.drain_report.cut == 0


@pytest.mark.parametrize("concurrency", CONCURRENCIES)
@pytest.mark.parametrize("transport", STREAM_TRANSPORTS)
def test_many_clients_every_byte_echoed(
    transport: Any, concurrency: Any, unix_path: str, composerv_no_leaks: None
) -> None:
    run_chatty_clients(serve(transport(unix_path), concurrency(), stream_handler(echo_long_lines)))


def identity(message: bytes) -> bytes:
    return message


async def echo_lines_async(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while line := await reader.readline():
        writer.write(line)
        await writer.drain()


@pytest.mark.parametrize("transport", STREAM_TRANSPORTS)
def test_many_clients_every_byte_echoed_on_evented(
    transport: Any, unix_path: str, composerv_no_leaks: None
) -> None:
    handler = message_handler(identity, lines(max_size=1 << 20))
    run_chatty_clients(serve(transport(unix_path), evented(), handler))


@pytest.mark.parametrize("transport", STREAM_TRANSPORTS)
def test_many_clients_every_byte_echoed_on_asyncio(
    transport: Any, unix_path: str, composerv_no_leaks: None
) -> None:
    # Lines longer than asyncio's 64 KiB default: the handler raises the limit.
    handler = async_stream_handler(echo_lines_async, limit=1 << 20)
    run_chatty_clients(serve(transport(unix_path), asyncio_loop(), handler))


@pytest.mark.parametrize("concurrency", CONCURRENCIES)
def test_connection_cap_under_load_loses_nothing(
    concurrency: Any, composerv_no_leaks: None
) -> None:
    """64 clients against a cap of 4: the rest wait in the backlog and are all served."""
    server = serve(
        tcp(("127.0.0.1", 0)),
        concurrency(),
        stream_handler(echo_lines),
        limits=limits(max_connections=4),
    )
    peak: list[int] = []

    def client(i: int) -> None:
        with connect(server.address) as sock:
            for n in range(5):
                line = b"%d-%d\n" % (i, n)
                sock.sendall(line)
                assert recv_exactly(sock, len(line)) == line
                peak.append(server.active_requests)
            sock.sendall(b"bye\n")
            assert recv_exactly(sock, 4) == b"bye\n"

    with serving(server, poll_interval=0.05):
        run_clients(CLIENTS, client)
    assert max(peak) <= 4
