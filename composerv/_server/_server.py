"""`serve()` and `Server`: three values become a running server."""

from __future__ import annotations

import errno
import functools
import signal
import socket
import threading
import time
from collections.abc import Sized
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Protocol, overload, runtime_checkable

from .._addresses import Address, peer_repr
from .._concurrency._base import (
    BlockingConcurrency,
    Concurrency,
    EventLoop,
    Loop,
    Scheduler,
)
from .._concurrency._forking import in_request_child
from .._concurrency._workers import Supervisor, Workers
from .._datagram import Datagram
from .._errors import ConfigurationError, HandlerMismatchError
from .._guard import RequestGuard, current_guard, preset_listener_timeouts
from .._handlers._async import AsyncStreamHandler
from .._handlers._base import Handler
from .._limits import DrainReport, Limits
from .._log import logger
from .._transports._base import (
    Cleanup,
    DatagramTooLargeError,
    R,
    StreamTransport,
    Transport,
    set_listener_nodelay,
)

if TYPE_CHECKING:
    # Only the overloads of serve() name these; the modules import the server loop.
    from .._concurrency._asyncio import AsyncioLoop
    from .._concurrency._evented import Evented
    from .._handlers._async import AsyncStreamHandler
    from .._handlers._message import MessageHandler

__all__ = ["Server", "serve"]

# accept() fails with these when the process or the system is out of a resource.
# Retrying at once would spin the CPU (socketserver does: ~400k calls/s); like trio,
# log and pause so that handlers can finish and free what they hold.
ACCEPT_CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
ACCEPT_CAPACITY_PAUSE = 0.1

# A client that goes away mid-request is routine on a public server: logged once,
# with the peer, at INFO and without a traceback, which would bury real errors.
CLIENT_GONE_ERRORS = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)

# After a drain cuts connections, how long handler threads get to notice and return
# before the server gives up waiting for them (they are blocked on a socket that
# now reports an error, so they normally return within milliseconds).
CUT_GRACE = 2.0
# How often a drain checks on child processes, which cannot wake the waiting thread.
_DRAIN_POLL = 0.02


@runtime_checkable
class Terminable(Scheduler, Protocol):
    """A scheduler whose work runs in other processes, signalled from outside."""

    def ask_to_finish(self) -> None:
        """Ask running work to finish its request and close idle connections (SIGTERM)."""

    def terminate(self) -> int:
        """Stop all running work at once (SIGKILL), collect it; return how many."""


