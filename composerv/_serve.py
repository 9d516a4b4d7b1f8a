"""`serve()`: three values become a running server, once they are checked to fit."""

from __future__ import annotations

import socket
from typing import Any, overload

from ._concurrency import AsyncioLoop, BlockingConcurrency, Evented, Workers
from ._datagram import Datagram
from ._fit import check_fit, check_kind
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
    check_fit(transport, concurrency, handler)
    if limits is not None:
        check_kind("limits", limits, Limits, "limits(idle_timeout=5.0)")
    return Server(transport, concurrency, handler, limits)
