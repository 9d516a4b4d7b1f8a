"""The exception types composerv raises."""

from __future__ import annotations

import errno

__all__ = [
    "ComposervError",
    "ConfigurationError",
    "HandlerMismatchError",
    "MessageTooLargeError",
    "ProxyHeaderError",
    "SocketPathInUseError",
    "TruncatedMessageError",
]


class ComposervError(Exception):
    """Base class of every exception composerv raises on purpose."""


class ConfigurationError(ComposervError, ValueError):
    """A transport, concurrency or handler value was given an option it cannot use.

    The message names the option and the value, and says what would be accepted.
    """


class HandlerMismatchError(ComposervError, TypeError):
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


class MessageTooLargeError(ComposervError, ValueError):
    """A framed message was longer than the framing's ``max_size``.

    The server closes the connection it came on and logs the event; nothing else
    is affected.
    """

    def __init__(self, size: int, limit: int, messages: list[bytes] | None = None) -> None:
        super().__init__(
            f"a message of at least {size} bytes is over the framing's max_size={limit}; "
            "raise max_size on the framing to accept it"
        )
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
