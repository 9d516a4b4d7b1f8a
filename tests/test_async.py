"""async_stream_handler: asyncio code served on asyncio_loop(), or per connection elsewhere."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest

from composerv import (
    ConfigurationError,
    HandlerMismatchError,
    async_stream_handler,
    asyncio_loop,
    message_handler,
    pooled,
    serve,
    tcp,
    threaded,
    unix_stream,
)

from .support import DEADLINE, connect, recv_exactly, recv_until_eof, serving, wait_until


async def echo_lines(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while line := await reader.readline():
        writer.write(line.upper())
        await writer.drain()


CONCURRENCIES: dict[str, Callable[[], Any]] = {
    "asyncio_loop": asyncio_loop,
    "threaded": threaded,
    "pooled": pooled,
}
if importlib.util.find_spec("uvloop") is not None:
    CONCURRENCIES["uvloop"] = lambda: asyncio_loop(uvloop=True)


@pytest.mark.parametrize("make_concurrency", CONCURRENCIES.values(), ids=list(CONCURRENCIES))
def test_echo(
    make_concurrency: Callable[[], Any], unix_path: str, composerv_no_leaks: None
) -> None:
    server = serve(unix_stream(unix_path), make_concurrency(), async_stream_handler(echo_lines))
    with serving(server):
        clients = [connect(server.address) for _ in range(5)]
        try:
            for number, client in enumerate(clients):
                client.sendall(b"line %d\n" % number)
            for number, client in enumerate(clients):
                assert recv_exactly(client, len(b"line %d\n" % number)) == b"LINE %d\n" % number
        finally:
            for client in clients:
                client.close()


def test_connections_share_the_server_thread(composerv_no_leaks: None) -> None:
    threads: set[str] = set()

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        threads.add(threading.current_thread().name)
        writer.write(await reader.readline())
        await writer.drain()

    server = serve(tcp(("127.0.0.1", 0)), asyncio_loop(), async_stream_handler(record))
    with serving(server):
        for _ in range(3):
            with connect(server.address) as client:
                client.sendall(b"x\n")
                assert recv_until_eof(client) == b"x\n"
    assert threads == {"composerv-testing-serve-forever"}


def test_an_exception_is_logged_and_closes_only_its_connection(
    caplog: pytest.LogCaptureFixture, composerv_no_leaks: None
) -> None:
    async def fail(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if await reader.readline() == b"boom\n":
            raise ValueError("async boom")
        writer.write(b"fine\n")

    server = serve(tcp(("127.0.0.1", 0)), asyncio_loop(), async_stream_handler(fail))
    with serving(server):
        with connect(server.address) as bad:
            bad.sendall(b"boom\n")
            assert recv_until_eof(bad) == b""
        with connect(server.address) as good:
            good.sendall(b"hello\n")
            assert recv_until_eof(good) == b"fine\n"
    assert any("async boom" in (r.exc_text or "") for r in caplog.records)


def test_server_close_cancels_open_connections(composerv_no_leaks: None) -> None:
    server = serve(tcp(("127.0.0.1", 0)), asyncio_loop(), async_stream_handler(echo_lines))
    with connect(server.address) as client:
        with serving(server):
            client.sendall(b"a\n")
            assert recv_exactly(client, 2) == b"A\n"
            wait_until(lambda: server.active_requests == 1, "one open connection")
        assert recv_until_eof(client) == b""


def test_handle_request_serves_one_connection(composerv_no_leaks: None) -> None:
    server = serve(tcp(("127.0.0.1", 0)), asyncio_loop(), async_stream_handler(echo_lines))
    with server, connect(server.address) as client:
        client.sendall(b"once\n")
        client.shutdown(1)
        server.handle_request(DEADLINE)
        assert recv_until_eof(client) == b"ONCE\n"
        server.handle_request(0.01)  # times out quietly


def test_only_async_handlers_run_on_asyncio_loop() -> None:
    with pytest.raises(HandlerMismatchError, match=r"asyncio_loop\(\) serves only"):
        serve(tcp(("127.0.0.1", 0)), asyncio_loop(), message_handler(bytes.upper))  # type: ignore[call-overload]


def test_uvloop_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes the import system report the package as absent.
    monkeypatch.setitem(sys.modules, "uvloop", None)
    with pytest.raises(ConfigurationError, match="needs the uvloop package"):
        asyncio_loop(uvloop=True)


def test_the_reader_limit_is_validated() -> None:
    with pytest.raises(ConfigurationError, match="limit must be a positive int, not 0"):
        async_stream_handler(echo_lines, limit=0)


@pytest.mark.parametrize(
    ("limit", "longest"), [(None, 1 << 16), (100, 100)], ids=["default-64KiB", "limit-100"]
)
@pytest.mark.parametrize("make_concurrency", CONCURRENCIES.values(), ids=list(CONCURRENCIES))
def test_the_reader_limit_bounds_readline(
    make_concurrency: Callable[[], Any], limit: int | None, longest: int, composerv_no_leaks: None
) -> None:
    """A line up to the limit is read; a longer one fails the coroutine's readline,
    which closes only that connection."""
    handler = async_stream_handler(echo_lines, **({} if limit is None else {"limit": limit}))
    server = serve(tcp(("127.0.0.1", 0)), make_concurrency(), handler)
    fits = b"a" * (longest - 1) + b"\n"
    with serving(server), connect(server.address) as good, connect(server.address) as bad:
        good.sendall(fits)
        assert recv_exactly(good, len(fits)) == fits.upper()
        bad.sendall(b"b" * (longest + 1) + b"\n")
        assert recv_until_eof(bad) == b""
        good.sendall(b"still\n")
        assert recv_exactly(good, 6) == b"STILL\n"
