"""`evented()`: one thread serves every connection from an epoll event loop.

Per-message overhead is the whole game here (see docs/performance.md), so the
read path is written for the common case: one recv holds exactly one whole
message, which goes to the handler without any buffer concatenation, and its
reply leaves in one ``send``. Everything else falls back to the framing's
incremental decoder.
"""

from __future__ import annotations

import abc
import contextlib
import socket
import time
from collections.abc import Callable
from typing import Any

import attrs

from .._addresses import Address, peer_repr
from .._errors import HandlerMismatchError, MessageTooLargeError, TruncatedMessageError
from .._framing import Decoder
from .._handlers._base import Handler
from .._handlers._message import (
    DatagramMessageHandler,
    MessageFn,
    StreamMessageHandler,
    log_framing_error,
    replies,
)
from .._limits import DrainReport, Limits
from .._log import logger
from .._server._lifecycle import BATCH, RequestLifecycle, ServeLoop, drain, take_request
from .._transports._base import Transport
from .._validate import positive_int
from ._base import EventLoop, EventLoopConcurrency, Work
from ._poller import new_poller

__all__ = ["Evented", "evented"]

# One receive buffer shared by every connection of a loop: 64 KiB takes a burst of
# pipelined messages in one call, and being reused it never reaches malloc (fresh
# 256 KiB buffers cost an mmap/munmap pair per recv with glibc).
DEFAULT_RECV_SIZE = 65536


# Timeouts are checked by a sweep over all connections, at most this often, and
# four times per shortest timeout so that a connection is cut at most 25% late.
_MAX_SWEEP_INTERVAL = 1.0


def _sweep_interval(limits: Limits) -> float | None:
    timeouts = [t for t in (limits.idle_timeout, limits.read_timeout, limits.write_timeout) if t]
    return min(_MAX_SWEEP_INTERVAL, min(timeouts) / 4) if timeouts else None


class _Connection:
    """One open connection: what the loop keeps per client (small, for idle clients)."""

    __slots__ = ("decoder", "out", "peer", "since", "sock")

    def __init__(self, sock: socket.socket, peer: Address, decoder: Decoder, now: float) -> None:
        self.sock = sock
        self.peer = peer
        self.decoder = decoder
        self.out: memoryview | None = None
        """Reply bytes the socket did not take yet; reading pauses while there are any."""
        self.since = now
        """When the connection entered its state (idle, mid-read, mid-write), for timeouts."""

    @property
    def idle(self) -> bool:
        """Whether the connection waits for a new message, with nothing half-read or unsent."""
        return self.out is None and not self.decoder.pending

    def timed_out(self, limits: Limits, now: float) -> TimeoutError | None:
        """The error to close this connection with, if it outstayed the limit of its state."""
        limit: float | None
        error: Callable[[], TimeoutError]
        if self.out is not None:
            limit, error = limits.write_timeout, limits.write_timed_out
        elif self.decoder.pending:
            limit, error = limits.read_timeout, limits.read_timed_out
        else:
            limit, error = limits.idle_timeout, limits.idle_timed_out
        return error() if limit is not None and now - self.since > limit else None


class _Marker:
    """What the poller reports for a socket that is not a connection."""

    __slots__ = ()


_LISTENER = _Marker()
_WAKE = _Marker()


