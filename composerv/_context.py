"""`RequestContext`: one request's peer, deadlines and part in a draining shutdown.

The runtime makes a context per request and hands it to the handler with the
request (``handler.handle(request, context)``); every way of reading and writing a
connection (`Connection`, its files, the socket's own ``recv``/``sendall`` under a
classic handler, the blocking message loop) goes through it. So every handler kind
gets the idle, read and write deadlines, a timeout always raises `TimeoutError`
where the handler reads (never looks like the end of the stream), and a draining
server closes idle connections and cuts the rest.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import socket
import ssl
import struct
import sys
import termios
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ._addresses import Address
from ._limits import Limits
from ._outcome import Outcomes, log_outcome

if TYPE_CHECKING:
    from ._hub import Hub, Outlet
    from ._proxy import ProxyHeader

__all__ = ["KERNEL_TIMEOUTS", "NO_LIMITS", "RequestContext", "bytes_waiting", "timeval"]

NO_LIMITS = Limits(
    max_connections=None,
    idle_timeout=None,
    first_request_timeout=None,
    read_timeout=None,
    write_timeout=None,
)
"""The limits of a connection made outside a server: none."""

KERNEL_TIMEOUTS = sys.platform.startswith("linux")
"""Whether plain sockets get kernel timeouts (SO_RCVTIMEO/SO_SNDTIMEO).