class Server(Generic[R]):
    """A server made by `serve()`: a bound socket, a scheduler, and the loop that feeds it.

    Use it as a context manager, or call `server_close` when done::

        with serve(tcp(("127.0.0.1", 0)), threaded(), stream_handler(echo)) as server:
            print("listening on", server.address)
            server.serve_forever()
    """

    def __init__(
        self,
        transport: Transport[R],
        concurrency: Concurrency,
        handler: Handler[R],
        limits: Limits | None = None,
    ) -> None:
        self.transport = transport
        """The transport value this server was made from."""
        self.concurrency = concurrency
        """The concurrency value this server was made from."""
        self.handler = handler
        """The handler value this server was made from."""
        self.limits = Limits() if limits is None else limits
        """The limits this server keeps (see `limits`)."""
        self.socket = transport.create_socket()
        """The server's listening (or datagram) socket."""
        self.socket.setblocking(False)
        self.drain_report: DrainReport | None = None
        """What closing did with the requests in flight, once the server is closed."""
        self._cleanup: Cleanup | None = None
        self._timeouts_preset = False
        self._closed = False
        self._close_lock = threading.Lock()
        # The requests this process serves right now (in threads or inline), so a
        # drain can close the idle ones and cut the rest; notified as each ends.
        self._guards: set[RequestGuard] = set()
        # Taken by a request only while a drain is on (see `_track`); the condition
        # on it is notified only while a drain waits, which is rare.
        self._guards_lock = threading.Lock()
        self._guards_changed = threading.Condition(self._guards_lock)
        self._idle_waiters = 0
        # Set when a drain begins: a request accepted after that (the loop may be
        # mid-accept as shutdown starts) is drained as soon as it is tracked.
        self._draining = False
        self._late_guards: set[RequestGuard] = set()
        self._scheduler: Scheduler
        self._loop: Loop
        self._children: Terminable | None = None
        """The scheduler, when requests run in child processes that it can signal."""
        self._event_loop: EventLoop | None
        self._loop, self._scheduler, self._event_loop = concurrency.build(
            _CoreLifecycle(self),
            handler,
            self.limits,
            None if self.limits.max_connections is None else self._has_capacity,
            transport,
        )
        # Checked once: an isinstance against a Protocol costs tens of
        # microseconds, and the capacity check runs on every request.
        if isinstance(self._scheduler, Terminable):
            self._children = self._scheduler
        # Requests in this process are tracked from accept to release; children,
        # from fork until reaped (the parent releases its copy right after the fork).
        self._in_flight: Sized = self._guards if self._children is None else self._children
        if transport.bind_and_activate:
            try:
                self.bind_and_activate()
            except BaseException:
                self.server_close()
                raise

    def bind_and_activate(self) -> None:
        """Bind and activate the socket; `serve()` does this unless the transport says not to."""
        if self._cleanup is not None:
            raise RuntimeError("this server's socket is already bound")
        self._cleanup = self.transport.bind(self.socket)
        self.transport.activate(self.socket)
        if isinstance(self.transport, StreamTransport):
            # Here, not in the transport: left at None, the concurrency decides.
            nodelay = self.transport.nodelay
            set_listener_nodelay(
                self.socket, self.concurrency.nodelay if nodelay is None else nodelay
            )
        self._timeouts_preset = preset_listener_timeouts(self.socket, self.limits)

    @property
    def address(self) -> Address:
        """The bound address, with the real port when port 0 was asked for."""
        return self.socket.getsockname()  # type: ignore[no-any-return]  # getsockname is untyped

    @property
    def active_requests(self) -> int:
        """How many requests are being served right now in threads or child processes."""
        return len(self._scheduler)

    def fileno(self) -> int:
        """The server socket's descriptor, so a server can be put in a selector."""
        return self.socket.fileno()

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Serve requests until `shutdown` is called.

        `poll_interval` is how often, at most, housekeeping runs while idle
        (reaping children); shutdown does not wait for it.
        """
        if self._closed:
            raise RuntimeError("cannot serve: this server is closed")
        if isinstance(self._scheduler, Supervisor):
            # workers(): the loop runs in worker processes; this one watches them.
            self._scheduler.supervise(poll_interval)
        else:
            self._loop.serve_forever(poll_interval)

    def _has_capacity(self) -> bool:
        # No lock: len() is atomic, and a request that ends just after wakes the loop.
        cap = self.limits.max_connections
        return cap is None or len(self._in_flight) < cap

    # _track and _untrack take no lock unless a drain is on: a set's add and discard
    # are atomic under the GIL, and each writes its own field before it reads the
    # drain's (the drain does the same the other way round, under the lock), so one
    # of the two sides always sees the other. Two lock round trips were about a
    # twentieth of what serving a small datagram costs.

    def _track(self, guard: RequestGuard) -> None:
        self._guards.add(guard)
        if self._draining:
            with self._guards_lock:
                self._late_guards.add(guard)
            guard.drain()

    def _untrack(self, guard: RequestGuard) -> None:
        # In a forked child the set is a copy nobody reads, and its lock may have
        # been copied while another thread held it: only the wake-up matters there,
        # so that the parent reaps the child and accepts again without delay.
        if in_request_child():
            self._loop.wake()
            return
        self._guards.discard(guard)
        if self._idle_waiters:
            with self._guards_lock:
                self._guards_changed.notify_all()
        # A loop that stopped accepting at max_connections may accept again.
        if self._loop.paused:
            self._loop.wake()

    @overload
    def shutdown(self) -> None: ...

    @overload
    def shutdown(self, drain: float) -> DrainReport: ...

    def shutdown(self, drain: float | None = None) -> DrainReport | None:
        """Stop `serve_forever`; safe from any thread, a handler included.

        Without `drain`: from another thread, returns once the loop has stopped;
        does not close the socket or wait for requests in flight (`server_close`
        does that). With ``drain=seconds``: stops accepting and closes the
        listening socket at once, closes connections that wait for a new request,
        lets requests in flight finish for up to `drain` seconds, then cuts what
        is left, closes the server, and returns a `DrainReport` of what it did.
        """
        if isinstance(self._scheduler, Supervisor):
            self._scheduler.stop()
            if drain is None:
                return None
        elif drain is None:
            self._loop.shutdown()
            return None
        with self._guards_changed:
            inside_a_request = current_guard() in self._guards
        if inside_a_request:
            raise RuntimeError(
                "shutdown(drain=...) waits for the requests in flight, which from inside "
                "a handler include its own: call shutdown() here, then server_close() "
                "(which drains) from the thread that ran serve_forever"
            )
        self._loop.request_stop()
        self._close(drain)
        assert self.drain_report is not None  # _close always leaves a report
        return self.drain_report

    def handle_request(self, timeout: float | None = None) -> None:
        """Wait up to `timeout` seconds (None: forever) for one request and serve it."""
        if self._closed:
            raise RuntimeError("cannot serve: this server is closed")
        self._loop.handle_request(timeout)

    def server_close(self) -> None:
        """Stop listening, remove what binding left (a unix path), and wait for requests in
        flight as the concurrency promises. Safe to call more than once.

        Waiting is bounded: requests still running after the limits' ``drain_timeout``
        are cut (see `shutdown` with ``drain``), so an idle client cannot hold the
        server open forever.
        """
        self._close(self.limits.drain_timeout if _waits_on_close(self._scheduler) else None)

    def _close(self, drain: float | None) -> None:
        # Held throughout, so that a second caller returns once the first has
        # finished closing (and `drain_report` is set), not while it drains.
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            self._close_now(drain)

    def _close_now(self, drain: float | None) -> None:
        deadline = None if drain is None else time.monotonic() + drain
        if deadline is not None:
            # A sync server's loop may be inside a handler: let it stop (or cut it
            # at the deadline) before its listening socket is closed under it.
            self._loop.request_stop()
            report = self._drain(deadline)
        else:
            report = DrainReport(finished=0, closed_idle=0, cut=0)
        self.socket.close()
        if self._cleanup is not None:
            self._cleanup()
        if deadline is None or len(self._scheduler) == 0:
            self._scheduler.close()
        self.drain_report = report
        if report.in_flight:
            logger.info(
                "closed %r: %d request(s) finished, %d idle connection(s) closed, %d cut",
                self.transport,
                report.finished,
                report.closed_idle,
                report.cut,
            )

    def _drain(self, deadline: float) -> DrainReport:
        """Close idle connections, wait for the rest until `deadline`, then cut them."""
        if self._event_loop is not None:
            return self._drain_event_loop(self._event_loop, deadline)
        with self._guards_changed:
            self._draining = True
            in_process = set(self._guards)
        for guard in in_process:
            guard.drain()
        children = 0
        if self._children is not None:
            # Once the loop has stopped no child can be forked after the signal.
            self._loop.wait_stopped(max(0.0, deadline - time.monotonic()))
            self._children.service_actions()
            children = len(self._children)
            self._children.ask_to_finish()
        self._wait_idle(deadline)
        with self._guards_changed:
            left = set(self._guards)
            in_process |= self._late_guards
        for guard in left:
            guard.cut()
        cut = len(left & in_process)
        if self._children is not None:
            cut += self._children.terminate()
        if not self._wait_idle(time.monotonic() + CUT_GRACE):
            logger.warning(
                "%d request(s) still running %.1fs after being cut; not waiting for them",
                len(self._scheduler),
                CUT_GRACE,
            )
        closed_idle = sum(guard.closed_idle for guard in in_process)
        return DrainReport(
            finished=len(in_process) + children - closed_idle - cut,
            closed_idle=closed_idle,
            cut=cut,
        )

    def _drain_event_loop(self, loop: EventLoop, deadline: float) -> DrainReport:
        # The loop owns its connections and is not thread-safe: it drains them
        # itself, here, once its serve_forever has returned.
        if not loop.wait_stopped(max(0.0, deadline - time.monotonic())):
            logger.warning(
                "the event loop of %r did not stop within the drain; closing under it", self
            )
        return loop.drain(deadline)

    def _wait_idle(self, deadline: float) -> bool:
        """Wait until the loop has stopped and no request runs, or `deadline`; whether so."""
        while True:
            self._scheduler.service_actions()
            remaining = deadline - time.monotonic()
            with self._guards_changed:
                # Counted as waiting before looking, so that a request ending after the
                # look sees the count and notifies (see `_track`).
                self._idle_waiters += 1
                try:
                    if not self._guards and len(self._scheduler) == 0 and not self._loop.running:
                        return True
                    if remaining <= 0:
                        return False
                    # Children cannot notify this condition: poll for them.
                    self._guards_changed.wait(min(remaining, _DRAIN_POLL))
                finally:
                    self._idle_waiters -= 1

    def __enter__(self) -> Server[R]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop.running:
            self.shutdown()
        self.server_close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "serving" if self._loop.running else "open"
        return f"<Server {state} {self.transport!r} {self.concurrency!r} {self.handler!r}>"


class _CoreLifecycle(Generic[R]):
    """The request lifecycle built from a server's transport, concurrency and handler."""

    __slots__ = ("_capacity_failures", "_server")

    def __init__(self, server: Server[R]) -> None:
        self._server = server
        # accept() failures in a row for lack of a resource: one episode is logged
        # once when it starts and once when it ends, not ten times a second.
        self._capacity_failures = 0

    def fileno(self) -> int:
        return self._server.socket.fileno()

    def get_request(self) -> tuple[R, Address]:
        server = self._server
        try:
            request = server.transport.get_request(server.socket)
        except DatagramTooLargeError as exc:
            logger.warning("%s", exc)
            raise
        except OSError as exc:
            if exc.errno in ACCEPT_CAPACITY_ERRNOS:
                if not self._capacity_failures:
                    logger.error(
                        "cannot accept connections on %s: %s; retrying every %.1fs",
                        peer_repr(server.address),
                        exc.strerror,
                        ACCEPT_CAPACITY_PAUSE,
                    )
                self._capacity_failures += 1
                time.sleep(ACCEPT_CAPACITY_PAUSE)
            raise
        if self._capacity_failures:
            logger.warning(
                "accepting connections on %s again after %d failed attempts",
                peer_repr(server.address),
                self._capacity_failures,
            )
            self._capacity_failures = 0
        return request

    def verify_request(self, request: R, client_address: Address) -> bool:
        return True

    def process_request(self, request: R, client_address: Address) -> None:
        server = self._server
        if isinstance(request, socket.socket):
            guard = RequestGuard(request, server.limits, timeouts_preset=server._timeouts_preset)
        else:
            guard = RequestGuard(None, server.limits)
        # Tracked from here, not from when the work starts, so that max_connections
        # counts a request whose thread has not started yet.
        server._track(guard)
        try:
            server._scheduler.submit(
                # partial, not lambda: calling it adds no Python frame per request.
                functools.partial(self._serve, request, client_address, guard),
                functools.partial(self._release_copy, request, guard),
            )
        except BaseException:
            server._untrack(guard)
            raise

    def _release_copy(self, request: R, guard: RequestGuard) -> None:
        self._server.transport.close_request_copy(request)
        self._server._untrack(guard)

    def _serve(self, request: R, client_address: Address, guard: RequestGuard) -> None:
        server = self._server
        token = guard.activate()
        if in_request_child():
            # A forked child: a draining parent asks it to finish with SIGTERM.
            signal.signal(signal.SIGTERM, guard.drain_on_signal)
        try:
            prepared = server.transport.prepare_request(request, client_address)
            if prepared is None:
                # Dropped and logged by the transport; closing what is left is harmless.
                return
            request = prepared
            server.handler.handle(request, client_address)
        except CLIENT_GONE_ERRORS as exc:
            logger.info("%s went away: %s", peer_repr(client_address), exc)
        except (TimeoutError, BlockingIOError) as exc:
            # BlockingIOError: a handler on the raw socket hit the kernel timeout
            # (SO_RCVTIMEO) that the limits gave it.
            logger.info("closed %s: %s", peer_repr(client_address), exc)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request, at_eof=guard.at_eof)
            RequestGuard.deactivate(token)
            server._untrack(guard)

    def handle_error(self, request: R, client_address: Address) -> None:
        logger.exception("error while serving %s", peer_repr(client_address))

    def handle_timeout(self) -> None:
        """A core server has nothing to do when `handle_request` times out."""

    def service_actions(self) -> None:
        self._server._scheduler.service_actions()

    def shutdown_request(self, request: R, *, at_eof: bool = False) -> None:
        self._server.transport.close_request(request, at_eof=at_eof)


