"""Idle connections cannot deny service (issue 16, finding 5).

A connection that sends nothing at all is closed at ``first_request_timeout``,
sooner than an idle keep-alive connection; at ``max_connections`` (and when every
worker of `pooled` holds a connection) the connection that has waited longest for
a new request is closed to admit a newcomer, instead of the newcomer waiting in
the backlog. Every concurrency keeps both through the shared runtime, except that
`forking` cannot see whether a child's connection is idle and evicts none.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from composerv import (
    ConfigurationError,
    ConfigurationTypeError,
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
from composerv._runtime._evict import EVICTABLE_AFTER

from .reliability import echo_lines
from .support import DEADLINE, connect, recv_exactly, serving, wait_until

FIRST = 0.3
"""The first_request_timeout under test, in seconds."""


async def async_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while line := await reader.readline():
        writer.write(line)
        await writer.drain()


ALL = {
    "sync": lambda: (sync(), stream_handler(echo_lines)),
    "threaded": lambda: (threaded(), stream_handler(echo_lines)),
    "pooled": lambda: (pooled(), stream_handler(echo_lines)),
    "forking": lambda: (forking(), stream_handler(echo_lines)),
    "evented": lambda: (evented(), message_handler(lambda m: m)),
    "asyncio": lambda: (asyncio_loop(), async_stream_handler(async_echo)),
}
"""A concurrency and an echo handler of a kind it serves, for each concurrency."""

SERVERS = [pytest.param(make, id=name) for name, make in ALL.items()]
IN_PROCESS = [p for p in SERVERS if p.id != "forking"]
"""Those whose logs reach caplog."""
EVICTING = [p for p in SERVERS if p.id not in ("sync", "forking")]
"""Those that evict: `sync` serves one connection at a time, `forking` cannot see
its children's connections."""


def make_server(server: Callable[[], tuple[Any, Any]], **kwargs: Any) -> Any:
    return serve(tcp(("127.0.0.1", 0)), *server(), limits=limits(**kwargs))


def round_trip(client: socket.socket, line: bytes) -> None:
    client.sendall(line)
    assert recv_exactly(client, len(line)) == line


def idle_in_order(oldest: socket.socket, younger: socket.socket) -> None:
    """One round trip on each, `oldest` first and clearly so: the server marks a
    connection idle when its thread comes back to read, which under load can be after
    the client has its reply and the next client its own."""
    round_trip(oldest, b"a\n")
    time.sleep(0.2)
    round_trip(younger, b"b\n")


def closed(client: socket.socket) -> bool:
    """Whether the server has closed `client` (end of stream or reset), waiting up to
    `DEADLINE` for it."""
    try:
        return client.recv(1) == b""
    except ConnectionResetError:
        return True


def still_open(client: socket.socket, seconds: float) -> bool:
    """Whether `client` is still open after `seconds`: a bounded wait for something
    that must not happen."""
    client.settimeout(seconds)
    try:
        return not closed(client)
    except TimeoutError:
        return True
    finally:
        client.settimeout(DEADLINE)


@pytest.mark.parametrize("server", SERVERS)
def test_a_client_that_sends_nothing_is_closed_at_first_request_timeout(
    server: Any, composerv_no_leaks: None
) -> None:
    with serving(make_server(server, first_request_timeout=FIRST)) as running:
        with connect(running.address) as silent:
            opened = time.monotonic()
            assert closed(silent), "a client that sent nothing is still open"
            assert time.monotonic() - opened >= FIRST * 0.9  # the sweep's clock may lead
        # An idle keep-alive client keeps idle_timeout (60 s), well past the first wait.
        with connect(running.address) as client:
            round_trip(client, b"one\n")
            assert still_open(client, 3 * FIRST)
            round_trip(client, b"two\n")


@pytest.mark.parametrize("server", IN_PROCESS)
def test_the_first_wait_is_logged_naming_its_limit(
    server: Any, caplog: pytest.LogCaptureFixture, composerv_no_leaks: None
) -> None:
    with (
        caplog.at_level(logging.INFO, logger="composerv"),
        serving(make_server(server, first_request_timeout=FIRST)) as running,
        connect(running.address) as silent,
    ):
        assert closed(silent)
        wait_until(
            lambda: any("first_request_timeout=0.3s" in r.getMessage() for r in caplog.records),
            "the first wait's timeout to be logged",
        )
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("server", [p for p in SERVERS if p.id in ("threaded", "evented")])
def test_a_shorter_idle_timeout_also_bounds_the_first_wait(
    server: Any, caplog: pytest.LogCaptureFixture, composerv_no_leaks: None
) -> None:
    with (
        caplog.at_level(logging.INFO, logger="composerv"),
        serving(make_server(server, idle_timeout=FIRST, first_request_timeout=DEADLINE)) as running,
        connect(running.address) as silent,
    ):
        assert closed(silent)
        wait_until(
            lambda: any("idle_timeout=0.3s" in r.getMessage() for r in caplog.records),
            "the idle timeout to be logged",
        )


