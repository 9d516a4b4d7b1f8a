"""`serve()`: three values become a running server, once they are checked to fit."""

from __future__ import annotations

import socket
from typing import Any, overload

from ._concurrency import AsyncioLoop, BlockingConcurrency, Evented, Workers
from ._datagram import Datagram
from ._errors import ConfigurationTypeError, HandlerMismatchError
from ._handlers import AsyncStreamHandler, MessageHandler
from ._limits import Limits
from ._runtime import Concurrency, Handler
from ._server import Server
from ._transports import Transport
from ._transports._base import A

__all__ = ["serve"]


@overload
def serve(
    transport: Transport[socket.socket, A],
    concurrency: BlockingConcurrency | Workers[BlockingConcurrency],
    handler: Handler[socket.socket],
    *,
    limits: Limits | None = None,
) -> Server[socket.socket, A]: ...


@overload
def serve(
    transport: Transport[Datagram, A],
    concurrency: BlockingConcurrency | Workers[BlockingConcurrency],
    handler: Handler[Datagram],
    *,
    limits: Limits | None = None,
) -> Server[Datagram, A]: ...


@overload
def serve(
    transport: Transport[socket.socket, A],
    concurrency: Evented | Workers[Evented],
    handler: MessageHandler[socket.socket],
    *,
    limits: Limits | None = None,
) -> Server[socket.socket, A]: ...


@overload
def serve(
    transport: Transport[Datagram, A],
    concurrency: Evented | Workers[Evented],
    handler: MessageHandler[Datagram],
    *,
    limits: Limits | None = None,
) -> Server[Datagram, A]: ...


@overload
def serve(
    transport: Transport[socket.socket, A],
    concurrency: AsyncioLoop | Workers[AsyncioLoop],
    handler: AsyncStreamHandler,
    *,
    limits: Limits | None = None,
) -> Server[socket.socket, A]: ...


def serve(
    transport: Transport[Any, Any],
    concurrency: Concurrency,
    handler: Handler[Any],
    *,
    limits: Limits | None = None,
) -> Server[Any, Any]:
    """Make a server from a transport, a concurrency and a handler, bound and listening.

    The three must fit. The pairings (each also under ``workers(n, ...)``):

    - a stream transport (`tcp`, `unix_stream`, `tls`), a blocking concurrency
      (`sync`, `threaded`, `pooled`, `forking`) and any stream handler
      (`stream_handler`, `message_handler`, `request_handler`, `async_stream_handler`);
    - a datagram transport (`udp`, `unix_datagram`), a blocking concurrency and any
      datagram handler (`datagram_handler`, ``message_handler(fn, datagrams())``,
      ``request_handler(cls, kind="datagram")``);
    - either kind of transport, `evented` and a `message_handler` of that kind;
    - a stream transport, `asyncio_loop` and an `async_stream_handler`.

    mypy and pyright report a mismatch; at run time it is a `HandlerMismatchError`
    that says what to use instead.

    `limits` (see `limits`) bounds connections, timeouts and the drain on close;
    without it the defaults of `limits()` apply.

    Example::

        server = serve(tcp(("127.0.0.1", 8000)), threaded(), stream_handler(echo))
    """
    _check_kind("transport", transport, Transport, "tcp(...), udp(...), unix_stream(...)")
    _check_kind("concurrency", concurrency, Concurrency, "sync(), threaded(), evented()")
    _check_kind("handler", handler, Handler, "stream_handler(fn), message_handler(fn)")
    if handler.kind != transport.kind:
        wanted = "stream_handler(fn)" if transport.kind == "stream" else "datagram_handler(fn)"
        other = "tcp() or unix_stream()" if handler.kind == "stream" else "udp() or unix_datagram()"
        raise HandlerMismatchError(
            f"a {handler.kind} handler cannot serve the {transport.kind} transport "
            f"{transport!r}: use {wanted} with this transport, or a {handler.kind} "
            f"transport such as {other}"
        )
    if limits is not None:
        _check_kind("limits", limits, Limits, "limits(idle_timeout=5.0)")
    concurrency.check(transport, handler)
    return Server(transport, concurrency, handler, limits)


def _check_kind(name: str, value: object, expected: type, examples: str) -> None:
    if not isinstance(value, expected):
        raise ConfigurationTypeError(
            f"{name} must be a {expected.__name__} value such as {examples}, "
            f"not {type(value).__name__} {value!r}"
        )
