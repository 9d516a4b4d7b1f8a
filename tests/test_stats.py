"""`Server.stats()` under every concurrency, and `metrics_handler` scraped over loopback."""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import urllib.request
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from prometheus_client.parser import text_string_to_metric_families

from composerv import (
    Connection,
    Server,
    ServerStats,
    async_stream_handler,
    asyncio_loop,
    datagrams,
    evented,
    forking,
    limits,
    message_handler,
    metrics_handler,
    pooled,
    proxy_protocol,
    serve,
    stream_handler,
    sync,
    tcp,
    threaded,
    udp,
    workers,
)
from composerv.layers import allow_from
from composerv.types import Workers

from .cli import running
from .support import DEADLINE, connect, recv_exactly, recv_until_eof, serving, wait_until

pytestmark = pytest.mark.usefixtures("composerv_no_leaks")

LINE = b"count me\n"


def _echo(conn: Connection) -> None:
    while line := conn.readline():
        conn.send_all(line)


async def _async_echo(reader: Any, writer: Any) -> None:
    while line := await reader.readline():
        writer.write(line)
        await writer.drain()


STREAM = stream_handler(_echo)
MESSAGE = message_handler(lambda line: line)
ASYNC = async_stream_handler(_async_echo)

COMBINATIONS: dict[str, tuple[Callable[[], Any], Any]] = {
    "sync": (sync, STREAM),
    "threaded": (threaded, STREAM),
    "pooled": (pooled, STREAM),
    "forking": (forking, STREAM),
    "evented": (evented, MESSAGE),
    "asyncio": (asyncio_loop, ASYNC),
    "workers-threaded": (lambda: workers(2, threaded()), STREAM),
    "workers-evented": (lambda: workers(2, evented()), MESSAGE),
}


def _server(name: str, **options: Any) -> Server[Any]:
    concurrency, handler = COMBINATIONS[name]
    server: Server[Any] = serve(tcp(("127.0.0.1", 0)), concurrency(), handler, **options)  # type: ignore[call-overload]
    return server


EXCHANGED = 2 * len(LINE)
"""Bytes each way per connection of `_exchange`: two lines over three receives (the
second line's end comes only after the first line's reply), so that a count kept
per receive, and per receive of a line's rest, must add up."""


def _exchange(address: tuple[str, int], count: int) -> None:
    for _ in range(count):
        with connect(address) as client:
            client.sendall(LINE + LINE[:2])
            assert recv_exactly(client, len(LINE)) == LINE
            client.sendall(LINE[2:])
            assert recv_exactly(client, len(LINE)) == LINE
            # The end of stream from here, so that even a forked child (which holds a
            # copy of this test's sockets) sees the client go.
            client.shutdown(socket.SHUT_WR)
            assert recv_until_eof(client) == b""


def _settled(server: Server[Any], requests: int) -> ServerStats:
    # Under workers a worker sends its counts at least every second.
    wait_until(lambda: server.stats().requests >= requests, f"{requests} requests counted")
    wait_until(lambda: server.stats().open == 0, "every connection counted as closed")
    return server.stats()


@pytest.mark.parametrize("name", list(COMBINATIONS))
def test_requests_and_bytes_are_counted_under_every_concurrency(name: str) -> None:
    server = _server(name)
    with serving(server):
        if isinstance(server.concurrency, Workers):
            wait_until(lambda: server.active_requests == 2, "two workers")
        _exchange(server.address, 3)
        stats = _settled(server, 3)
    assert attrs.evolve(stats, drained=0, closed_idle=0, cut=0) == ServerStats(
        connections=3,
        open=0,
        requests=3,
        errors=0,
        timeouts=0,
        refused=0,
        bytes_in=3 * EXCHANGED,
        bytes_out=3 * EXCHANGED,
        drained=0,
        closed_idle=0,
        cut=0,
    )
    # After closing, the snapshot still answers, the same.
    assert server.stats().requests == 3


@pytest.mark.parametrize("name", ["threaded", "evented", "asyncio"])
def test_timeouts_are_errors_and_counted(name: str, caplog: pytest.LogCaptureFixture) -> None:
    server = _server(name, limits=limits(idle_timeout=0.2))
    with caplog.at_level(logging.CRITICAL, logger="composerv"), serving(server):
        with connect(server.address) as client:
            with contextlib.suppress(ConnectionResetError):
                recv_until_eof(client)  # the server closes the idle connection
        stats = _settled(server, 1)
    assert (stats.requests, stats.errors, stats.timeouts) == (1, 1, 1)


