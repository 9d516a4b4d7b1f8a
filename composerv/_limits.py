"""`limits()`: how much a server lets its clients take, and `DrainReport`."""

from __future__ import annotations

import attrs

from ._validate import (
    non_negative_number,
    optional_positive_int,
    optional_positive_number,
    positive_int,
)

__all__ = ["DrainReport", "Limits", "limits"]

# Defaults that let a well-behaved client work and bound what a bad one can hold.
# 1024 connections: a thread per connection costs ~64 KiB of RSS plus a stack
# reservation, so a thousand stays within a small server's memory; beyond it,
# clients wait in the listen backlog instead of failing.
DEFAULT_MAX_CONNECTIONS = 1024
# 60 s idle: longer than the keep-alive of common HTTP clients (which reconnect),
# short enough that abandoned connections do not accumulate for hours.
DEFAULT_IDLE_TIMEOUT = 60.0
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
    max_output_buffer: int = attrs.field(default=DEFAULT_MAX_OUTPUT_BUFFER, validator=positive_int)
    """Bytes that may wait to be sent to one client. Past it the server stops
    reading that client's messages (its replies wait for it to read), and a
    broadcast to it follows the sender's slow-consumer policy."""

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
    read_timeout: float | None = DEFAULT_READ_TIMEOUT,
    write_timeout: float | None = DEFAULT_WRITE_TIMEOUT,
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
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
        read_timeout=read_timeout,
        write_timeout=write_timeout,
        drain_timeout=drain_timeout,
        max_output_buffer=max_output_buffer,
    )


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
