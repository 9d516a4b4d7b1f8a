"""`RequestGuard`: one request's timeouts and its part in a draining shutdown.

The server makes a guard per request and publishes it in a context variable
while the handler runs; `Connection` reads through it, so every stream handler
gets the idle/read/write deadlines and is closed cleanly when the server drains.
"""

from __future__ import annotations

import contextlib
import contextvars
import socket
import threading
import time

from ._limits import Limits

__all__ = ["NO_LIMITS", "RequestGuard", "current_guard"]

NO_LIMITS = Limits(max_connections=None, idle_timeout=None, read_timeout=None, write_timeout=None)
"""The limits of a `Connection` made outside a server: none."""

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
    ``shutdown(SHUT_RD)``. The lock makes "am I idle?" and "are we draining?"
    one decision, so no read can slip into a wait the drain did not see.
    """

    __slots__ = (
        "_draining",
        "_idle",
        "_lock",
        "_read_deadline",
        "_reading",
        "_timed",
        "_timeout",
        "closed_idle",
        "limits",
        "socket",
    )

    def __init__(self, sock: socket.socket | None, limits: Limits) -> None:
        self.socket = sock
        """The request's connection (None for a datagram)."""
        self.limits = limits
        self.closed_idle = False
        """Whether a drain ended this connection while it waited for a request."""
        self._lock = threading.Lock()
        self._draining = False
        self._idle = False
        self._read_deadline: float | None = None
        self._reading = False
        self._timeout: float | None = -1.0  # what settimeout was last given; -1: never
        # A connection with no limits leaves the socket's own timeout (which a
        # handler may have set) alone.
        self._timed = (limits.idle_timeout, limits.read_timeout, limits.write_timeout) != (
            None,
            None,
            None,
        )

    def activate(self) -> contextvars.Token[RequestGuard | None]:
        """Publish this guard to `Connection` objects made in this context.

        Also gives the socket ``idle_timeout`` as its timeout, so a handler that
        reads the raw socket rather than a `Connection` cannot block forever either.
        """
        if self.socket is not None and self._timed:
            self._set_timeout(self.socket, self.limits.idle_timeout)
        return _current.set(self)

    def _set_timeout(self, sock: socket.socket, timeout: float | None) -> None:
        # settimeout is a system call's worth of work per read; most reads and
        # writes keep the timeout the last one set.
        if timeout != self._timeout:
            sock.settimeout(timeout)
            self._timeout = timeout

    @staticmethod
    def deactivate(token: contextvars.Token[RequestGuard | None]) -> None:
        """Undo `activate`."""
        _current.reset(token)

    def begin_read(self, *, mid_request: bool = False) -> None:
        """A new read starts: its first byte starts the read clock, unless bytes of
        the request it reads were already received (`mid_request`): then, now."""
        self._reading = False
        if mid_request:
            self._first_byte_came()

    def _first_byte_came(self) -> None:
        self._reading = True
        limit = self.limits.read_timeout
        self._read_deadline = None if limit is None else time.monotonic() + limit

    def recv_into(self, sock: socket.socket, buffer: memoryview) -> int:
        """Receive into `buffer` within this read's deadline; 0 at EOF or when drained."""
        if self._reading:
            return self._recv_rest(sock, buffer)
        with self._lock:
            # Set, then check: `drain_on_signal` sets and checks in the other order
            # without the lock, so one of the two always sees the other.
            self._idle = True
            if self._draining:
                self._idle = False
                self.closed_idle = True
                return 0
        try:
            if self._timed:
                self._set_timeout(sock, self.limits.idle_timeout)
            received = sock.recv_into(buffer)
        except TimeoutError:
            raise TimeoutError(
                f"connection idle for longer than idle_timeout={self.limits.idle_timeout}s"
            ) from None
        finally:
            with self._lock:
                self._idle = False
        if received:
            self._first_byte_came()
        return received

    def _recv_rest(self, sock: socket.socket, buffer: memoryview) -> int:
        deadline = self._read_deadline
        if deadline is None:
            if self._timed:
                self._set_timeout(sock, None)
            return sock.recv_into(buffer)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise self._read_timed_out()
        self._set_timeout(sock, remaining)
        try:
            return sock.recv_into(buffer)
        except TimeoutError:
            raise self._read_timed_out() from None

    def _read_timed_out(self) -> TimeoutError:
        return TimeoutError(
            f"a read did not complete within read_timeout={self.limits.read_timeout}s "
            "of its first byte"
        )

    def send_all(self, sock: socket.socket, data: bytes | bytearray | memoryview) -> None:
        """Send all of `data` within ``write_timeout`` (sendall's timeout is a total)."""
        if self._timed:
            self._set_timeout(sock, self.limits.write_timeout)
        try:
            sock.sendall(data)
        except TimeoutError:
            raise TimeoutError(
                f"the peer did not take the reply within write_timeout={self.limits.write_timeout}s"
            ) from None

    def drain(self) -> None:
        """Close the connection if it waits for a request; make its next idle read see EOF."""
        with self._lock:
            self._drain_now()

    def drain_on_signal(self, signum: int, frame: object) -> None:
        """`drain`, as a signal handler in a forked child (SIGTERM from a draining parent).

        Takes no lock: the handler may interrupt this very thread inside it.
        """
        self._drain_now()

    def _drain_now(self) -> None:
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