They leave the socket blocking, so a recv or a send stays one system call;
Python's settimeout() adds a poll() before each one (measured on a threaded echo
over unix sockets: 41k round trips/s with it, 60k without). They need struct
timeval's layout, two longs on Linux; elsewhere, and for TLS sockets (whose
blocking reads retry on the EAGAIN of a kernel timeout instead of failing), the
context uses settimeout()."""

# What a timed-out recv or send raises: EAGAIN under a kernel timeout, TimeoutError
# under settimeout().
_TIMED_OUT = (TimeoutError, BlockingIOError)

_NEVER_SET = -1.0
# A read deadline not computed yet (see `RequestContext.receive`); real ones are
# monotonic times plus a positive limit.
_CLOCK_NOT_STARTED = -1.0

# FIONREAD's argument: room for the C int it fills in.
_INT_ZERO = bytes(struct.calcsize("i"))

# Longer timeouts are as good as none, and would overflow a 32-bit time_t.
_MAX_KERNEL_TIMEOUT = 2**31 - 1

T = TypeVar("T")


# Cached: every connection sets the same idle and write timeouts when it starts.
@functools.lru_cache(maxsize=32)
def timeval(seconds: float | None) -> bytes:
    """`seconds` as the struct timeval of SO_RCVTIMEO/SO_SNDTIMEO (zero: no timeout)."""
    if seconds is None or seconds >= _MAX_KERNEL_TIMEOUT:
        return struct.pack("@ll", 0, 0)
    whole = int(seconds)
    micros = max(int((seconds - whole) * 1_000_000), 0 if whole else 1)
    return struct.pack("@ll", whole, micros)


class RequestContext:
    """What travels with one request from accept to release: its peer, its limits and
    deadlines, and its part in a drain.

    A read waits up to ``idle_timeout`` for its first byte (the connection is
    *idle*: between requests; before its first request, the shorter
    ``first_request_timeout`` may apply), then must complete within
    ``read_timeout`` of that byte; a write must complete within ``write_timeout``.
    Each raises `TimeoutError` naming the limit. A draining server closes idle
    connections: a read that starts idle during a drain sees end of stream, and one
    already waiting is woken by ``shutdown(SHUT_RD)``; the order of the flags'
    stores (see `receive`) makes sure no read slips into a wait that the drain did
    not see. At capacity, an idle connection may be evicted the same way (`evict`).

    Made by the runtime; a `Connection` made by hand gets one with no limits.
    """

    __slots__ = (
        "_draining",
        "_evicted",
        "_first",
        "_idle",
        "_idle_since",
        "_idle_timeout",
        "_kernel",
        "_own_timeout",
        "_peek_first",
        "_raw_peek",
        "_raw_recv",
        "_raw_recv_into",
        "_raw_send",
        "_raw_sendall",
        "_raw_settimeout",
        "_read_deadline",
        "_read_in_drain",
        "_reading",
        "_recv_timeout",
        "_send_timeout",
        "_shut_by_drain",
        "_timed",
        "_write_timeout",
        "admitted",
        "at_eof",
        "bytes_in",
        "bytes_out",
        "closed_idle",
        "closing",
        "hub",
        "limits",
        "opened",
        "outcomes",
        "outlet",
        "peer",
        "proxy",
        "proxy_header",
        "socket",
    )

    def __init__(
        self,
        sock: socket.socket | None,
        peer: Address,
        limits: Limits,
        *,
        timeouts_preset: bool = False,
    ) -> None:
        self.peer = peer
        """The client's address: ``(host, port)``, or a path (often ``""``) for unix.
        Behind a proxy that speaks the PROXY protocol, the client it names."""
        self.proxy: Address | None = None
        """The address the connection really came from (the proxy) when it opened with
        a PROXY protocol header (see `proxy_protocol`); None otherwise."""
        self.proxy_header: ProxyHeader | None = None
        """That header, with its TLVs (``proxy_header.unique_id``, ``.ssl``,
        ``.tlv(kind)``); None without one."""
        self.limits = limits
        """The server's limits, which this request keeps."""
        self.opened = time.monotonic()
        """When the request arrived (monotonic seconds)."""
        self.bytes_in: int = 0
        """Bytes received from the client so far."""
        self.bytes_out: int = 0
        """Bytes sent to the client so far (by the handler; framing included)."""
        self.closing = False
        """Whether the connection is to close once the replies so far are sent (see
        `close_after_reply`)."""
        self.hub: Hub | None = None
        """The server's broadcast hub, for the sessions that send to other
        connections (set by runtimes that offer one)."""
        self.admitted = 0
        """How many of the handler's layers have admitted this request."""
        self.outcomes: Outcomes | None = None
        """How the server logs the ends of its requests (set by the runtime); None
        outside a server: `log_outcome` logs plainly then."""
        self.outlet: Outlet | None = None
        """This connection as the hub sends to it (set by the runtime when the
        connection takes part in a hub)."""
        self.closed_idle = False
        """Whether a drain ended this connection while it waited for a request."""
        self.at_eof = False
        """Whether a read got the peer's end of stream (so nothing unread is left)."""
        self._draining = False
        self._read_in_drain = False
        self._shut_by_drain = False
        self._idle = False
        self._idle_since = 0.0
        self._evicted = False
        # Whether nothing has been received yet: the first wait has its own limit.
        self._first = True
        # Copied from `limits` because every read and write looks them up.
        self._idle_timeout = limits.first_wait
        self._write_timeout = limits.write_timeout
        self._read_deadline: float | None = None
        self._reading = False
        self._own_timeout: float | None = None
        # A connection with no limits leaves the socket's own timeout alone.
        self._timed = limits.any_timeout
        self.socket: socket.socket | None = None
        """The request's connection (None for a datagram)."""
        if sock is not None:
            self.attach(sock, timeouts_preset=timeouts_preset)

    @classmethod
    def unlimited(cls, sock: socket.socket, peer: Address) -> RequestContext:
        """A context with no limits, for a connection made outside a server."""
        return cls(sock, peer, NO_LIMITS)

    def attach(self, sock: socket.socket, *, timeouts_preset: bool = False) -> None:
        """Read and write `sock` from now on: the accepted socket, or the TLS socket
        its handshake made. `timeouts_preset`: the socket inherited the idle and write
        timeouts from its listener (see ``preset_listener_timeouts``)."""
        self.socket = sock
        # The socket's own methods, never the routing ones of a request socket,
        # looked up once: each call is then as cheap as on a plain socket.
        base = ssl.SSLSocket if isinstance(sock, ssl.SSLSocket) else socket.socket
        self._raw_recv: Callable[[int], bytes] = base.recv.__get__(sock)
        # Under TLS an idle read first waits for a record's raw bytes with the TCP
        # socket's own recv: a drain that wakes it then leaves OpenSSL's state whole,
        # so the close still sends close_notify. A plain read does not: that second
        # system call per read cost a quarter of the pipelined echo's speed.
        self._peek_first = base is ssl.SSLSocket
        self._raw_peek: Callable[[int, int], bytes] = socket.socket.recv.__get__(sock)
        self._raw_recv_into: Callable[[Any], int] = base.recv_into.__get__(sock)
        self._raw_send: Callable[[Any], int] = base.send.__get__(sock)
        self._raw_sendall: Callable[[Any], None] = base.sendall.__get__(sock)
        self._raw_settimeout: Callable[[float | None], None] = socket.socket.settimeout.__get__(
            sock
        )
        self._kernel = KERNEL_TIMEOUTS and base is socket.socket and sock.gettimeout() is None
        preset = timeouts_preset and self._kernel
        # The timeouts the socket has now, so that unchanged ones are not set again.
        self._recv_timeout: float | None = self._idle_timeout if preset else _NEVER_SET
        self._send_timeout: float | None = self._write_timeout if preset else _NEVER_SET
        if self._timed:
            self._set_recv_timeout(self._idle_timeout)
            self._set_send_timeout(self._write_timeout)

    def watch(self, sock: socket.socket) -> None:
        """Make a drain's `cut` reach `sock` before the context reads through it (a
        TLS handshake in progress)."""
        self.socket = sock

    def set_own_timeout(self, timeout: float | None) -> None:
        """The handler chose a timeout of its own (``socket.settimeout``, a classic
        handler's ``timeout``): reads and writes then wait at most the shorter of it
        and the limit, and the handler's one raises the socket's own `TimeoutError`."""
        sock = self.socket
        assert sock is not None  # only a connection's socket can be given a timeout
        self._own_timeout = timeout
        self._raw_settimeout(timeout)
        self._kernel = KERNEL_TIMEOUTS and not isinstance(sock, ssl.SSLSocket) and timeout is None
        self._recv_timeout = self._send_timeout = _NEVER_SET if self._kernel else timeout

    def log_outcome(self, error: Exception) -> None:
        """Log that this request ended with `error`, through the server's `outcomes`."""
        if self.outcomes is not None:
            self.outcomes.log(self.peer, error)
        else:
            log_outcome(self.peer, error)

    def close_after_reply(self) -> None:
        """Close the connection once the replies so far have been sent."""
        self.closing = True

    @property
    def draining(self) -> bool:
        """Whether the server is draining: the request should finish and not start another."""
        return self._draining

    def _set_recv_timeout(self, timeout: float | None) -> None:
        # Callers on the per-read path compare with _recv_timeout first, to save this call.
        if timeout == self._recv_timeout:
            return
        self._recv_timeout = timeout
        if self._kernel:
            assert self.socket is not None
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval(timeout))
        else:
            self._raw_settimeout(self._shorter_than_own(timeout))
            self._send_timeout = timeout

    def _set_send_timeout(self, timeout: float | None) -> None:
        # Callers on the per-write path compare with _send_timeout first, to save this call.
        if timeout == self._send_timeout:
            return
        self._send_timeout = timeout
        if self._kernel:
            assert self.socket is not None
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval(timeout))
        else:
            self._raw_settimeout(self._shorter_than_own(timeout))
            self._recv_timeout = timeout

    def _shorter_than_own(self, timeout: float | None) -> float | None:
        own = self._own_timeout
        if own is None:
            return timeout
        return own if timeout is None else min(own, timeout)

    def _own_timeout_first(self, limit: float | None) -> bool:
        """Whether a timeout now is the handler's own rather than the limit's."""
        own = self._own_timeout
        return own is not None and (limit is None or own <= limit)

    def begin_read(self, mid_request: bool) -> None:
        """A new read starts: its first byte starts the read clock, unless bytes of
        the request it reads were already received (`mid_request`): then, as soon
        as it needs a recv (most such reads are served from a buffer alone)."""
        self._reading = mid_request
        if mid_request:
            self._read_deadline = _CLOCK_NOT_STARTED

    def _start_read_clock(self) -> float | None:
        limit = self.limits.read_timeout
        return None if limit is None else time.monotonic() + limit

    def recv(self, max_bytes: int) -> bytes:
        """One whole read of up to `max_bytes`, within ``idle_timeout``; b"" at EOF or when
        drained. Also begins the read (see `begin_read`): a single recv completes it."""
        self._reading = False
        return self.receive(self._raw_recv, max_bytes, b"")

    def recv_into(self, buffer: Any, nbytes: int = 0) -> int:
        """`recv` into `buffer` (at most `nbytes` bytes, 0: its size); the count received."""
        self._reading = False
        if nbytes:
            with memoryview(buffer) as view:
                return self.receive(self._raw_recv_into, view[:nbytes], 0)
        return self.receive(self._raw_recv_into, buffer, 0)

    def receive(self, call: Callable[[Any], T], argument: Any, eof: T) -> T:
        """``call(argument)`` (a receive on the socket) within this read's deadline;
        `eof` instead when drained while idle. Readers pass the socket's raw
        method (`raw_recv_into`), with no functools.partial in between (a partial
        there made threads wait for the GIL more often: benchmarks/results/history/run-08.md)."""
        if self._reading:
            return self._receive_rest(call, argument)
        # Set, then check, without a lock: `drain` sets _draining, then checks
        # _idle, so whichever runs second sees the other's store (the GIL orders
        # them), and a drain never misses a read that is about to wait. A lock
        # would not close the remaining window (data arriving as the drain
        # starts) and would cost two acquisitions per read.
        # Stamped before it is marked idle: eviction, in another thread, reads both.
        self._idle_since = time.monotonic()
        self._idle = True
        if self._draining and not self._request_arrived_before_drain():
            self._idle = False
            # Closed idle if it has read nothing since the drain began; one that was
            # mid-request then has finished its request.
            self.closed_idle = not self._read_in_drain
            return eof
        if self._timed and self._recv_timeout != self._idle_timeout:
            self._set_recv_timeout(self._idle_timeout)
        try:
            received = (
                self._receive_peeked(call, argument, eof)
                if self._peek_first and argument
                else call(argument)
            )
        except _TIMED_OUT:
            if self._own_timeout_first(self._idle_timeout):
                raise
            limits = self.limits
            raise (
                limits.first_wait_timed_out() if self._first else limits.idle_timed_out()
            ) from None
        finally:
            self._idle = False
        if received:
            self.bytes_in += received if received.__class__ is int else len(received)  # type: ignore[arg-type, operator]  # bytes or a count
            if self._shut_by_drain:
                # The request came as the drain looked: this thread had taken it from
                # the socket and waited for the GIL, so the read looked idle. It is
                # served (the drain shut only the reading side), not closed idle.
                self.closed_idle = False
            if self._first:
                self._first = False
                self._idle_timeout = self.limits.idle_timeout
            if self._draining:
                self._read_in_drain = True
            # The read clock starts at this first byte, but is read only if the read
            # needs another recv (`_receive_rest`): most reads end with this one. The
            # time in between is this read's own processing, microseconds.
            self._reading = True
            self._read_deadline = _CLOCK_NOT_STARTED
        else:
            self._saw_eof(argument)
        return received

    def _request_arrived_before_drain(self) -> bool:
        """Whether this read, the first since the drain began, has a request waiting
        (one that came while its connection waited in a pool's queue, or while its
        handler was busy): that one is served, as the drain promises; none after."""
        sock = self.socket
        return not self._read_in_drain and sock is not None and bytes_waiting(sock)

    def _receive_peeked(self, call: Callable[[Any], T], argument: Any, eof: T) -> T:
        arrived = self._first_record_waits()
        self._idle = False  # what came is in the socket, where a drain sees it
        return call(argument) if arrived else eof

    def _first_record_waits(self) -> bool:
        """Under TLS, wait for the raw bytes of a request without taking them; whether
        they came (False: end of stream, the peer's or a drain's)."""
        sock = self.socket
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True  # decrypted bytes are here already
        return bool(self._raw_peek(1, socket.MSG_PEEK))

    @property
    def raw_recv(self) -> Callable[[int], bytes]:
        """The socket's own recv, for `receive`."""
        return self._raw_recv

    @property
    def raw_recv_into(self) -> Callable[[Any], int]:
        """The socket's own recv_into, for `receive`."""
        return self._raw_recv_into

    def _saw_eof(self, asked: Any) -> None:
        # A read of zero bytes (recv(0), an empty buffer) returns nothing at any time.
        if asked:
            self.at_eof = True

    def _receive_rest(self, call: Callable[[Any], T], argument: Any) -> T:
        deadline = self._read_deadline
        if deadline == _CLOCK_NOT_STARTED:
            deadline = self._read_deadline = self._start_read_clock()
        if deadline is None:
            if self._timed:
                self._set_recv_timeout(None)
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
                self._set_recv_timeout(remaining)
            try:
                received = call(argument)
            except _TIMED_OUT:
                if self._own_timeout_first(remaining):
                    raise
                raise self.limits.read_timed_out() from None
        if received:
            self.bytes_in += received if received.__class__ is int else len(received)  # type: ignore[arg-type, operator]  # bytes or a count
        else:
            if self._shut_by_drain and argument:
                # Bytes of this request came just as the drain closed the connection's
                # reading side: its end of stream is the drain's, not the peer's, and
                # must not pass for the end of a request that was cut.
                raise ConnectionAbortedError("the draining server closed the connection")
            self._saw_eof(argument)
        if self._draining and received:
            self._read_in_drain = True
        return received

    def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send all of `data` within ``write_timeout``, a total for the whole call."""
        total = data.nbytes if isinstance(data, memoryview) else len(data)
        self.bytes_out += total
        limit = self._write_timeout
        if limit is None:
            if self._timed:
                self._set_send_timeout(None)
            self._raw_sendall(data)
            return
        if self._send_timeout != limit:
            self._set_send_timeout(limit)
        # Read before the first send, which may itself wait up to `limit`: a deadline
        # taken after it let a slow reader hold the call for twice the limit.
        deadline = time.monotonic() + limit
        try:
            sent = self._raw_send(data)
            if sent == total:
                return  # the common case: it all fit in the send buffer
            with memoryview(data) as view, view.cast("B") as left:
                while sent < total:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError
                    self._set_send_timeout(remaining)
                    sent += self._raw_send(left[sent:])
        except _TIMED_OUT:
            if self._own_timeout_first(limit):
                raise
            raise self.limits.write_timed_out() from None

    def send(self, data: bytes | bytearray | memoryview) -> int:
        """One send of what fits of `data`, waiting at most ``write_timeout`` for room."""
        limit = self._write_timeout
        if self._timed and self._send_timeout != limit:
            self._set_send_timeout(limit)
        try:
            sent = self._raw_send(data)
        except _TIMED_OUT:
            if self._own_timeout_first(limit):
                raise
            raise self.limits.write_timed_out() from None
        self.bytes_out += sent
        return sent

    def send_now(self, data: bytes) -> int:
        """One send of what fits of `data` at once, without waiting for room."""
        sock = self.socket
        assert sock is not None  # only a connection sends
        try:
            sent = socket.socket.send(sock, data, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return 0
        self.bytes_out += sent
        return sent

    def drain(self) -> None:
        """Close the connection if it waits for a request; make its next idle read see EOF.

        A connection whose next request has already arrived (unread bytes in its
        socket) is not idle: its read gets them, and the drain waits for it."""
        self._draining = True
        sock = self.socket
        if not self._idle or sock is None or bytes_waiting(sock):
            return
        # Asked again later (a read elsewhere that begins to wait), one that has read
        # since the drain began has finished its request, as in `receive`.
        self.closed_idle = not self._read_in_drain
        self._shut_by_drain = True
        _shutdown(sock, socket.SHUT_RD)

    def waits_elsewhere(self, idle: bool) -> None:
        """A reader this context does not run (asyncio's, which reads the socket
        itself) begins to wait for data, `idle` if no bytes of a request are buffered;
        or, `idle` False, it has stopped waiting. The drain and eviction then see the
        connection as one of the context's own reads: a draining server closes it at
        once if idle."""
        if not idle:
            self._idle = False
            return
        self._idle_since = time.monotonic()  # before _idle: see `receive`
        self._idle = True
        if self._draining:
            self.drain()

    def received_elsewhere(self, count: int) -> None:
        """That reader got `count` bytes: the connection is busy with a request."""
        self._idle = False
        self.bytes_in += count
        if self._shut_by_drain:
            self.closed_idle = False  # taken from the socket as the drain looked: see `receive`
        if self._draining:
            self._read_in_drain = True

    @property
    def idle_since(self) -> float | None:
        """Since when (monotonic) the connection waits for a new request, if it does
        and has not been evicted."""
        return self._idle_since if self._idle and not self._evicted else None

    def evict(self) -> bool:
        """Close the connection, as a drain does, if it still waits for a new request
        (and none has arrived in its socket); whether it did. Its read sees end of
        stream."""
        sock = self.socket
        if not self._idle or self._evicted or sock is None or bytes_waiting(sock):
            return False
        self._evicted = True
        _shutdown(sock, socket.SHUT_RD)
        return True

    def cut(self) -> None:
        """Force the connection closed so that a handler blocked on it wakes up."""
        if self.socket is not None:
            _shutdown(self.socket, socket.SHUT_RDWR)


def bytes_waiting(sock: socket.socket) -> bool:
    """Whether the peer has sent bytes not read yet (raw ones, for a TLS socket).

    Asked of the kernel's receive queue (FIONREAD), never by a receive: a recv
    with MSG_PEEK on a socket with a Python-level timeout (a TLS socket's) first
    waits up to that timeout for data, which stalled a drain for the idle timeout."""
    try:
        queued = fcntl.ioctl(sock.fileno(), termios.FIONREAD, _INT_ZERO)
    except OSError:
        return False  # the connection is gone: nothing to wait for
    return int.from_bytes(queued, sys.byteorder) > 0


def _shutdown(sock: socket.socket, how: int) -> None:
    # The plain socket's shutdown, also for a TLS socket: it wakes a handshake or a
    # read blocked in another thread without touching the TLS state under it.
    # OSError: the connection is already closed or reset; nothing to wake.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, how)