class _EventedLoop(ServeLoop, metaclass=abc.ABCMeta):
    """Runs a server whose handler is a message handler on an event loop (see `Poller`)."""

    def __init__(
        self, lifecycle: RequestLifecycle[Any], fn: MessageFn, *, recv_size: int, limits: Limits
    ) -> None:
        super().__init__(lifecycle)
        self._fn = fn
        self._limits = limits
        self._poller = new_poller()
        self._wake_reader: socket.socket | None = None
        self._buffer = bytearray(recv_size)
        self._view = memoryview(self._buffer)
        self._connections: set[_Connection] = set()
        self._draining = False
        # The time at the start of the current turn: one clock read serves every
        # connection the turn touches.
        self._now = time.monotonic()
        self._sweep_every = _sweep_interval(limits)
        self._next_sweep = self._now
        self._poller.register(lifecycle, False, _LISTENER)

    @abc.abstractmethod
    def _on_listener(self) -> None:
        """The server socket is readable."""

    @abc.abstractmethod
    def _read(self, connection: _Connection) -> None:
        """A connection is readable."""

    @abc.abstractmethod
    def _flush(self, connection: _Connection) -> None:
        """A connection with pending output is writable."""

    # Scheduler side: the server calls these.

    def submit(self, work: Work, release_in_parent: Work) -> None:
        """Never called: the loop accepts and reads by itself."""
        raise RuntimeError("an evented() loop serves its requests itself")

    def service_actions(self) -> None:
        """Nothing runs in the background, so there is nothing to tidy."""

    def close(self) -> None:
        """Close every open connection and the poller."""
        self._draining = True  # the server socket is closed: do not listen on it again
        for connection in list(self._connections):
            self._drop(connection)
        self._poller.close()
        self._view.release()

    def __len__(self) -> int:
        return len(self._connections)

    # Loop side.

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        if self._sweep_every is not None:
            poll_interval = min(poll_interval, self._sweep_every)
        with self.running_loop() as wake_reader:
            self._wake_reader = wake_reader
            self._poller.register(wake_reader, False, _WAKE)
            try:
                while not self._stop_requested:
                    self._turn(self._poller.poll(poll_interval))
                    self._lifecycle.service_actions()
            finally:
                self._poller.unregister(wake_reader)

    def handle_request(self, timeout: float | None) -> None:
        """Run one turn of the loop; ``handle_timeout`` if nothing happened in `timeout` s."""
        ready = self._poller.poll(timeout)
        if ready:
            self._turn(ready)
        else:
            self._lifecycle.handle_timeout()

    def drain(self, deadline: float) -> DrainReport:
        """Close idle connections, serve the rest until idle or `deadline`, cut the others."""
        self._draining = True
        self._stop_accepting()
        in_flight = len(self._connections)
        # Read what has already arrived first, so that a connection whose request
        # is in its socket buffer is not taken for idle.
        self._turn(self._poller.poll(0))
        closed_idle = self._close_idle()
        while self._connections and (remaining := deadline - time.monotonic()) > 0:
            self._turn(self._poller.poll(remaining))
            self._close_idle()
        cut = len(self._connections)
        for connection in list(self._connections):
            self._drop(connection)
        return DrainReport(finished=in_flight - closed_idle - cut, closed_idle=closed_idle, cut=cut)

    def _close_idle(self) -> int:
        idle = [connection for connection in self._connections if connection.idle]
        for connection in idle:
            self._drop(connection)
        return len(idle)

    def _turn(self, ready: list[Any]) -> None:
        self._now = now = time.monotonic()
        for connection in ready:
            if connection is _LISTENER:
                self._on_listener()
            elif connection is _WAKE:
                assert self._wake_reader is not None  # registered only while serving
                drain(self._wake_reader)
            elif connection.out is not None:
                # Watched for writing only: reading waits until the replies are out.
                self._flush(connection)
            else:
                self._read(connection)
        if self._sweep_every is not None and now >= self._next_sweep:
            self._next_sweep = now + self._sweep_every
            self._close_timed_out(now)

    def _close_timed_out(self, now: float) -> None:
        limits = self._limits
        for connection in list(self._connections):
            if error := connection.timed_out(limits, now):
                logger.info("closed %s: %s", peer_repr(connection.peer), error)
                self._drop(connection)

    def _stop_accepting(self) -> None:
        if not self.paused:
            self.paused = True
            self._poller.unregister(self._lifecycle)

    def _has_room(self) -> bool:
        cap = self._limits.max_connections
        return cap is None or len(self._connections) < cap

    def _failed(self, connection: _Connection, error: OSError) -> None:
        logger.debug("connection from %s failed: %s", peer_repr(connection.peer), error)
        self._drop(connection)

    def _drop(self, connection: _Connection) -> None:
        if connection not in self._connections:
            return  # already dropped, e.g. by a failed send just before
        self._connections.remove(connection)
        sock = connection.sock
        # KeyError/ValueError: the poller never had it or is closed (close() ends both).
        with contextlib.suppress(KeyError, ValueError):
            self._poller.unregister(sock)
        self._lifecycle.shutdown_request(sock)
        if self.paused and not self._draining and self._has_room():
            self.paused = False
            self._poller.register(self._lifecycle, False, _LISTENER)