@overload
def serve(
    transport: Transport[socket.socket],
    concurrency: BlockingConcurrency | Workers[BlockingConcurrency],
    handler: Handler[socket.socket],
    *,
    limits: Limits | None = None,
) -> Server[socket.socket]: ...


@overload
def serve(
    transport: Transport[Datagram],
    concurrency: BlockingConcurrency | Workers[BlockingConcurrency],
    handler: Handler[Datagram],
    *,
    limits: Limits | None = None,
) -> Server[Datagram]: ...


@overload
def serve(
    transport: Transport[socket.socket],
    concurrency: Evented | Workers[Evented],
    handler: MessageHandler[socket.socket],
    *,
    limits: Limits | None = None,
) -> Server[socket.socket]: ...


@overload
def serve(
    transport: Transport[Datagram],
    concurrency: Evented | Workers[Evented],
    handler: MessageHandler[Datagram],
    *,
    limits: Limits | None = None,
) -> Server[Datagram]: ...


@overload
def serve(
    transport: Transport[socket.socket],
    concurrency: AsyncioLoop | Workers[AsyncioLoop],
    handler: AsyncStreamHandler,
    *,
    limits: Limits | None = None,
) -> Server[socket.socket]: ...


def serve(
    transport: Any, concurrency: Any, handler: Any, *, limits: Limits | None = None
) -> Server[Any]:
    """Make a server from a transport, a concurrency and a handler, bound and listening.

    The three must fit: a stream handler (`stream_handler`) needs a stream transport
    (`tcp`, `unix_stream`), a datagram handler (`datagram_handler`) a datagram
    transport (`udp`, `unix_datagram`). mypy reports a mismatch; at run time it is
    a `HandlerMismatchError`.

    `limits` (see `limits`) bounds connections, timeouts and the drain on close;
    without it the defaults of `limits()` apply.

    Example::

        server = serve(tcp(("127.0.0.1", 8000)), threaded(), stream_handler(echo))
    """
    _check_kind("transport", transport, Transport, "tcp(...), udp(...), unix_stream(...)")
    _check_kind("concurrency", concurrency, Concurrency, "sync(), threaded(), forking()")
    _check_kind("handler", handler, Handler, "stream_handler(fn), datagram_handler(fn)")
    if handler.kind != transport.kind:
        wanted = "stream_handler(fn)" if transport.kind == "stream" else "datagram_handler(fn)"
        other = "tcp() or unix_stream()" if handler.kind == "stream" else "udp() or unix_datagram()"
        raise HandlerMismatchError(
            f"a {handler.kind} handler cannot serve the {transport.kind} transport "
            f"{transport!r}: use {wanted} with this transport, or a {handler.kind} "
            f"transport such as {other}"
        )
    if limits is not None and not isinstance(limits, Limits):
        raise TypeError(
            f"limits must be a Limits value such as limits(idle_timeout=5.0), "
            f"not {type(limits).__name__} {limits!r}"
        )
    concurrency.check_handler(handler)
    concurrency.check_transport(transport)
    _check_coroutines_get_plain_sockets(transport, concurrency, handler)
    return Server(transport, concurrency, handler, limits)