@pytest.mark.parametrize("name", ["threaded", "evented"])
def test_refusals_by_a_layer_and_by_the_proxy_protocol(name: str) -> None:
    concurrency, _ = COMBINATIONS[name]
    handler = message_handler(bytes.upper, layers=(allow_from("10.0.0.0/8"),))
    layered = serve(tcp(("127.0.0.1", 0)), concurrency(), handler)
    proxied = serve(
        proxy_protocol(tcp(("127.0.0.1", 0)), trusted=["10.0.0.0/8"]), concurrency(), MESSAGE
    )
    with serving(layered), serving(proxied):
        for server in (layered, proxied):
            with connect(server.address) as client:
                client.sendall(LINE)
                assert recv_until_eof(client) == b""
            wait_until(lambda s=server: s.stats().refused == 1, "the refusal counted")  # type: ignore[misc]
            stats = server.stats()
            assert (stats.connections, stats.open, stats.requests) == (1, 0, 0)


def test_datagrams_are_requests() -> None:
    server = serve(udp(("127.0.0.1", 0)), evented(), message_handler(bytes.upper, datagrams()))
    with serving(server), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(DEADLINE)
        for _ in range(2):
            client.sendto(b"ping", server.address)
            assert client.recv(100) == b"PING"
        stats = _settled(server, 2)
    assert (stats.connections, stats.bytes_in, stats.bytes_out) == (2, 8, 8)


def test_a_drain_is_counted() -> None:
    server = _server("threaded")
    with serving(server):
        with connect(server.address):
            wait_until(lambda: server.active_requests == 1, "the connection to be served")
            report = server.shutdown(drain=DEADLINE)
    assert report is not None
    stats = server.stats()
    assert (stats.closed_idle, stats.drained, stats.cut) == (1, 0, 0)


def test_the_snapshot_is_frozen() -> None:
    server = _server("threaded")
    with serving(server):
        stats = server.stats()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        stats.requests = 5  # type: ignore[misc]


# --- Prometheus -----------------------------------------------------------------------


def _scrape(address: tuple[str, int]) -> dict[str, dict[str, float]]:
    """Each metric family's samples, by listener label."""
    host, port = address[:2]
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=DEADLINE) as reply:
        assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = reply.read().decode()
    found: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[sample.labels["listener"]] = sample.value
    return found


def test_metrics_handler_serves_the_prometheus_text_format() -> None:
    app = _server("evented")
    listener = f"tcp://127.0.0.1:{app.address[1]}"
    with serving(app):
        metrics = serve(tcp(("127.0.0.1", 0)), threaded(), metrics_handler(app))
        with serving(metrics):
            _exchange(app.address, 2)
            _settled(app, 2)
            found = _scrape(metrics.address)
            with connect(metrics.address) as client:
                client.sendall(b"GET /other HTTP/1.1\r\nHost: x\r\n\r\n")
                assert recv_until_eof(client).startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert found["composerv_connections_total"] == {listener: 2.0}
    assert found["composerv_requests_total"] == {listener: 2.0}
    assert found["composerv_connections_open"] == {listener: 0.0}
    assert found["composerv_received_bytes_total"] == {listener: 2.0 * EXCHANGED}
    assert {name for name in found if name.endswith("_total")} >= {
        "composerv_errors_total",
        "composerv_timeouts_total",
        "composerv_refused_total",
        "composerv_sent_bytes_total",
        "composerv_drained_total",
        "composerv_closed_idle_total",
        "composerv_cut_total",
    }


def test_cli_metrics_sum_the_workers() -> None:
    with running(
        "run",
        "tests.apps.echo:handler",
        "--bind",
        "tcp://127.0.0.1:0",
        "--workers",
        "2",
        "--metrics",
        "127.0.0.1:0",
    ) as cli:
        address = _address(cli.wait_for(r"listening on tcp://(\S+)").group(1))
        metrics = _address(cli.wait_for(r"serving metrics on http://(\S+)/metrics").group(1))
        cli.wait_for(r"started worker")
        _exchange(address, 6)

        def counted() -> bool:
            return _scrape(metrics)["composerv_requests_total"] == {
                f"tcp://{address[0]}:{address[1]}": 6.0
            }

        wait_until(counted, "both workers' requests in the parent's metrics")
        found = _scrape(metrics)
        cli.proc.send_signal(signal.SIGTERM)
        assert cli.finish() == 0
    assert list(found["composerv_connections_total"].values()) == [6.0]


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)
