"""Every exception composerv raises on purpose, each a `ComposervError`.

Each also derives from the stdlib class that code already catches for the same
kind of failure: a wrong type is a `TypeError`, a wrong value a `ValueError`, a
socket-level failure an `OSError`.
"""

from __future__ import annotations

import errno

__all__ = [
    "ComposervError",
    "ConfigurationError",
    "ConfigurationTypeError",
    "DatagramTooLargeError",
    "HandlerMismatchError",
    "MessageTooLargeError",
    "PoolFullError",
    "ProxyHeaderError",
    "RefusedError",
    "SocketPathInUseError",
    "TruncatedMessageError",
]


class ComposervError(Exception):
    """Base class of every exception composerv raises on purpose."""


class ConfigurationError(ComposervError, ValueError):
    """A transport, concurrency, handler or limit was given a value it cannot use.

    The message names the option and the value, and says what would be accepted.
    """


class ConfigurationTypeError(ComposervError, TypeError):
    """An option was given a value of the wrong type (a str where a number goes).

    The message names the option, the type it got and the type it takes.
    """


class HandlerMismatchError(ConfigurationTypeError):
    """The handler cannot serve what the transport or the concurrency delivers.

    Raised by `serve()` at run time for the pairings that mypy rejects statically,
    e.g. a stream handler on a datagram transport.
    """


class SocketPathInUseError(ComposervError, OSError):
    """A live server already listens on the unix socket path we were asked to bind."""

    def __init__(self, path: str) -> None:
        super().__init__(
            errno.EADDRINUSE,
            f"another server is listening on unix socket {path!r}; stop it or choose another path",
        )
        self.path = path


class DatagramTooLargeError(ComposervError, OSError):
    """A datagram was longer than the transport's max_datagram_size and was dropped."""

    def __init__(self, peer: object, limit: int) -> None:
        super().__init__(
            f"dropped a datagram from {peer!r} longer than max_datagram_size={limit}; "
            "raise max_datagram_size on the transport to accept it"
        )
        self.peer = peer


class RefusedError(ComposervError):
    """A layer refuses a connection, a message or a datagram (see `composerv.layers`).

    The connection is closed, after `reply` is sent if there is one; a datagram is
    dropped. The layer that refuses logs why (once per episode), not the server.
    """

    def __init__(self, why: str, reply: bytes | None = None) -> None:
        super().__init__(why)
        self.reply = reply
        """Sent to the client before its connection closes (raw bytes, not framed)."""


class PoolFullError(ComposervError, RuntimeError):
    """A request was refused because every worker was busy and the queue was full."""


class MessageTooLargeError(ComposervError, ValueError):
    """A framed message was longer than the framing's ``max_size``.

    The server closes the connection it came on and logs the event; nothing else
    is affected.
    """

    def __init__(
        self,
        size: int,
        limit: int,
        messages: list[bytes] | None = None,
        *,
        what: str = "the framing's max_size",
        remedy: str = "raise max_size on the framing to accept it",
    ) -> None:
        super().__init__(f"a message of at least {size} bytes is over {what}={limit}; {remedy}")
        self.size = size
        self.limit = limit
        self.messages = messages or []
        """The complete messages decoded before the one that was too large."""


class TruncatedMessageError(ComposervError, ValueError):
    """The stream ended in the middle of a framed message."""

    def __init__(self, pending: int) -> None:
        super().__init__(
            f"the stream ended with {pending} bytes of an unfinished message; "
            "the peer closed before sending the whole frame"
        )
        self.pending = pending


class ProxyHeaderError(ComposervError, ValueError):
    """A PROXY protocol header is malformed, of an unknown version, or too large.

    The message says what in the header is wrong. A server drops the connection
    it came on: the spec forbids guessing where a broken header ends.
    """
