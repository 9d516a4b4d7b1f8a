"""`ServerStats`: what a server has done so far, as one immutable value."""

from __future__ import annotations

import attrs

__all__ = ["ServerStats"]


@attrs.frozen(kw_only=True)
class ServerStats:
    """A snapshot of a server's counters, from `Server.stats`.

    Every figure counts since the server was made, under every concurrency; under
    `workers` the parent's snapshot sums its workers' (each sends what it counted
    at least once a second, and when it exits), so it is up to a second behind.
    A request is a connection (stream transports) or a datagram.
    """

    connections: int
    """Requests taken off the socket: connections accepted, or datagrams received."""
    open: int
    """Of those, the ones not closed yet."""
    requests: int
    """Requests the handler served to their end (those that failed included)."""
    errors: int
    """Of those, the ones that ended with an error (a timeout, a reset, a bug)."""
    timeouts: int
    """Of the errors, the ones that were idle, read or write timeouts."""
    refused: int
    """Requests closed before the handler: over capacity (a full pool), by a layer
    (``allow_from``, a rate limit), or for a missing or bad PROXY header."""
    bytes_in: int
    """Bytes received from clients (a connection's are counted as it reads them under
    the event loops, when it closes under the blocking concurrencies)."""
    bytes_out: int
    """Bytes sent to clients, counted like `bytes_in` (replies to datagrams: under
    `evented` only, which sends them itself)."""
    drained: int
    """Requests that a drain (``shutdown(drain=...)``, ``server_close``) let finish."""
    closed_idle: int
    """Idle connections a drain closed."""
    cut: int
    """Requests a drain cut at its deadline."""
