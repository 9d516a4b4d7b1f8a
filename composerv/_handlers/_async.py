"""`async_stream_handler`: a coroutine function that owns one connection as asyncio streams."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, ClassVar, Literal, SupportsIndex

import attrs

from .._addresses import Address
from .._context import RequestContext
from .._errors import ConfigurationTypeError
from .._runtime import AsyncForm, Handler, Layer
from .._transports._proxy import relayed_by
from .._transports._tls import TLS, log_failed_handshake
from .._validate import positive_int
from ._layering import layers_field

__all__ = [
    "AsyncStreamFn",
    "AsyncStreamHandler",
    "CountingReader",
    "ServerWriter",
    "async_stream_handler",
    "serve_with_streams",
]

DEFAULT_LIMIT = 1 << 16
"""asyncio's own default for a stream reader's buffer."""

AsyncStreamFn = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[object]]
"""``async def fn(reader, writer)``, as for `asyncio.start_server`."""


# asyncio has no "never" for a handshake timeout: a year stands for it.
_NO_HANDSHAKE_TIMEOUT = 365 * 86400.0


# TLS's close_notify goes out at once, and asyncio then waits for the peer's own
# (30 s by default): a peer that has not answered within a second is cut, so a
# silent client cannot hold its connection past a timeout or a drain. (The blocking
# concurrencies do not wait for the answer at all.)
_CLOSE_GRACE = 1.0


class CountingReader(asyncio.StreamReader):
    """A stream reader that counts the bytes the connection brought."""

    def __init__(self, limit: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=limit, loop=loop)
        self.received = 0
        """Bytes received so far."""

    def feed_data(self, data: Iterable[SupportsIndex]) -> None:
        self.received += len(data)  # type: ignore[arg-type]  # bytes, as the protocol feeds it
        super().feed_data(data)


class _ContextReader(asyncio.StreamReader):
    """The reader of a connection served on an event loop of its own: it tells the
    request's context when it waits and what it receives, so that a drain and
    eviction see an idle connection as they see one a blocking handler reads."""

    def __init__(
        self, limit: int, loop: asyncio.AbstractEventLoop, context: RequestContext
    ) -> None:
        super().__init__(limit=limit, loop=loop)
        self._context = context

    def feed_data(self, data: Iterable[SupportsIndex]) -> None:
        self._context.received_elsewhere(len(data))  # type: ignore[arg-type]  # bytes, as the protocol feeds it
        super().feed_data(data)

    async def _wait_for_data(self, func_name: str) -> None:
        # Every read of a StreamReader that lacks data waits here (CPython 3.4+).
        self._context.waits_elsewhere(idle=not self._buffer)  # type: ignore[attr-defined]  # StreamReader's buffer, since 3.4
        try:
            await super()._wait_for_data(func_name)  # type: ignore[misc]  # a private hook
        finally:
            self._context.waits_elsewhere(idle=False)


class ServerWriter(asyncio.StreamWriter):
    """The writer a handler gets: it counts what is written and, behind a proxy, its
    extra info describes the client the proxy relays."""

    def __init__(
        self,
        transport: asyncio.WriteTransport,
        protocol: asyncio.BaseProtocol,
        reader: asyncio.StreamReader | None,
        loop: asyncio.AbstractEventLoop,
        extra: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(transport, protocol, reader, loop)
        self._extra = extra or {}
        self.sent = 0
        """Bytes written so far."""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.sent += len(data)
        super().write(data)

    def writelines(self, data: Iterable[bytes | bytearray | memoryview]) -> None:
        for chunk in data:
            self.write(chunk)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name in self._extra:
            return self._extra[name]
        return super().get_extra_info(name, default)


async def serve_with_streams(
    form: AsyncForm,
    sock: socket.socket,
    peer: Address,
    tls: TLS | None = None,
    *,
    reader: Callable[[int, asyncio.AbstractEventLoop], asyncio.StreamReader] = CountingReader,
    opened: Callable[[asyncio.Transport, ServerWriter], None] | None = None,
    extra: Mapping[str, object] | None = None,
    closed_by_server: Callable[[], bool] = lambda: False,
) -> None:
    """Run the handler's function on asyncio streams over the connected `sock`, then
    close the streams. Over `tls`, asyncio first runs the server side of the
    handshake, within the transport's ``handshake_timeout``; a failed one is logged
    (see `log_failed_handshake`) and the handler does not run. `reader` makes the
    stream reader; `opened` is told the transport and the writer once they exist. `extra` overrides
    what ``writer.get_extra_info`` answers (behind a proxy: the client's peername).
    `closed_by_server`: whether the server ended the connection while it waited for
    a request, with nothing left to send (a drain, an eviction): its close then sends
    TLS's close_notify and does not wait for the peer's.

    Must run on the event loop that is to own `sock`.
    """
    loop = asyncio.get_running_loop()
    stream_reader = reader(form.limit, loop)
    protocol = asyncio.StreamReaderProtocol(stream_reader, loop=loop)
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
    writer = ServerWriter(transport, protocol, stream_reader, loop, extra)
    if opened is not None:
        opened(transport, writer)
    try:
        await form.fn(stream_reader, writer)
    finally:
        writer.close()
        # The close_notify of a connection the server closed while idle went out as
        # the writer closed (its output was empty): waiting for the peer's answer
        # would hold the drain up to the grace.
        grace = 0.0 if closed_by_server() else _CLOSE_GRACE
        # OSError: the peer may be gone already; the stream is closed either way.
        with contextlib.suppress(OSError):
            try:
                await asyncio.wait_for(writer.wait_closed(), grace)
            except asyncio.TimeoutError:
                transport.abort()


def _coroutine_function(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not callable(value):
        raise ConfigurationTypeError(
            f"{attribute.name} must be an async function, not {type(value).__name__} {value!r}"
        )
    # An instance with an async __call__ is a coroutine function too.
    target: object = value if inspect.isroutine(value) else type(value).__call__
    if not (inspect.iscoroutinefunction(value) or inspect.iscoroutinefunction(target)):
        raise ConfigurationTypeError(
            f"{attribute.name} must be an async function (async def fn(reader, writer)), "
            f"not the plain function {value!r}: for a blocking function use stream_handler(fn)"
        )


@attrs.frozen
class AsyncStreamHandler(Handler[socket.socket]):
    """Calls ``await fn(reader, writer)`` per connection; build it with `async_stream_handler`."""

    kind: ClassVar[Literal["stream", "datagram"]] = "stream"

    fn: AsyncStreamFn = attrs.field(validator=_coroutine_function)
    """The coroutine function serving one connection; the streams close when it returns."""
    limit: int = attrs.field(default=DEFAULT_LIMIT, validator=positive_int)
    """The reader's buffer limit: the longest line ``readline`` returns (asyncio's own
    default is 64 KiB); a longer one raises ``ValueError`` in the coroutine."""
    layers: tuple[Layer, ...] = layers_field()
    """The layers around the handler, outermost first (see `layered`)."""

    def handle(self, request: socket.socket, context: RequestContext) -> None:
        """Under a blocking concurrency, serve the connection on an event loop of its own.

        asyncio takes a plain socket and does its own reads, which tell the context
        when the connection is idle: a drain closes it then, and cuts it otherwise.
        Timeouts are the coroutine's business (``asyncio.timeout``)."""
        plain = socket.socket(request.family, request.type, request.proto, request.detach())
        context.watch(plain)
        relayed = relayed_by(context)
        writers: list[ServerWriter] = []
        try:
            asyncio.run(
                serve_with_streams(
                    self.for_asyncio(),
                    plain,
                    context.peer,
                    reader=lambda limit, loop: _ContextReader(limit, loop, context),
                    opened=lambda _transport, writer: writers.append(writer),
                    extra=None if relayed is None else relayed.extra_info(),
                )
            )
        finally:
            # asyncio wrote the socket itself: its count is the request's.
            context.bytes_out += sum(writer.sent for writer in writers)

    def for_asyncio(self) -> AsyncForm:
        return AsyncForm(self.fn, self.limit)


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
