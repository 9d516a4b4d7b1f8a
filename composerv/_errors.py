"""The exception types composerv raises."""

from __future__ import annotations

import errno

__all__ = [
    "ComposervError",
    "ConfigurationError",
    "HandlerMismatchError",
    "SocketPathInUseError",
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
