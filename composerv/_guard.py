"""`RequestGuard`: one request's timeouts and its part in a draining shutdown.

The server makes a guard per request and publishes it in a context variable
while the handler runs; `Connection` reads through it, so every stream handler
gets the idle/read/write deadlines and is closed cleanly when the server drains.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import socket
import struct
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ._limits import Limits
from ._transports._base import INET_FAMILIES, LISTENER_OPTIONS_INHERITED

__all__ = ["NO_LIMITS", "RequestGuard", "current_guard", "preset_listener_timeouts"]

NO_LIMITS = Limits(max_connections=None, idle_timeout=None, read_timeout=None, write_timeout=None)
"""The limits of a `Connection` made outside a server: none."""

# Kernel timeouts (SO_RCVTIMEO/SO_SNDTIMEO) leave the socket blocking, so a recv or
# a send stays one system call; Python's settimeout() adds a poll() before each one
# (measured on a threaded echo over unix sockets: 41k round trips/s with it, 60k
# without). They need struct timeval's layout, two longs on Linux; elsewhere the
# guard falls back to settimeout().
_KERNEL_TIMEOUTS = sys.platform.startswith("linux")

# What a timed-out recv or send raises: EAGAIN under a kernel timeout, TimeoutError
# under settimeout().
_TIMED_OUT = (TimeoutError, BlockingIOError)

_NEVER_SET = -1.0
# A read deadline not computed yet (see `RequestGuard.receive`); real ones are
# monotonic times plus a positive limit.
_CLOCK_NOT_STARTED = -1.0

T = TypeVar("T")

# Longer timeouts are as good as none, and would overflow a 32-bit time_t.
_MAX_KERNEL_TIMEOUT = 2**31 - 1


# Cached: every connection sets the same idle and write timeouts when it starts.
@functools.lru_cache(maxsize=32)
def _timeval(seconds: float | None) -> bytes:
    if seconds is None or seconds >= _MAX_KERNEL_TIMEOUT:
        return struct.pack("@ll", 0, 0)  # zero means no timeout
    whole = int(seconds)
    micros = max(int((seconds - whole) * 1_000_000), 0 if whole else 1)
    return struct.pack("@ll", whole, micros)


def _timed(limits: Limits) -> bool:
    return (limits.idle_timeout, limits.read_timeout, limits.write_timeout) != (None, None, None)


def preset_listener_timeouts(listener: socket.socket, limits: Limits) -> bool:
    """Give a TCP listener the kernel timeouts each connection starts with (idle and
    write), where accept() copies them (Linux); whether it did. Guards made with
    ``timeouts_preset=True`` then set none when their connection starts."""
    if not (
        _KERNEL_TIMEOUTS
        and LISTENER_OPTIONS_INHERITED
        and listener.family in INET_FAMILIES
        and listener.type == socket.SOCK_STREAM
        and _timed(limits)
    ):
        return False
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(limits.idle_timeout))
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(limits.write_timeout))
    return True


_current: contextvars.ContextVar[RequestGuard | None] = contextvars.ContextVar(
    "composerv_request_guard", default=None
)


def current_guard() -> RequestGuard | None:
    """The guard of the request this thread is serving, if a server set one."""
    return _current.get()


class RequestGuard:
    """Deadlines for one connection's reads and writes, and its drain state.

    A read waits up to ``idle_timeout`` for its first byte (the connection is
    *idle*: between requests), then must complete within ``read_timeout`` of that
    byte. A draining server closes idle connections: a read that starts idle
    during a drain sees end of stream, and one already waiting is woken by
    ``shutdown(SHUT_RD)``; the order of the flags' stores (see `receive`) makes
    sure no read slips into a wait that the drain did not see.
    """

    __slots__ = (
        "_draining",
        "_idle",
        "_idle_timeout",
        "_read_deadline",
        "_reading",
        "_recv_timeout",
        "_send_timeout",
        "_timed",
        "_write_timeout",
        "at_eof",
        "closed_idle",
        "limits",
        "socket",
    )

    def __init__(
        self, sock: socket.socket | None, limits: Limits, *, timeouts_preset: bool = False
    ) -> None:
        self.socket = sock
        """The request's connection (None for a datagram)."""
        self.limits = limits
        self.closed_idle = False
        """Whether a drain ended this connection while it waited for a request."""
        self.at_eof = False
        """Whether a read got the peer's end of stream (so nothing unread is left)."""
        self._draining = False
        self._idle = False
        # Copied from `limits` because every read and write looks them up.
        self._idle_timeout = limits.idle_timeout
        self._write_timeout = limits.write_timeout
        self._read_deadline: float | None = None
        self._reading = False
        # The timeouts the socket has now, so that unchanged ones are not set again;
        # preset: inherited from the listener (see `preset_listener_timeouts`).
        self._recv_timeout: float | None = limits.idle_timeout if timeouts_preset else _NEVER_SET
        self._send_timeout: float | None = limits.write_timeout if timeouts_preset else _NEVER_SET
        # A connection with no limits leaves the socket's own timeout (which a
        # handler may have set) alone.
        self._timed = _timed(limits)

    def activate(self) -> contextvars.Token[RequestGuard | None]:
        """Publish this guard to `Connection` objects made in this context.

        Also gives the socket ``idle_timeout`` as its timeout, so a handler that
        reads the raw socket rather than a `Connection` cannot block forever either.
        """
        if self.socket is not None and self._timed:
            self._set_recv_timeout(self.socket, self._idle_timeout)
            self._set_send_timeout(self.socket, self._write_timeout)
        return _current.set(self)

    def _set_recv_timeout(self, sock: socket.socket, timeout: float | None) -> None:
        # Callers on the per-read path compare with _recv_timeout first, to save this call.
        if timeout == self._recv_timeout:
            return
        self._recv_timeout = timeout
        if _KERNEL_TIMEOUTS:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(timeout))
        else:
            sock.settimeout(timeout)
            self._send_timeout = timeout

    def _set_send_timeout(self, sock: socket.socket, timeout: float | None) -> None:
        # Callers on the per-write path compare with _send_timeout first, to save this call.
        if timeout == self._send_timeout:
            return
        self._send_timeout = timeout
        if _KERNEL_TIMEOUTS:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(timeout))
        else:
            sock.settimeout(timeout)
            self._recv_timeout = timeout

    @staticmethod
    def deactivate(token: contextvars.Token[RequestGuard | None]) -> None:
        """Undo `activate`."""
        _current.reset(token)

    def begin_read(self, mid_request: bool) -> None:
        """A new read starts: its first byte starts the read clock, unless bytes of
        the request it reads were already received (`mid_request`): then, as soon
        as it needs a recv (most such reads are served from the buffer alone)."""
        self._reading = mid_request
        if mid_request:
            self._read_deadline = _CLOCK_NOT_STARTED

    def _start_read_clock(self) -> float | None:
        limit = self.limits.read_timeout
        return None if limit is None else time.monotonic() + limit

    def recv(self, sock: socket.socket, max_bytes: int) -> bytes:
        """One whole read of up to `max_bytes`, within ``idle_timeout``; b"" at EOF or when
        drained. Also begins the read (see `begin_read`): a single recv completes it."""
        self._reading = False
        return self.receive(sock.recv, max_bytes, b"")

    def receive(self, call: Callable[[Any], T], argument: Any, eof: T) -> T:
        """``call(argument)`` (a receive on the socket) within this read's deadline;
        `eof` instead when drained while idle. The reader's ``readinto`` calls it
        straight, with no functools.partial in between (see docs/performance.md,
        run 8: a partial there made threads wait for the GIL more often)."""
        if self._reading:
            return self._receive_rest(call, argument)
        # Set, then check, without a lock: `_drain_now` sets _draining, then checks
        # _idle, so whichever runs second sees the other's store (the GIL orders
        # them), and a drain never misses a read that is about to wait. A lock
        # would not close the remaining window (data arriving as the drain
        # starts) and would cost two acquisitions per read.
        self._idle = True
        if self._draining:
            self._idle = False
            self.closed_idle = True
            return eof
        sock = self.socket
        if self._timed and sock is not None and self._recv_timeout != self._idle_timeout:
            self._set_recv_timeout(sock, self._idle_timeout)
        try:
            received = call(argument)
        except _TIMED_OUT:
            raise self.limits.idle_timed_out() from None
        finally:
            self._idle = False
        if received:
            # The read clock starts at this first byte, but is read only if the read
            # needs another recv (`_receive_rest`): most reads end with this one. The
            # time in between is this read's own processing, microseconds.
            self._reading = True
            self._read_deadline = _CLOCK_NOT_STARTED
        else:
            self._saw_eof(argument)
        return received

    def _saw_eof(self, asked: Any) -> None:
        # A read of zero bytes (recv(0), an empty buffer) returns nothing at any time.
        if asked:
            self.at_eof = True

    def _receive_rest(self, call: Callable[[Any], T], argument: Any) -> T:
        deadline = self._read_deadline
        if deadline == _CLOCK_NOT_STARTED:
            deadline = self._read_deadline = self._start_read_clock()
        sock = self.socket
        if deadline is None or sock is None:
            if self._timed and sock is not None:
                self._set_recv_timeout(sock, None)
            received = call(argument)
        else:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self.limits.read_timed_out()
            # A setsockopt per recv would cost more than the recv of a streaming read:
            # a kernel timeout between what remains and twice that is kept, so a read
            # overruns its deadline by at most as much again (and usually not at all,
            # as most recvs return at once). None: no timeout; negative: never set.
            current = self._recv_timeout
            if current is None or current < remaining or current > 2 * remaining:
                self._set_recv_timeout(sock, remaining)
            try:
                received = call(argument)
            except _TIMED_OUT:
                raise self.limits.read_timed_out() from None
        if not received:
            self._saw_eof(argument)
        return received

    def send_all(self, sock: socket.socket, data: bytes | bytearray | memoryview) -> None:
        """Send all of `data` within ``write_timeout``, a total for the whole call."""
        limit = self._write_timeout
        if limit is None:
            if self._timed:
                self._set_send_timeout(sock, None)
            sock.sendall(data)
            return
        if self._send_timeout != limit:
            self._set_send_timeout(sock, limit)
        try:
            sent = sock.send(data)
            total = data.nbytes if isinstance(data, memoryview) else len(data)
            if sent == total:
                return  # the common case: it all fit in the send buffer
            deadline = time.monotonic() + limit
            with memoryview(data) as view, view.cast("B") as left:
                while sent < total:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError
                    self._set_send_timeout(sock, remaining)
                    sent += sock.send(left[sent:])
        except _TIMED_OUT:
            raise self.limits.write_timed_out() from None

    def drain_on_signal(self, signum: int, frame: object) -> None:
        """`drain`, as a signal handler in a forked child (SIGTERM from a draining parent)."""
        self.drain()

    def drain(self) -> None:
        """Close the connection if it waits for a request; make its next idle read see EOF."""
        self._draining = True
        if not self._idle or self.socket is None:
            return
        self.closed_idle = True
        # OSError: the connection is already closed or reset; nothing to wake.
        with contextlib.suppress(OSError):
            self.socket.shutdown(socket.SHUT_RD)

    def cut(self) -> None:
        """Force the connection closed so that a handler blocked on it wakes up."""
        if self.socket is not None:
            # OSError: the connection is already closed or reset; nothing to wake.
            with contextlib.suppress(OSError):
                self.socket.shutdown(socket.SHUT_RDWR)
