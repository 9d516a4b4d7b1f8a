"""`max_in_flight` and `on_error`: how much runs at once, and what a failing handler answers."""

from __future__ import annotations

import threading

import attrs

from .._addresses import peer_repr
from .._context import RequestContext
from .._errors import RefusedError
from .._framing import MessageFn
from .._runtime import Layer
from .._runtime._episodes import Episodes
from .._runtime._outcome import log_outcome
from .._validate import positive_int

__all__ = ["InFlightLimit", "OnError", "max_in_flight", "on_error"]


@attrs.frozen
class InFlightLimit(Layer):
    """At most `count` requests of this handler at once; build it with `max_in_flight`."""

    count: int = attrs.field(validator=positive_int)
    """How many may run at once."""
    reply: bytes | None = None
    """Sent to a client refused for it, before its connection closes."""
    _slots: threading.BoundedSemaphore = attrs.field(init=False, eq=False, repr=False)
    _full: Episodes = attrs.field(init=False, eq=False, repr=False, factory=Episodes)

    def __attrs_post_init__(self) -> None:
        # A mutable part of an immutable value: each layer counts its own requests.
        object.__setattr__(self, "_slots", threading.BoundedSemaphore(self.count))

    def admit(self, context: RequestContext) -> None:
        if not self._slots.acquire(blocking=False):
            self._full.occurred(
                None, "refused %s: %d requests in flight", peer_repr(context.peer), self.count
            )
            raise RefusedError(f"{self.count} requests in flight", self.reply)

    def finish(self, context: RequestContext, error: BaseException | None) -> None:
        self._slots.release()


def max_in_flight(count: int, *, reply: bytes | None = None) -> InFlightLimit:
    """At most `count` connections (or datagrams) served by this handler at once, over
    all its clients: one more is refused at once (after `reply`, if given) rather than
    waiting, and logged once per episode. For handlers that block on something
    scarce (a database pool), below the server's own ``max_connections``."""
    return InFlightLimit(count, reply)


@attrs.frozen
class OnError(Layer):
    """What a message handler's client gets when its function raises; build it with
    `on_error`."""

    reply: bytes | None
    """The reply instead (None: no reply); the connection stays open."""

    def wrap(self, fn: MessageFn, context: RequestContext) -> MessageFn:
        reply = self.reply

        def answering(message: bytes) -> bytes | None:
            try:
                return fn(message)
            except Exception as error:
                log_outcome(context.peer, error)
                return reply

        return answering


def on_error(reply: bytes | None) -> OnError:
    """When a message or session handler's function raises, log the error (with its
    traceback) and answer that message with `reply` (None: nothing), keeping the
    connection open, instead of closing it."""
    return OnError(reply)
