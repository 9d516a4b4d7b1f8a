"""`check_fit`: whether a transport, a concurrency and a handler can make a server."""

from __future__ import annotations

from typing import Any

from ._errors import ConfigurationTypeError, HandlerMismatchError
from ._runtime import Concurrency, Handler
from ._transports import Transport

__all__ = ["check_fit", "check_kind"]


def check_fit(
    transport: Transport[Any, Any], concurrency: Concurrency, handler: Handler[Any]
) -> None:
    """Raise `ConfigurationTypeError` or `HandlerMismatchError`, saying what to use
    instead, unless `handler` can serve `transport` under `concurrency`: what `serve`
    checks, and `Server.reload` before it touches a worker."""
    check_kind("transport", transport, Transport, "tcp(...), udp(...), unix_stream(...)")
    check_kind("concurrency", concurrency, Concurrency, "sync(), threaded(), evented()")
    check_kind("handler", handler, Handler, "stream_handler(fn), message_handler(fn)")
    if handler.kind != transport.kind:
        wanted = "stream_handler(fn)" if transport.kind == "stream" else "datagram_handler(fn)"
        other = "tcp() or unix_stream()" if handler.kind == "stream" else "udp() or unix_datagram()"
        raise HandlerMismatchError(
            f"a {handler.kind} handler cannot serve the {transport.kind} transport "
            f"{transport!r}: use {wanted} with this transport, or a {handler.kind} "
            f"transport such as {other}"
        )
    concurrency.check(transport, handler)


def check_kind(name: str, value: object, expected: type, examples: str) -> None:
    """Raise `ConfigurationTypeError` naming `name` unless `value` is an `expected`."""
    if not isinstance(value, expected):
        raise ConfigurationTypeError(
            f"{name} must be a {expected.__name__} value such as {examples}, "
            f"not {type(value).__name__} {value!r}"
        )