@pytest.mark.parametrize("server", EVICTING)
def test_at_max_connections_the_longest_idle_connection_makes_room(
    server: Any, caplog: pytest.LogCaptureFixture, composerv_no_leaks: None
) -> None:
    with (
        caplog.at_level(logging.INFO, logger="composerv"),
        serving(make_server(server, max_connections=2)) as running,
        connect(running.address) as oldest,
        connect(running.address) as younger,
    ):
        idle_in_order(oldest, younger)
        port = oldest.getsockname()[1]
        with connect(running.address) as newcomer:
            round_trip(newcomer, b"c\n")  # admitted, not left in the backlog
            assert closed(oldest), "the longest-idle connection was not evicted"
            round_trip(younger, b"b again\n")
            round_trip(newcomer, b"c again\n")
    evictions = [r.getMessage() for r in caplog.records if "to admit a new" in r.getMessage()]
    assert len(evictions) == 1, evictions
    assert f"closed 127.0.0.1:{port}, idle for" in evictions[0]
    assert evictions[0].endswith("at max_connections=2")


@pytest.mark.parametrize("server", EVICTING)
def test_a_connection_in_the_middle_of_a_request_is_never_evicted(
    server: Any, composerv_no_leaks: None
) -> None:
    with (
        serving(make_server(server, max_connections=1)) as running,
        connect(running.address) as busy,
    ):
        busy.sendall(b"half a li")  # mid-request: its read has begun
        wait_until(lambda: running.active_requests == 1, "the busy connection to be served")
        with connect(running.address) as newcomer:
            newcomer.sendall(b"c\n")
            assert still_open(busy, 0.5), "a connection mid-request was evicted"
            busy.sendall(b"ne\n")
            assert recv_exactly(busy, 12) == b"half a line\n"
            busy.close()
            # Its place is free now (or it is idle and makes room): the newcomer is served.
            assert recv_exactly(newcomer, 2) == b"c\n"


@pytest.mark.parametrize("server", EVICTING)
def test_evict_idle_false_leaves_newcomers_in_the_backlog(
    server: Any, composerv_no_leaks: None
) -> None:
    with (
        serving(make_server(server, max_connections=1, evict_idle=False)) as running,
        connect(running.address) as idle,
    ):
        round_trip(idle, b"a\n")
        with connect(running.address) as newcomer:
            newcomer.sendall(b"c\n")
            assert still_open(idle, 0.5)
            idle.close()
            assert recv_exactly(newcomer, 2) == b"c\n"


def test_pooled_workers_held_by_idle_connections_make_room(composerv_no_leaks: None) -> None:
    """Below max_connections, every worker of a pool held by an idle client: the
    newcomer, queued for a worker, evicts the longest-idle one."""
    server = serve(tcp(("127.0.0.1", 0)), pooled(workers=2, queue=4), stream_handler(echo_lines))
    with (
        serving(server) as running,
        connect(running.address) as oldest,
        connect(running.address) as younger,
    ):
        idle_in_order(oldest, younger)
        with connect(running.address) as newcomer:
            round_trip(newcomer, b"c\n")
            assert closed(oldest)
            round_trip(younger, b"b again\n")


def test_a_pool_full_of_silent_connections_admits_a_newcomer_within_a_second_or_two(
    composerv_no_leaks: None,
) -> None:
    """Every worker and every place in the queue taken by clients that send nothing, and
    the server's loop holding one more: a newcomer behind them in the backlog is served
    once the silent ones have waited `EVICTABLE_AFTER`, not at first_request_timeout,
    nor at the timeout of each silent client ahead of it (a queued connection waits
    longer than any held by a worker)."""
    workers, queue = 2, 2
    server = serve(
        tcp(("127.0.0.1", 0)),
        pooled(workers=workers, queue=queue),
        stream_handler(echo_lines),
        limits=limits(first_request_timeout=DEADLINE * 2, idle_timeout=DEADLINE * 2),
    )
    with serving(server) as running, contextlib.ExitStack() as silent:
        for _ in range(workers + queue + 1):
            silent.enter_context(connect(running.address))
        wait_until(lambda: running.active_requests == workers + queue, "a full pool and queue")
        started = time.monotonic()
        with connect(running.address) as newcomer:
            round_trip(newcomer, b"c\n")
        waited = time.monotonic() - started
        assert waited < 3 * EVICTABLE_AFTER, f"the newcomer waited {waited:.1f}s"


def test_new_limits_are_validated_with_the_field_and_the_value() -> None:
    with pytest.raises(
        ConfigurationError, match=r"first_request_timeout must be a positive number .* not 0"
    ):
        limits(first_request_timeout=0)
    with pytest.raises(
        ConfigurationTypeError, match=r"first_request_timeout must be .* not str '5'"
    ):
        limits(first_request_timeout="5")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationTypeError, match="evict_idle must be True or False, not str"):
        limits(evict_idle="no")  # type: ignore[arg-type]


def test_the_first_wait_is_the_shorter_of_the_two() -> None:
    assert limits().first_wait == 10.0
    assert limits(idle_timeout=2.0).first_wait == 2.0
    assert limits(idle_timeout=None).first_wait == 10.0
    assert limits(first_request_timeout=None).first_wait == 60.0
    assert limits(first_request_timeout=None, idle_timeout=None).first_wait is None
