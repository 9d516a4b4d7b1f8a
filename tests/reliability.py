"""What the reliability tests (stress, faults, limits, timeouts, drain) share.

Every such test runs over `CONCURRENCIES`: adding a strategy to the suite is one
line here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from composerv import Connection, forking, pooled, sync, tcp, threaded, unix_stream

from .support import (
    DEADLINE,
    assert_closed_by_peer,
    assert_took,
    connect,
    recv_exactly,
    wait_closed_while_trickling,
)

CONCURRENCIES = [
    pytest.param(sync, id="sync"),
    pytest.param(threaded, id="threaded"),
    pytest.param(pooled, id="pooled"),
    pytest.param(forking, id="forking"),
]
"""Every blocking concurrency, as factories taking no arguments."""

IN_PROCESS = [p for p in CONCURRENCIES if p.id != "forking"]
"""Strategies whose handlers run in this process, so their logs reach caplog."""

STREAM_TRANSPORTS = [
    pytest.param(lambda _path: tcp(("127.0.0.1", 0)), id="tcp"),
    pytest.param(unix_stream, id="unix"),
]
"""Stream transports, as factories taking a unix socket path."""


def echo_lines(conn: Connection) -> None:
    """Echo each line until the client sends b"bye\\n" (no EOF needed: forking-safe)."""
    while line := conn.readline():
        conn.send_all(line)
        if line == b"bye\n":
            return


def run_clients(count: int, client: Callable[[int], Any]) -> list[Any]:
    """Run ``client(i)`` for i in range(count) in threads at once; re-raise the first failure."""
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = client(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(i,), name=f"test-client-{i}") for i in range(count)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)
    assert not any(t.is_alive() for t in threads), "a client did not finish in time"
    if errors:
        raise errors[0]
    return results


def idle_client_is_closed(address: Any, idle_timeout: float) -> int:
    """One echoed line, then silence: check the server closes the connection
    `idle_timeout` after the echo (see `assert_took`) and still serves a new client;
    return the idle client's port."""
    with connect(address) as client:
        client.sendall(b"one\n")
        assert recv_exactly(client, 4) == b"one\n"
        started = time.monotonic()
        assert assert_closed_by_peer(client) == b"", "the idle connection is closed"
        assert_took(started, idle_timeout, "closing an idle connection")
        port: int = client.getsockname()[1]
    with connect(address) as client:
        client.sendall(b"still serving\n")
        assert recv_exactly(client, 14) == b"still serving\n"
    return port


def slowloris_is_cut(address: Any, read_timeout: float) -> None:
    """Send a byte every 50 ms, never a whole line: check the server cuts the client
    `read_timeout` after its first byte, and never answers the partial line."""
    with connect(address) as client:
        started = time.monotonic()
        wait_closed_while_trickling(client, b"x", 0.05)
        assert_took(started, read_timeout, "cutting a slowloris")
