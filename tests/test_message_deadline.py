"""A framed message must arrive whole within ``read_timeout`` of its first byte,
however slowly it trickles in, under every concurrency (issue 16, finding 3).

Before, a `message_handler` under the blocking concurrencies restarted the clock
with each receive: a client sending a byte every 50 ms was never cut. Each
framing (`lines`, `length_prefixed`) and each framed handler kind (`message_handler`,
`session_handler`), and for `asyncio_loop` a coroutine's ``readline`` and
``readexactly``.
"""

from __future__ import annotations

import asyncio
import select
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from composerv import (
    async_stream_handler,
    asyncio_loop,
    evented,
    forking,
    length_prefixed,
    limits,
    message_handler,
    pooled,
    serve,
    session_handler,
    sync,
    tcp,
    threaded,
)

from .support import DEADLINE, connect, recv_exactly, serving

LIMIT = 0.4
"""The read_timeout under test, in seconds."""

PACE = 0.05
"""Seconds between the trickling client's bytes: each receive restarts no clock."""

CONCURRENCIES = {
    "sync": sync,
    "threaded": threaded,
    "pooled": pooled,
    "forking": forking,
    "evented": evented,
}

FRAMINGS = {
    "lines": (lambda: None, b"one\n", b"a line that never ends"),
    "length_prefixed": (
        length_prefixed,
        b"\0\0\0\3one",
        b"\0\0\1\0" + b"x" * 200,  # a 256-byte frame that never completes
    ),
}
"""A framing (None: lines), one whole message in it, and one sent too slowly."""


def _step(state: None, message: bytes) -> tuple[None, bytes]:
    return state, message


HANDLERS = {
    "message": lambda framing: message_handler(lambda m: m, framing),
    "session": lambda framing: session_handler(lambda _peer: None, _step, framing),
}


async def _echo_lines(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while line := await reader.readline():
        writer.write(line)
        await writer.drain()


async def _echo_frames(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        header = await reader.readexactly(4)
        writer.write(header + await reader.readexactly(int.from_bytes(header, "big")))
        await writer.drain()


SERVERS = [
    *(
        pytest.param(
            lambda c=concurrency, h=handler, f=framing: (c(), h(f[0]())),
            framing,
            id=f"{concurrency_id}-{handler_id}-{framing_id}",
        )
        for concurrency_id, concurrency in CONCURRENCIES.items()
        for handler_id, handler in HANDLERS.items()
        for framing_id, framing in FRAMINGS.items()
        # One framing for the session handler: the framing is the message loop's.
        if handler_id == "message" or framing_id == "lines"
    ),
    pytest.param(
        lambda: (asyncio_loop(), async_stream_handler(_echo_lines)),
        FRAMINGS["lines"],
        id="asyncio-readline",
    ),
    pytest.param(
        lambda: (asyncio_loop(), async_stream_handler(_echo_frames)),
        FRAMINGS["length_prefixed"],
        id="asyncio-readexactly",
    ),
]


def _trickle(client: socket.socket, data: bytes) -> float | None:
    """Send `data` a byte every `PACE` seconds until the server closes the
    connection; the seconds from the first byte to the close, or None if all of
    `data` went out (or `DEADLINE` passed) with the connection still open."""
    started = time.monotonic()
    for byte in data:
        if time.monotonic() - started > DEADLINE:
            break
        try:
            client.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - started
        # The pace; a close from the server wakes it at once.
        if select.select([client], [], [], PACE)[0]:
            try:
                if client.recv(1) == b"":
                    return time.monotonic() - started
            except ConnectionResetError:
                return time.monotonic() - started
    return None


@pytest.mark.parametrize(("server", "messages"), SERVERS)
def test_a_message_trickled_in_is_cut_at_read_timeout(
    server: Callable[[], tuple[Any, Any]],
    messages: tuple[Any, bytes, bytes],
    composerv_no_leaks: None,
) -> None:
    _, whole, slow = messages
    made = serve(
        tcp(("127.0.0.1", 0)),
        *server(),
        limits=limits(read_timeout=LIMIT, idle_timeout=DEADLINE, first_request_timeout=None),
    )
    with serving(made) as running:
        with connect(running.address) as client:
            # A message that arrives whole is answered as usual.
            client.sendall(whole)
            assert recv_exactly(client, len(whole)) == whole
            elapsed = _trickle(client, slow)
        assert elapsed is not None, "a message trickled in a byte at a time was never cut"
        assert elapsed >= LIMIT * 0.9  # an event loop's sweep may read its clock early
        # The server still serves others.
        with connect(running.address) as other:
            other.sendall(whole)
            assert recv_exactly(other, len(whole)) == whole
