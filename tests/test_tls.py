"""tls(transport, ctx): TLS over TCP and unix streams, handshakes off the accept loop."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import signal
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from composerv import (
    ConfigurationError,
    Connection,
    async_stream_handler,
    asyncio_loop,
    evented,
    message_handler,
    serve,
    stream_handler,
    tcp,
    threaded,
    tls,
    udp,
    unix_stream,
    workers,
)
from composerv.testing import TLSContexts, tls_certificate
from composerv.types import TLS

from .cli import inet, running
from .support import (
    DEADLINE,
    assert_closed_by_peer,
    assert_took,
    connect,
    recv_exactly,
    recv_until_eof,
    serving,
    wait_until,
)


@pytest.fixture
def server_context(composerv_tls: TLSContexts) -> ssl.SSLContext:
    """Presents the test certificate of 127.0.0.1 and localhost (composerv.testing)."""
    return composerv_tls.server


@pytest.fixture
def client_context(composerv_tls: TLSContexts) -> ssl.SSLContext:
    return composerv_tls.client


def _echo(conn: Connection) -> None:
    while line := conn.readline():
        conn.send_all(line)


def _tls_echo(address: object, context: ssl.SSLContext, server_hostname: str | None) -> None:
    with context.wrap_socket(connect(address), server_hostname=server_hostname) as client:
        assert client.version() is not None
        client.sendall(b"secret\n")
        assert recv_exactly(client, 7) == b"secret\n"


async def _async_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while line := await reader.readline():
        writer.write(line)
        await writer.drain()


# A concurrency and an echo handler for it: blocking handshakes in threads, or
# asyncio's own on the event loop.
ECHO_SERVERS: dict[str, Callable[[], tuple[Any, Any]]] = {
    "threaded": lambda: (threaded(), stream_handler(_echo)),
    "asyncio": lambda: (asyncio_loop(), async_stream_handler(_async_echo)),
}
if importlib.util.find_spec("uvloop") is not None:
    ECHO_SERVERS["uvloop"] = lambda: (asyncio_loop(uvloop=True), async_stream_handler(_async_echo))


@pytest.fixture(params=list(ECHO_SERVERS.values()), ids=list(ECHO_SERVERS))
def echo_server(request: pytest.FixtureRequest) -> tuple[Any, Any]:
    return request.param()  # type: ignore[no-any-return]


@pytest.fixture
def tls_server(
    server_context: ssl.SSLContext, echo_server: tuple[Any, Any], composerv_no_leaks: None
) -> Iterator[object]:
    """A TLS echo server; it takes the leak check's baseline first and closes before
    the check runs."""
    transport = tls(tcp(("127.0.0.1", 0)), server_context, handshake_timeout=DEADLINE)
    with serving(serve(transport, *echo_server)) as server:
        yield server


def test_echo_over_tls_tcp(
    tls_server: object, client_context: ssl.SSLContext, composerv_no_leaks: None
) -> None:
    _tls_echo(tls_server.address, client_context, "127.0.0.1")  # type: ignore[attr-defined]


def test_echo_over_tls_unix(
    unix_path: str,
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    composerv_no_leaks: None,
) -> None:
    transport = tls(unix_stream(unix_path), server_context)
    with serving(serve(transport, threaded(), stream_handler(_echo))):
        _tls_echo(unix_path, client_context, "localhost")


def test_stalled_and_failed_handshakes_affect_no_other_client(
    tls_server: object,
    client_context: ssl.SSLContext,
    caplog: pytest.LogCaptureFixture,
    composerv_no_leaks: None,
) -> None:
    address = tls_server.address  # type: ignore[attr-defined]
    with connect(address) as stalled, connect(address) as garbage:
        # `stalled` never starts its handshake; `garbage` speaks plain text.
        garbage.sendall(b"GET / HTTP/1.0\r\n\r\n")
        _tls_echo(address, client_context, "127.0.0.1")
        # The server answers plain text with at most a TLS alert, then closes.
        assert b"GET" not in recv_until_eof(garbage)
        wait_until(
            lambda: any("TLS handshake with 127.0.0.1:" in r.getMessage() for r in caplog.records),
            "the failed handshake to be logged",
        )
        _tls_echo(address, client_context, "127.0.0.1")
        # The stalled client is still waiting, untouched, while others were served.
        stalled.setblocking(False)
        with pytest.raises(BlockingIOError):
            stalled.recv(1)
        failures = [r for r in caplog.records if "TLS handshake" in r.getMessage()]
        assert len(failures) == 1
        assert failures[0].levelno == logging.WARNING
        assert failures[0].exc_info is None  # one line, no traceback


def test_handshake_timeout(
    server_context: ssl.SSLContext,
    echo_server: tuple[Any, Any],
    caplog: pytest.LogCaptureFixture,
    composerv_no_leaks: None,
) -> None:
    transport = tls(tcp(("127.0.0.1", 0)), server_context, handshake_timeout=0.4)
    with (
        serving(serve(transport, *echo_server)) as server,
        connect(server.address) as stalled,
    ):
        started = time.monotonic()
        assert assert_closed_by_peer(stalled) == b""
        assert_took(started, 0.4, "closing a client that never starts its handshake")
        # The blocking handshake's socket timeout, or asyncio's own abort.
        wait_until(
            lambda: any(
                "TLS handshake with" in message
                and ("timed out" in message or "taking longer than 0.4 seconds" in message)
                for message in (r.getMessage() for r in caplog.records)
            ),
            "the timed-out handshake to be logged",
        )


def test_cli_serves_tls(
    tmp_path: Path, client_context: ssl.SSLContext, composerv_no_leaks: None
) -> None:
    cert, key = tls_certificate().write(tmp_path)
    with running(
        "run", "tests.apps.echo:handler", "--bind", "tcp://127.0.0.1:0",
        "--ssl-certfile", str(cert), "--ssl-keyfile", str(key),
    ) as cli:  # fmt: skip
        url = cli.wait_for(r"listening on (\S+) \(TLS\)").group(1)
        _tls_echo(inet(url), client_context, "127.0.0.1")
        cli.proc.send_signal(signal.SIGTERM)
        assert cli.finish() == 0


def test_validation(server_context: ssl.SSLContext) -> None:
    with pytest.raises(TypeError, match="TLS runs over streams only"):
        tls(udp(("127.0.0.1", 0)), server_context)  # type: ignore[arg-type]
    client = ssl.create_default_context()
    with pytest.raises(ConfigurationError, match="is a client context"):
        tls(tcp(("127.0.0.1", 0)), client)
    with pytest.raises(ConfigurationError, match="handshake_timeout must be a positive number"):
        tls(tcp(("127.0.0.1", 0)), server_context, handshake_timeout=0)
    assert isinstance(tls(tcp(("127.0.0.1", 0)), server_context), TLS)
    assert "SSLContext" not in repr(tls(tcp(("127.0.0.1", 0)), server_context))


async def _async_bye(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"bye\n")
    await writer.drain()


# A concurrency and a handler that sends b"bye\n" and returns.
BYE_SERVERS: dict[str, Callable[[], tuple[Any, Any]]] = {
    "threaded": lambda: (threaded(), stream_handler(lambda c: c.send_all(b"bye\n"))),
    "asyncio": lambda: (asyncio_loop(), async_stream_handler(_async_bye)),
}


@pytest.mark.parametrize("bye_server", BYE_SERVERS.values(), ids=BYE_SERVERS.keys())
def test_the_server_ends_the_stream_with_close_notify(
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    bye_server: Callable[[], tuple[Any, Any]],
    composerv_no_leaks: None,
) -> None:
    transport = tls(tcp(("127.0.0.1", 0)), server_context)
    server = serve(transport, *bye_server())
    with (
        serving(server),
        client_context.wrap_socket(
            connect(server.address), server_hostname="127.0.0.1", suppress_ragged_eofs=False
        ) as client,
    ):
        assert recv_exactly(client, 4) == b"bye\n"
        # Without close_notify this raises SSLEOFError (a ragged EOF).
        assert client.recv(16) == b""


@pytest.mark.parametrize("concurrency", [threaded(), workers(2, threaded())])
def test_async_handlers_over_tls_need_asyncio_loop(
    server_context: ssl.SSLContext, concurrency: Any
) -> None:
    """A blocking concurrency's handshake makes an ssl.SSLSocket, which asyncio refuses:
    a clear error up front, not a traceback per connection."""
    with pytest.raises(ConfigurationError, match=r"use asyncio_loop\(\)"):
        serve(
            tls(tcp(("127.0.0.1", 0)), server_context),
            concurrency,
            async_stream_handler(_async_echo),
        )


@pytest.mark.parametrize(
    "concurrency", [evented(), workers(2, evented())], ids=["evented", "evented-workers"]
)
def test_event_loops_refuse_tls_instead_of_serving_ciphertext(
    server_context: ssl.SSLContext, concurrency: Any
) -> None:
    """A loop on one thread cannot run blocking handshakes: a clear error, not garbage."""
    with pytest.raises(ConfigurationError, match=r"cannot run the blocking per-connection setup"):
        serve(tls(tcp(("127.0.0.1", 0)), server_context), concurrency, message_handler(bytes.upper))
