"""Running a handler's layers around one request, the same way in every runtime."""

from __future__ import annotations

import contextlib

from .._context import RequestContext
from ._contract import Layer
from ._outcome import log_outcome

__all__ = ["admit", "finish", "refuse_connection"]


def admit(layers: tuple[Layer, ...], context: RequestContext) -> None:
    """Each layer's `Layer.admit`, outermost first; raises `RefusedError` from the first
    that refuses. Only the layers that admitted hear `finish`."""
    for layer in layers:
        layer.admit(context)
        context.admitted += 1


def finish(layers: tuple[Layer, ...], context: RequestContext, error: BaseException | None) -> None:
    """The request is over: it leaves the hub, and each layer hears how it ended,
    innermost first (a layer that fails is logged; the others still hear)."""
    if context.outlet is not None and context.hub is not None:
        context.hub.exit(context.outlet)
    for layer in reversed(layers[: context.admitted]):
        try:
            layer.finish(context, error)
        except Exception as failure:
            log_outcome(context.peer, failure)


def refuse_connection(context: RequestContext, reply: bytes | None) -> None:
    """Send a refusing layer's `reply`, if any, before the connection closes."""
    if reply and context.socket is not None:
        # OSError: the client is gone already; it is being closed anyway.
        with contextlib.suppress(OSError):
            context.send_now(reply)