class _StreamLoop(_EventedLoop):
    """Serves the connections of a stream transport."""

    def __init__(
        self,
        lifecycle: RequestLifecycle[Any],
        handler: StreamMessageHandler,
        *,
        recv_size: int,
        limits: Limits,
    ) -> None:
        super().__init__(lifecycle, handler.fn, recv_size=recv_size, limits=limits)
        self._framing = handler.framing

    def _on_listener(self) -> None:
        for _ in range(BATCH):
            taken = take_request(self._lifecycle)
            if taken is None:
                return  # nothing left to accept (or one refused: the next event goes on)
            sock, peer = taken
            sock.setblocking(False)
            connection = _Connection(sock, peer, self._framing.decoder(), self._now)
            self._connections.add(connection)
            self._poller.register(sock, False, connection)
            if not self._has_room():
                # At max_connections: new clients wait in the listen backlog.
                self._stop_accepting()
                return

    def _read(self, connection: _Connection) -> None:
        buffer = self._buffer
        try:
            size = connection.sock.recv_into(buffer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self._failed(connection, error)
            return
        if not size:
            self._end_of_stream(connection)
            return
        try:
            out = connection.decoder.reply_to_whole(self._view, size, self._fn)
            if out is None:
                out = self._decode(connection, size)
            else:
                connection.since = self._now
        except Exception:
            logger.exception("error while serving %s", peer_repr(connection.peer))
            self._drop(connection)
            return
        if out:
            self._send(connection, out)

    def _decode(self, connection: _Connection, size: int) -> bytes:
        """The slow path: replies to every message completed by what was just read."""
        decoder = connection.decoder
        if not decoder.pending:
            connection.since = self._now  # a read begins (or ends, below)
        try:
            messages = decoder.feed(self._view[:size])
        except MessageTooLargeError as error:
            self._send(connection, replies(self._fn, self._framing, error.messages))
            log_framing_error(error, connection.peer)
            self._drop(connection)
            return b""
        if not decoder.pending:
            connection.since = self._now
        return replies(self._fn, self._framing, messages)

    def _send(self, connection: _Connection, out: bytes) -> None:
        try:
            sent = connection.sock.send(out)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as error:
            self._failed(connection, error)
            return
        if sent < len(out):
            # Backpressure: stop reading from a peer that does not read its replies,
            # so the loop never buffers more than one receive's worth of replies.
            connection.out = memoryview(out)[sent:]
            connection.since = self._now
            self._poller.modify(connection.sock, True, connection)

    def _flush(self, connection: _Connection) -> None:
        out = connection.out
        assert out is not None
        try:
            sent = connection.sock.send(out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self._failed(connection, error)
            return
        if sent < len(out):
            connection.out = out[sent:]
        else:
            connection.out = None
            connection.since = self._now
            self._poller.modify(connection.sock, False, connection)

    def _end_of_stream(self, connection: _Connection) -> None:
        try:
            connection.decoder.close()
        except TruncatedMessageError as error:
            log_framing_error(error, connection.peer)
        self._drop(connection)


class _DatagramLoop(_EventedLoop):
    """Serves the datagrams of a datagram transport: each one is a message."""

    def _on_listener(self) -> None:
        lifecycle = self._lifecycle
        fn = self._fn
        for _ in range(BATCH):
            taken = take_request(lifecycle)
            if taken is None:
                return  # nothing left to read (or one refused: the next event goes on)
            datagram, peer = taken
            try:
                reply = fn(datagram.data)
                if reply is not None:
                    datagram.reply(reply)
            except Exception:
                lifecycle.handle_error(datagram, peer)

    def _read(self, connection: _Connection) -> None:
        """A datagram loop has no connections."""

    def _flush(self, connection: _Connection) -> None:
        """A datagram loop has no connections."""


@attrs.frozen
class Evented(EventLoopConcurrency):
    """A single-threaded event loop (epoll; selectors elsewhere) for message handlers; build it
    with `evented`."""

    recv_size: int = attrs.field(default=DEFAULT_RECV_SIZE, validator=positive_int)
    """Size of the one receive buffer the loop reuses for every read."""

    def check_handler(self, handler: Handler[Any]) -> None:
        if not isinstance(handler, (StreamMessageHandler, DatagramMessageHandler)):
            raise HandlerMismatchError(
                f"evented() serves only message handlers, not {type(handler).__name__}: "
                "use message_handler(fn), or a blocking concurrency such as threaded() or pooled()"
            )

    def event_loop(
        self,
        lifecycle: RequestLifecycle[Any],
        handler: Handler[Any],
        limits: Limits,
        transport: Transport[Any],
    ) -> EventLoop:
        self.check_handler(handler)
        if isinstance(handler, StreamMessageHandler):
            return _StreamLoop(lifecycle, handler, recv_size=self.recv_size, limits=limits)
        assert isinstance(handler, DatagramMessageHandler)
        return _DatagramLoop(lifecycle, handler.fn, recv_size=self.recv_size, limits=limits)


def evented(*, recv_size: int = DEFAULT_RECV_SIZE) -> Evented:
    """Serve every connection from one thread with a non-blocking event loop.

    Takes `message_handler` values only (a blocking handler would stall every
    client: mypy rejects the pairing and `serve` raises `HandlerMismatchError`).
    Connections cost a few hundred bytes each instead of a thread. Replies that
    the peer does not read yet are buffered, and the loop stops reading from that
    peer until they are sent. TCP connections get TCP_NODELAY unless the
    transport says ``nodelay=False``.
    """
    return Evented(recv_size=recv_size)
