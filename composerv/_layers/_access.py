"""`access_log`: one log record per connection (or per message)."""

from __future__ import annotations

import logging
import time

import attrs

from .._addresses import peer_repr
from .._context import RequestContext
from .._framing import MessageFn
from .._runtime import Layer

__all__ = ["AccessLog", "access_log"]

ACCESS_LOGGER = logging.getLogger("composerv.access")
"""Where access records go by default."""


def _outcome(error: BaseException | None) -> str:
    return "ok" if error is None else type(error).__name__


@attrs.frozen
class AccessLog(Layer):
    """Logs each connection or message; build it with `access_log`."""

    logger: logging.Logger = attrs.field(default=ACCESS_LOGGER, eq=False)
    """The logger the records go to."""
    level: int = logging.INFO
    """Their level."""
    messages: bool = False
    """A record per message (of a message or session handler) instead of per connection."""

    def finish(self, context: RequestContext, error: BaseException | None) -> None:
        if not self.messages and self.logger.isEnabledFor(self.level):
            self.logger.log(
                self.level,
                "%s %.6fs in=%d out=%d %s",
                peer_repr(context.peer),
                time.monotonic() - context.opened,
                context.bytes_in,
                context.bytes_out,
                _outcome(error),
                extra={
                    "peer": context.peer,
                    "duration": time.monotonic() - context.opened,
                    "bytes_in": context.bytes_in,
                    "bytes_out": context.bytes_out,
                    "outcome": _outcome(error),
                },
            )

    def wrap(self, fn: MessageFn, context: RequestContext) -> MessageFn:
        if not self.messages:
            return fn
        log, level, peer = self.logger, self.level, peer_repr(context.peer)

        def logged(message: bytes) -> bytes | None:
            started = time.perf_counter()
            reply = fn(message)
            log.log(
                level,
                "%s %.6fs in=%d out=%d",
                peer,
                time.perf_counter() - started,
                len(message),
                0 if reply is None else len(reply),
            )
            return reply

        return logged


def access_log(
    *, logger: logging.Logger = ACCESS_LOGGER, level: int = logging.INFO, messages: bool = False
) -> AccessLog:
    """One record per connection (or datagram) through `logging`, when it ends: the
    peer, the duration, the bytes in and out, and the outcome (``ok`` or the error's
    name); the same fields are in the record's ``extra`` for structured handlers.
    With ``messages=True``, one record per message instead (message and session
    handlers): the peer, the time the handler took and the sizes.
    """
    return AccessLog(logger, level, messages)
