"""`limits()`: how much a server lets its clients take, and `DrainReport`."""

from __future__ import annotations

import attrs

from ._validate import (
    flag,
    non_negative_number,
    optional_positive_int,
    optional_positive_number,
    positive_int,
)

__all__ = ["DrainReport", "Limits", "limits", "sweep_interval"]

# Defaults that let a well-behaved client work and bound what a bad one can hold.
# 1024 connections: a thread per connection costs ~64 KiB of RSS plus a stack
# reservation, so a thousand stays within a small server's memory; beyond it,
# clients wait in the listen backlog instead of failing.
DEFAULT_MAX_CONNECTIONS = 1024
# 60 s idle: longer than the keep-alive of common HTTP clients (which reconnect),
# short enough that abandoned connections do not accumulate for hours.
DEFAULT_IDLE_TIMEOUT = 60.0
# 10 s for a new connection's first byte: a real client sends its request as soon
# as it connects (HAProxy recommends a 10 s request timeout); one that sends nothing
# holds a connection (a thread) for less time than an idle keep-alive client may.
DEFAULT_FIRST_REQUEST_TIMEOUT = 10.0
# 30 s to finish a read once its first byte came: a real client sends a line or a
# frame in well under a second; a slowloris that trickles a byte a second is cut.
DEFAULT_READ_TIMEOUT = 30.0
# 60 s for one send_all: a reader that stops reading cannot hold a thread forever.
DEFAULT_WRITE_TIMEOUT = 60.0
# 10 s for server_close to let requests in flight finish before cutting them,
# matching common process supervisors, which send SIGKILL 10 s after SIGTERM.
DEFAULT_DRAIN_TIMEOUT = 10.0
# 1 MiB waiting for one client: hundreds of replies or broadcast lines, while a
# thousand slow clients still cannot take more than a GiB between them.
DEFAULT_MAX_OUTPUT_BUFFER = 1024 * 1024


@attrs.frozen
class Limits:
    """What one server lets its clients take; build it with `limits`.

    None switches a limit off.
    """

    max_connections: int | None = attrs.field(
        default=DEFAULT_MAX_CONNECTIONS, validator=optional_positive_int
    )
    """At most this many requests in flight; beyond it the server stops accepting
    and new connections wait in the listen backlog."""
    idle_timeout: float | None = attrs.field(
        default=DEFAULT_IDLE_TIMEOUT, validator=optional_positive_number
    )
    """Seconds a connection may wait for the first byte of its next read."""
    first_request_timeout: float | None = attrs.field(
        default=DEFAULT_FIRST_REQUEST_TIMEOUT, validator=optional_positive_number
    )
    """Seconds a new connection may wait for its first byte (TLS: after the
    handshake); the shorter of this and `idle_timeout` applies. None: `idle_timeout`
    alone."""
    read_timeout: float | None = attrs.field(
        default=DEFAULT_READ_TIMEOUT, validator=optional_positive_number
    )
    """Seconds one read (a line, ``rfile.read(n)``) may take from its first byte."""
    write_timeout: float | None = attrs.field(
        default=DEFAULT_WRITE_TIMEOUT, validator=optional_positive_number
    )
    """Seconds one ``send_all`` (or ``wfile.write``) may take in total."""
    drain_timeout: float = attrs.field(default=DEFAULT_DRAIN_TIMEOUT, validator=non_negative_number)
    """Seconds `Server.server_close` lets requests in flight finish before cutting them."""
    evict_idle: bool = attrs.field(default=True, validator=flag)
    """At `max_connections` (and when every worker of `pooled` holds a connection),
    close the connection that has waited longest for a new request to admit a new
    one, instead of leaving the newcomer in the listen backlog. Connections in the
    middle of a request are never evicted, nor those that have waited less than a
    second (most likely between two requests of one conversation)."""
    max_output_buffer: int = attrs.field(default=DEFAULT_MAX_OUTPUT_BUFFER, validator=positive_int)
    """Bytes that may wait to be sent to one client. Past it the server stops
    reading that client's messages (its replies wait for it to read), and a
    broadcast to it follows the sender's slow-consumer policy."""

    # Worked out once, not per request: every connection's context reads them.
    first_wait: float | None = attrs.field(init=False, eq=False, repr=False)
    """Seconds a new connection may wait for its first byte: the shorter of
    `first_request_timeout` and `idle_timeout` (None: no limit)."""
    any_timeout: bool = attrs.field(init=False, eq=False, repr=False)
    """Whether any of the idle, first-request, read and write timeouts is on."""

    def __attrs_post_init__(self) -> None:
        first, idle = self.first_request_timeout, self.idle_timeout
        first_wait = idle if first is None or (idle is not None and idle <= first) else first
        timeouts = (first_wait, idle, self.read_timeout, self.write_timeout)
        # Frozen: attrs' own way to set a field the constructor does not take.
        object.__setattr__(self, "first_wait", first_wait)
        object.__setattr__(self, "any_timeout", timeouts != (None, None, None, None))

    def first_wait_timed_out(self) -> TimeoutError:
        """The error that closes a new connection that sent nothing within `first_wait`."""
        if self.first_wait != self.first_request_timeout:
            return self.idle_timed_out()
        return TimeoutError(
            "connection sent nothing within first_request_timeout="
            f"{self.first_request_timeout}s of opening"
        )

    def idle_timed_out(self) -> TimeoutError:
        """The error that closes a connection idle for longer than `idle_timeout`."""
        return TimeoutError(f"connection idle for longer than idle_timeout={self.idle_timeout}s")

    def read_timed_out(self) -> TimeoutError:
        """The error that closes a connection whose read outlasted `read_timeout`."""
        return TimeoutError(
            f"a read did not complete within read_timeout={self.read_timeout}s of its first byte"
        )

    def write_timed_out(self) -> TimeoutError:
        """The error that closes a connection that did not take a reply within `write_timeout`."""
        return TimeoutError(
            f"the peer did not take the reply within write_timeout={self.write_timeout}s"
        )