def _check_coroutines_get_plain_sockets(
    transport: Transport[Any], concurrency: Concurrency, handler: Handler[Any]
) -> None:
    """asyncio's streams take a plain socket, not an ``ssl.SSLSocket``: a blocking
    concurrency would hand an async handler the socket of its own handshake."""
    serving = concurrency.concurrency if isinstance(concurrency, Workers) else concurrency
    if (
        isinstance(handler, AsyncStreamHandler)
        and transport.prepares_requests
        and isinstance(serving, BlockingConcurrency)
    ):
        raise ConfigurationError(
            f"async_stream_handler cannot serve {transport!r} under {concurrency!r}, "
            "whose per-connection setup (a TLS handshake) hands it a socket that asyncio "
            "cannot take: use asyncio_loop(), which runs the handshakes itself"
        )


def _waits_on_close(scheduler: object) -> bool:
    """Whether the concurrency promised to wait for its requests when the server closes."""
    return getattr(scheduler, "block_on_close", True) and not getattr(scheduler, "daemon", False)


def _check_kind(name: str, value: object, expected: type, examples: str) -> None:
    if not isinstance(value, expected):
        raise TypeError(
            f"{name} must be a {expected.__name__} value such as {examples}, "
            f"not {type(value).__name__} {value!r}"
        )
