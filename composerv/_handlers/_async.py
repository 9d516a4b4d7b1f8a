"""`async_stream_handler`: a coroutine function that owns one connection as asyncio streams."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable
from typing import ClassVar

import attrs

from .._addresses import Address
from .._transports._tls import TLS, log_failed_handshake
from .._validate import callable_value, positive_int
from ._base import Handler

__all__ = ["AsyncStreamFn", "AsyncStreamHandler", "async_stream_handler", "serve_with_streams"]

DEFAULT_LIMIT = 1 << 16
"""asyncio's own default for a stream reader's buffer."""

AsyncStreamFn = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[object]]
"""``async def fn(reader, writer)``, as for `asyncio.start_server`."""


# asyncio has no "never" for a handshake timeout: a year stands for it.
_NO_HANDSHAKE_TIMEOUT = 365 * 86400.0


async def serve_with_streams(
    handler: AsyncStreamHandler, sock: socket.socket, peer: Address, tls: TLS | None = None
) -> None:
    """Run the handler's function on asyncio streams over the connected `sock`, then
    close the streams. Over `tls`, asyncio first runs the server side of the
    handshake, within the transport's ``handshake_timeout``; a failed one is logged
    (see `log_failed_handshake`) and the handler does not run.

    Must run on the event loop that is to own `sock`.
    """
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=handler.limit, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    if tls is None:
        transport, _ = await loop.connect_accepted_socket(lambda: protocol, sock)
    else:
        timeout = tls.handshake_timeout
        try:
            transport, _ = await loop.connect_accepted_socket(
                lambda: protocol,
                sock,
                ssl=tls.context,
                ssl_handshake_timeout=_NO_HANDSHAKE_TIMEOUT if timeout is None else timeout,
            )
        except OSError as error:  # ssl.SSLError, a timeout, a reset: all OSErrors
            log_failed_handshake(peer, error)
            return
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    try:
        await handler.fn(reader, writer)
    finally:
        writer.close()
        # OSError: the peer may be gone already; the stream is closed either way.
        with contextlib.suppress(OSError):
            await writer.wait_closed()


@attrs.frozen
class AsyncStreamHandler(Handler[socket.socket]):
    """Calls ``await fn(reader, writer)`` per connection; build it with `async_stream_handler`."""

    kind: ClassVar[str] = "stream"

    fn: AsyncStreamFn = attrs.field(validator=callable_value)
    """The coroutine function serving one connection; the streams close when it returns."""
    limit: int = attrs.field(default=DEFAULT_LIMIT, validator=positive_int)
    """The reader's buffer limit: the longest line ``readline`` returns (asyncio's own
    default is 64 KiB); a longer one raises ``ValueError`` in the coroutine."""

    def handle(self, request: socket.socket, peer: Address) -> None:
        """Under a blocking concurrency, serve the connection on an event loop of its own."""
        asyncio.run(serve_with_streams(self, request, peer))


def async_stream_handler(fn: AsyncStreamFn, *, limit: int = DEFAULT_LIMIT) -> AsyncStreamHandler:
    """A handler for stream transports written with asyncio: ``async def fn(reader, writer)``.

    Under `asyncio_loop()` every connection runs on one shared event loop (uvloop
    if asked for); under a blocking concurrency each connection gets an event loop
    of its own in its thread or process. Example::

        async def echo(reader, writer):
            while line := await reader.readline():
                writer.write(line)
                await writer.drain()

        serve(tcp(("127.0.0.1", 8000)), asyncio_loop(), async_stream_handler(echo))
    """
    return AsyncStreamHandler(fn, limit)
