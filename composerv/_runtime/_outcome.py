"""How the end of a request is logged: one place, one level per kind of ending.

A client that goes away or times out is routine on a public server: one INFO line
with the peer, no traceback, which would bury real errors. A peer that breaks the
framing gets one WARNING line. Anything else is the handler's bug: an ERROR with
its traceback.
"""

from __future__ import annotations

import ssl

from .._addresses import peer_repr
from .._errors import MessageTooLargeError, TruncatedMessageError
from .._log import logger

__all__ = ["CLIENT_GONE_ERRORS", "PEER_FAULTS", "log_outcome"]

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


def log_outcome(peer: object, error: Exception) -> None:
    """Log that the request from `peer` ended with `error`."""
    if isinstance(error, CLIENT_GONE_ERRORS):
        logger.info("%s went away: %s", peer_repr(peer), error)
    elif isinstance(error, TimeoutError):
        logger.info("closed %s: %s", peer_repr(peer), error or "timed out")
    elif isinstance(error, PEER_FAULTS):
        logger.warning("closing the connection from %s: %s", peer_repr(peer), error)
    else:
        logger.error("error while serving %s", peer_repr(peer), exc_info=error)
