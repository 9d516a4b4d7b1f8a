"""`connect_handler`: a blocking stream handler serving one socketpair connection."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Generator
from typing import Any, cast

from composerv import Connection, Limits, RequestContext, stream_handler
from composerv._connection import adopt_connection
from composerv.abc import Handler

from ._wait import DEFAULT_TIMEOUT, CatchingThread

__all__ = ["connect_handler"]


@contextlib.contextmanager
def connect_handler(
    handler: Handler[socket.socket] | Callable[[Connection], object],
    *,
    limits: Limits | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Generator[socket.socket, None, None]:
    """A client socket connected to `handler`, which serves the other end in a thread.

    `handler` is a stream handler value (`composerv.stream_handler`,
    `composerv.message_handler`, `composerv.request_handler`, ...) or a plain
    ``fn(connection)`` function, which is wrapped in `composerv.stream_handler`.
    Its end of a ``socket.socketpair()`` is a connection as a blocking server
    hands it over, with a `RequestContext` that keeps `limits` (default: those of
    ``composerv.limits()``, what `composerv.serve` uses), so timeouts behave as in a
    server; the peer is an unnamed unix socket (``""``). The client socket has a
    `timeout` on every operation. ::

        def greet(conn):
            conn.send_all(b"hello " + conn.readline())

        with connect_handler(greet) as client:
            client.sendall(b"you\\n")
            assert client.recv(100) == b"hello you\\n"

    When the handler returns, its end is closed, as a server does, so the client
    reads end of stream. On exit the client is closed and the handler thread is
    joined within `timeout` seconds (a handler still running is cut, by shutting
    its socket down, and the exit fails naming it); an exception the handler
    raised is raised here.
    """
    # The cast: a callable may be a Handler of another kind of request too, which
    # pyright keeps as Handler[Unknown]; the kind check below refuses it.
    value = (
        cast("Handler[Any]", handler) if isinstance(handler, Handler) else stream_handler(handler)
    )
    if value.kind != "stream":
        raise TypeError(
            f"connect_handler needs a stream handler, not {value!r}: serve a datagram "
            "handler with serving(serve(udp(...), ...))"
        )
    client, server_end = socket.socketpair()
    client.settimeout(timeout)
    context = RequestContext(None, "", Limits() if limits is None else limits)
    request = adopt_connection(server_end, context)

    def run() -> None:
        try:
            value.handle(request, context)
        finally:
            request.close()

    thread = CatchingThread(run, "composerv-testing-handler", daemon=True)
    thread.start()
    try:
        with client:
            yield client
    finally:
        thread.join(timeout)
        if thread.is_alive():
            context.cut()
            thread.join(timeout)
            raise AssertionError(
                f"{value!r} was still running {timeout}s after the client closed; cut it"
            )
        thread.raise_error()