def limits(
    *,
    max_connections: int | None = DEFAULT_MAX_CONNECTIONS,
    idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
    first_request_timeout: float | None = DEFAULT_FIRST_REQUEST_TIMEOUT,
    read_timeout: float | None = DEFAULT_READ_TIMEOUT,
    write_timeout: float | None = DEFAULT_WRITE_TIMEOUT,
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
    evict_idle: bool = True,
    max_output_buffer: int = DEFAULT_MAX_OUTPUT_BUFFER,
) -> Limits:
    """Limits for `serve(..., limits=...)`; the defaults suit a public-facing server.

    Example::

        serve(tcp(("127.0.0.1", 8000)), threaded(), stream_handler(echo),
              limits=limits(max_connections=100, idle_timeout=5.0))

    See docs/reliability.md for what a client sees when it hits each limit.
    """
    return Limits(
        max_connections=max_connections,
        idle_timeout=idle_timeout,
        first_request_timeout=first_request_timeout,
        read_timeout=read_timeout,
        write_timeout=write_timeout,
        drain_timeout=drain_timeout,
        evict_idle=evict_idle,
        max_output_buffer=max_output_buffer,
    )


# An event loop checks its connections' timeouts by a sweep over all of them, at
# most this often, and four times per shortest timeout so that a connection is cut
# at most 25% late.
_MAX_SWEEP_INTERVAL = 1.0


def sweep_interval(limits: Limits, header_timeout: float | None = None) -> float | None:
    """How often an event loop sweeps its connections for timeouts (None: never);
    `header_timeout`: the PROXY header's, when the loop times it by the same sweep."""
    limited = (limits.first_wait, limits.idle_timeout, limits.read_timeout, limits.write_timeout)
    timeouts = [t for t in (*limited, header_timeout) if t]
    return min(_MAX_SWEEP_INTERVAL, min(timeouts) / 4) if timeouts else None


@attrs.frozen
class DrainReport:
    """What a draining shutdown did with the requests in flight when it began."""

    finished: int
    """Requests that completed on their own before the deadline."""
    closed_idle: int
    """Connections closed while waiting for a new request."""
    cut: int
    """Requests force-closed (connections shut down, children terminated) at the deadline."""

    @property
    def in_flight(self) -> int:
        """How many requests were in flight when the drain began."""
        return self.finished + self.closed_idle + self.cut
