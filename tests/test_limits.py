"""limits(): validated values, and a connection cap that parks clients in the backlog."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
import time
from typing import Any

import attrs
import pytest

from composerv import (
    ConfigurationError,
    ConfigurationTypeError,
    Connection,
    Limits,
    async_stream_handler,
    asyncio_loop,
    evented,
    forking,
    limits,
    message_handler,
    pooled,
    serve,
    stream_handler,
    sync,
    tcp,
    threaded,
)

from .reliability import echo_lines
from .support import (
    DEADLINE,
    SERVING_THREAD,
    assert_does_not_spin,
    connect,
    recv_exactly,
    serving,
    wait_until,
)


def test_defaults_are_documented_values(composerv_no_leaks: None) -> None:
    assert limits() == Limits(
        max_connections=1024,
        idle_timeout=60.0,
        read_timeout=30.0,
        write_timeout=60.0,
        drain_timeout=10.0,
    )
    server = serve(tcp(("127.0.0.1", 0)), sync(), stream_handler(echo_lines))
    with server:
        assert server.limits == limits()


def test_none_switches_a_limit_off_and_evolve_makes_variations() -> None:
    off = limits(max_connections=None, idle_timeout=None, read_timeout=None, write_timeout=None)
    assert off.idle_timeout is None
    assert attrs.evolve(off, idle_timeout=5).idle_timeout == 5
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        off.idle_timeout = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        (
            {"max_connections": 0},
            ConfigurationError,
            "max_connections must be a positive int or None, not 0",
        ),
        (
            {"max_connections": True},
            ConfigurationTypeError,
            "max_connections must be a positive int or None, not bool True",
        ),
        (
            {"idle_timeout": -1},
            ConfigurationError,
            "idle_timeout must be a positive number of seconds or None, not -1",
        ),
        (
            {"read_timeout": "5"},
            ConfigurationTypeError,
            "read_timeout must be a positive number of seconds or None, not str '5'",
        ),
        (
            {"write_timeout": 0},
            ConfigurationError,
            "write_timeout must be a positive number of seconds or None, not 0",
        ),
        (
            {"drain_timeout": None},
            ConfigurationTypeError,
            "drain_timeout must be a number of seconds >= 0, not NoneType None",
        ),
    ],
)
def test_bad_limits_are_named(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        limits(**options)


def test_serve_rejects_limits_of_the_wrong_kind() -> None:
    with pytest.raises(TypeError, match="limits must be a Limits value"):
        serve(tcp(("127.0.0.1", 0)), sync(), stream_handler(echo_lines), limits={"idle": 1})  # type: ignore[call-overload]


def _answered(sock: socket.socket, line: bytes, wait: float) -> bool:
    """Send `line`; whether its echo comes back within `wait` seconds."""
    sock.sendall(line)
    sock.settimeout(wait)
    try:
        return recv_exactly(sock, len(line)) == line
    except TimeoutError:
        return False
    finally:
        sock.settimeout(DEADLINE)


@pytest.mark.parametrize("concurrency", [threaded, forking], ids=["threaded", "forking"])
def test_over_the_cap_clients_wait_in_the_backlog_then_are_served(
    concurrency: Any, composerv_no_leaks: None
) -> None:
    server = serve(
        tcp(("127.0.0.1", 0)),
        concurrency(),
        stream_handler(echo_lines),
        limits=limits(max_connections=2, evict_idle=False),
    )
    with serving(server, poll_interval=0.05):
        first, second = connect(server.address), connect(server.address)
        waiting = connect(server.address)  # completes in the kernel's backlog
        try:
            assert _answered(first, b"1\n", DEADLINE)
            assert _answered(second, b"2\n", DEADLINE)
            # a bounded wait for something that must NOT happen while at the cap
            assert not _answered(waiting, b"3\n", 0.3), "served beyond max_connections"
            assert server.active_requests == 2
            first.sendall(b"bye\n")
            assert recv_exactly(first, 4) == b"bye\n"
            # a slot is free: the waiting client is accepted and its line answered
            assert recv_exactly(waiting, 2) == b"3\n"
        finally:
            for sock in (first, second, waiting):
                sock.close()


async def _async_echo_lines(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while line := await reader.readline():
        writer.write(line)
        await writer.drain()


AT_THE_CAP = [
    pytest.param(threaded, lambda: stream_handler(echo_lines), id="threaded"),
    pytest.param(pooled, lambda: stream_handler(echo_lines), id="pooled"),
    pytest.param(evented, lambda: message_handler(lambda message: message), id="evented"),
    pytest.param(asyncio_loop, lambda: async_stream_handler(_async_echo_lines), id="asyncio"),
]


@pytest.mark.parametrize(("concurrency", "handler"), AT_THE_CAP)
def test_at_the_cap_the_loop_does_not_spin(
    concurrency: Any, handler: Any, composerv_no_leaks: None
) -> None:
    """At the cap the listening socket stays readable (a client waits in the
    backlog); the loop must stop watching it, not wake up for it again and again."""
    server = serve(
        tcp(("127.0.0.1", 0)), concurrency(), handler(), limits=limits(max_connections=1)
    )
    with serving(server), connect(server.address) as held, connect(server.address) as waiting:
        held.sendall(b"held\n")
        assert recv_exactly(held, 5) == b"held\n"
        waiting.sendall(b"waits\n")
        assert server.active_requests == 1
        assert_does_not_spin(SERVING_THREAD, "at the cap")
        held.close()
        assert recv_exactly(waiting, 6) == b"waits\n"


def test_handle_request_waits_for_a_free_place_at_the_cap(composerv_no_leaks: None) -> None:
    release = threading.Event()

    def hold_then_echo(conn: Connection) -> None:
        release.wait(DEADLINE)
        echo_lines(conn)

    server = serve(
        tcp(("127.0.0.1", 0)),
        threaded(),
        stream_handler(hold_then_echo),
        limits=limits(max_connections=1),
    )
    with server, connect(server.address) as first, connect(server.address) as second:
        server.handle_request(timeout=DEADLINE)  # takes the first: the cap is reached
        wait_until(lambda: server.active_requests == 1, "the first connection to be held")
        started = time.monotonic()
        server.handle_request(timeout=0.3)  # the second must wait in the backlog
        assert time.monotonic() - started >= 0.3
        assert server.active_requests == 1, "handle_request went beyond max_connections"
        release.set()
        assert _answered(first, b"1\n", DEADLINE)
        first.close()
        server.handle_request(timeout=DEADLINE)  # a place is free: takes the second
        assert _answered(second, b"2\n", DEADLINE)
        second.close()
        wait_until(lambda: server.active_requests == 0, "both connections to be served")


def test_forking_at_the_cap_serves_a_waiting_client_as_soon_as_a_child_ends(
    composerv_no_leaks: None,
) -> None:
    server = serve(
        tcp(("127.0.0.1", 0)),
        forking(),
        stream_handler(echo_lines),
        limits=limits(max_connections=1),
    )
    with serving(server, poll_interval=1.0), contextlib.ExitStack() as clients:
        held = clients.enter_context(connect(server.address))
        assert _answered(held, b"in\n", DEADLINE)
        for turn in range(3):
            waiting = clients.enter_context(connect(server.address))
            waiting.sendall(b"next\n")
            held.sendall(b"bye\n")
            assert recv_exactly(held, 4) == b"bye\n"
            started = time.monotonic()
            assert recv_exactly(waiting, 5) == b"next\n"
            assert time.monotonic() - started < 0.5, f"hand-off {turn} waited for poll_interval"
            held = waiting
