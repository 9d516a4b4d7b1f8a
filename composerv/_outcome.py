"""How the end of a request is logged: one place, one level per kind of ending.

A client that goes away or times out is routine on a public server: one INFO line
with the peer, no traceback, which would bury real errors. A peer that breaks the
framing, or cannot be answered, gets one WARNING line. Anything else is the
handler's bug: an ERROR with its traceback.

A server logs through its own `Outcomes`, which bounds a flood: each kind of
ending is an episode per client host (per bug, for the handler's errors: its
exception type and where it was raised), logged when it starts, then counted and
summarised once a quiet minute has passed (see `Episodes`). `log_outcome` logs one
ending plainly, for a request served outside a server.
"""

from __future__ import annotations

import logging
import ssl
import traceback

from ._addresses import peer_repr
from ._episodes import Episodes
from ._errors import (
    DatagramTooLargeError,
    MessageTooLargeError,
    TruncatedMessageError,
    UnaddressablePeerError,
)
from ._log import logger
from ._validate import is_tuple

__all__ = ["CLIENT_GONE_ERRORS", "PEER_FAULTS", "Outcomes", "log_outcome"]

CLIENT_GONE_ERRORS = (
    ConnectionResetError,
    BrokenPipeError,
    ConnectionAbortedError,
    # Over TLS a peer that leaves mid-stream shows up as these, not as a reset.
    ssl.SSLEOFError,
    ssl.SSLZeroReturnError,
)
"""What a read or write raises when the client has gone away."""

PEER_FAULTS = (MessageTooLargeError, TruncatedMessageError)
"""What a framing raises when the peer sent what it must not."""

DATAGRAM_FAULTS = (DatagramTooLargeError, UnaddressablePeerError)
"""What a datagram's receipt or reply raises when the fault is the sender's."""

# A flood is summarised after this long without a line for it: long enough that a
# sustained one costs a line a minute, short enough that its count is timely.
QUIET = 60.0


def log_outcome(peer: object, error: Exception) -> None:
    """Log that the request from `peer` ended with `error` (one line, not rate-limited)."""
    level, message, args, _key = _classify(peer, error)
    logger.log(level, message, *args, exc_info=_traceback(level, error))


def _classify(peer: object, error: Exception) -> tuple[int, str, tuple[object, ...], object]:
    """The level, the message and its arguments, and the episode key of an ending."""
    host, named = _host(peer), peer_repr(peer)
    if isinstance(error, CLIENT_GONE_ERRORS):
        return logging.INFO, "%s went away: %s", (named, error), (host, type(error))
    if isinstance(error, TimeoutError):
        return logging.INFO, "closed %s: %s", (named, error), (host, str(error))
    if isinstance(error, PEER_FAULTS):
        message = "closing the connection from %s: %s"
        return logging.WARNING, message, (named, error), (host, type(error))
    if isinstance(error, DATAGRAM_FAULTS):  # their messages say what was dropped, and why
        return logging.WARNING, "%s", (error,), (host, type(error))
    return logging.ERROR, "error while serving %s: %s", (named, error), (type(error), _where(error))


def _traceback(level: int, error: Exception) -> Exception | None:
    return error if level == logging.ERROR else None


def _host(peer: object) -> object:
    """The part of a peer's address that names the client, not the connection."""
    return peer[0] if is_tuple(peer) else peer


def _where(error: Exception) -> tuple[str, int] | None:
    """Where `error` was raised: its innermost frame."""
    frames = traceback.extract_tb(error.__traceback__)
    return (frames[-1].filename, frames[-1].lineno or 0) if frames else None


class Outcomes:
    """How one server logs the ends of its requests: as `log_outcome` does, each
    kind of ending an episode (see the module notes). Thread-safe."""

    __slots__ = ("_episodes",)

    def __init__(self) -> None:
        self._episodes = {
            level: Episodes(quiet=QUIET, level=level)
            for level in (logging.INFO, logging.WARNING, logging.ERROR)
        }

    def log(self, peer: object, error: Exception) -> None:
        """The request from `peer` ended with `error`."""
        level, message, args, key = _classify(peer, error)
        self._episodes[level].occurred(key, message, *args, exc_info=_traceback(level, error))
