"""`Server`: a bound socket and the runtime its concurrency built, behind one facade.

The server never asks which runtime it has: it builds it once
(``concurrency.build(service)``) and delegates serving, stopping, draining and
closing to it. What it owns itself is the listening socket, and the rules for
stopping from anywhere: another thread, a handler, a signal handler, twice.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Generator, Sequence
from contextlib import contextmanager
from types import FrameType, TracebackType
from typing import Any, Final, Generic, overload

import attrs

from ._context import KERNEL_TIMEOUTS, timeval
from ._episodes import summarise_episodes
from ._fit import check_fit
from ._limits import DrainReport, Limits
from ._log import logger
from ._runtime import Concurrency, Deadline, Handler, Runtime, Service
from ._stats import ServerStats
from ._transports._base import (
    INET_FAMILIES,
    LISTENER_OPTIONS_INHERITED,
    A,
    Cleanup,
    R,
    Transport,
    set_listener_nodelay,
)

__all__ = ["Server"]

_NOTHING_PENDING: Final = object()


def _preset_listener_timeouts(listener: socket.socket, limits: Limits) -> bool:
    """Give a TCP listener the kernel timeouts each connection starts with (its first
    wait and write), where accept() copies them (Linux); whether it did. Connections then
    start with them set, and a context sets none when it attaches."""
    timed = (limits.first_wait, limits.write_timeout) != (None, None)
    if not (
        KERNEL_TIMEOUTS
        and LISTENER_OPTIONS_INHERITED
        and listener.family in INET_FAMILIES
        and listener.type == socket.SOCK_STREAM
        and timed
    ):
        return False
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval(limits.first_wait))
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval(limits.write_timeout))
    return True


class Server(Generic[R, A]):
    """A server made by `serve()`: a bound socket and the runtime that serves it.

    Use it as a context manager, or call `server_close` when done::

        with serve(tcp(("127.0.0.1", 0)), threaded(), stream_handler(echo)) as server:
            print("listening on", server.address)
            server.serve_forever()
    """

    def __init__(
        self,
        transport: Transport[R, A],
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
        self._listening_lock = threading.Lock()
        self._stopped_listening = False
        # Who is closing, in order: the first one closes, the others wait for it.
        # Appending is atomic, so this needs no lock, which a signal handler that
        # interrupts the closing thread would deadlock on.
        self._closers: list[threading.Thread] = []
        self._closed_event = threading.Event()
        self._deadline: Deadline | None = None
        self._cut_now = False
        self._pending_close: object = _NOTHING_PENDING
        service = Service(
            transport,
            handler,
            self.limits,
            self.socket,
            stop_listening=self._stop_listening,
            timeouts_preset=self._are_timeouts_preset,
        )
        self._tally = service.tally
        self._service = service
        self._runtime: Runtime = concurrency.build(service)
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
        # Here, not in the transport: left at None, the concurrency decides.
        nodelay = self.transport.nodelay
        set_listener_nodelay(self.socket, self.concurrency.nodelay if nodelay is None else nodelay)
        self._timeouts_preset = _preset_listener_timeouts(self.socket, self.limits)

    def _are_timeouts_preset(self) -> bool:
        return self._timeouts_preset

    @property
    def address(self) -> A:
        """The bound address, with the real port when port 0 was asked for:
        ``(host, port)`` for TCP and UDP (IPv6 too; the socket's own
        ``getsockname()`` has flowinfo and scope id), a path for unix sockets."""
        bound: Any = self.socket.getsockname()  # untyped: the family decides
        return bound[:2] if isinstance(bound, tuple) else bound  # type: ignore[return-value]  # A is the family's address type

    @property
    def active_requests(self) -> int:
        """How many requests are in flight (under `workers`: how many workers run)."""
        return len(self._runtime)

    def reload(self, handler: Handler[R]) -> None:
        """Serve `handler` from now on, in place of `self.handler`, without refusing a
        connection. It is checked first, as `serve` checks (a mismatch raises and
        changes nothing); then, under `workers`, the workers are replaced one at a
        time, each new one accepting before an old one drains. Returns once done.

        Raises `ConfigurationError` under a concurrency that serves in this process
        (it cannot load new code in place) and `RuntimeError` if a new worker did
        not start (the old ones keep serving)."""
        check_fit(self.transport, self.concurrency, handler)
        service = attrs.evolve(self._service, handler=handler)
        self._runtime.reload(service)
        self._service = service
        self.handler = handler

    def stats(self) -> ServerStats:
        """What this server has done so far, as a frozen `ServerStats`: connections
        accepted and open, requests served, errors, timeouts, refusals, bytes in and
        out, and what its drains did. Under `workers` the parent sums its workers'.
        Safe to call from any thread, while serving or after closing."""
        return self._tally.snapshot(self.drain_report)

    @property
    def serving(self) -> bool:
        """Whether `serve_forever` is running in some thread."""
        return self._runtime.serving_thread is not None

    @property
    def closed(self) -> bool:
        """Whether the server has closed (or is closing)."""
        return bool(self._closers)

    def fileno(self) -> int:
        """The server socket's descriptor, so a server can be put in a selector."""
        return self.socket.fileno()

    def serve_forever(
        self, poll_interval: float = 0.5, *, stop_signals: Sequence[int] = ()
    ) -> None:
        """Serve requests until `shutdown` is called.

        `poll_interval` is how often, at most, housekeeping runs while idle
        (reaping children); shutdown does not wait for it.

        With `stop_signals` (e.g. ``(signal.SIGTERM, signal.SIGINT)``; main thread
        only) each of those signals stops the server the way ``composerv run``
        does: it drains by the limits' ``drain_timeout`` and closes, then
        `serve_forever` returns; a second signal during the drain cuts what is
        left at once. The previous handlers come back on return.
        """
        if self.closed:
            raise RuntimeError("cannot serve: this server is closed")
        with self._stop_signals_handled(stop_signals):
            self._runtime.serve_forever(poll_interval)
            pending, self._pending_close = self._pending_close, _NOTHING_PENDING
            if pending is not _NOTHING_PENDING:
                # A drain asked from this thread (a signal handler, a handler under
                # sync()) while the loop ran: now that it has returned, do it.
                self._close(pending)  # type: ignore[arg-type]  # a float or None

    @contextmanager
    def _stop_signals_handled(self, signals: Sequence[int]) -> Generator[None, None, None]:
        if not signals:
            yield
            return
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError(
                "serve_forever(stop_signals=...) must run in the main thread, the only one "
                "that can handle signals; handle them there and call shutdown(drain=...)"
            )
        previous = {signum: signal.signal(signum, self._on_stop_signal) for signum in signals}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _on_stop_signal(self, signum: int, _frame: FrameType | None) -> None:
        # Runs between two bytecodes of whatever this thread was doing: never waits.
        name = signal.Signals(signum).name
        if self.closed or self._pending_close is not _NOTHING_PENDING:
            logger.info("received %s again: cutting what is left", name)
            self._bring_deadline_forward()
            self._pending_close = 0.0
            return
        logger.info("received %s: draining for up to %gs", name, self.limits.drain_timeout)
        self._defer_close(self.limits.drain_timeout)

    def _bring_deadline_forward(self) -> None:
        self._cut_now = True
        if self._deadline is not None:
            self._deadline.bring_forward(time.monotonic())

    @overload
    def shutdown(self) -> None: ...

    @overload
    def shutdown(self, drain: float) -> DrainReport | None: ...

    def shutdown(self, drain: float | None = None) -> DrainReport | None:
        """Stop `serve_forever`; safe from any thread, a handler and a signal handler
        included, and any number of times.

        Without `drain`: from another thread, returns once the loop has stopped;
        does not close the socket or wait for requests in flight (`server_close`
        does that). With ``drain=seconds``: stops accepting and closes the
        listening socket at once (new clients are refused), closes connections
        that wait for a new request, lets requests in flight finish for up to
        `drain` seconds, then cuts what is left, closes the server, and returns a
        `DrainReport` of what it did.

        Called with `drain` where it cannot wait for the requests in flight (the
        thread running `serve_forever`: a signal handler there, a handler under
        ``sync()``; or a handler's own thread), it returns None: the drain runs as
        `serve_forever` returns, or beside the handler, and `drain_report` then
        holds its report. Called again during a drain, it cuts what is left at once.
        """
        if drain is None:
            self._runtime.stop()
            serving = self._runtime.serving_thread
            if serving is not None and serving is not threading.current_thread():
                self._runtime.wait_stopped(None)
            return None
        return self._close(drain)

    def handle_request(self, timeout: float | None = None) -> None:
        """Wait up to `timeout` seconds (None: forever) for one request and serve it."""
        if self.closed:
            raise RuntimeError("cannot serve: this server is closed")
        self._runtime.handle_request(timeout)

    def server_close(self) -> None:
        """Stop listening, remove what binding left (a unix path), and wait for requests in
        flight as the concurrency promises. Safe to call more than once.

        Waiting is bounded: requests still running after the limits' ``drain_timeout``
        are cut (see `shutdown` with ``drain``), so an idle client cannot hold the
        server open forever.
        """
        self._close(self.limits.drain_timeout if self._runtime.waits_on_close else None)

    def _close(self, drain: float | None) -> DrainReport | None:
        me = threading.current_thread()
        if self._closers and self._closers[0] is me:
            # Called again during our own drain (a signal handler on this thread).
            self._bring_deadline_forward()
            return None
        if self._runtime.serving_thread is me:
            if self._pending_close is not _NOTHING_PENDING:
                self._bring_deadline_forward()
            self._defer_close(drain)
            return None
        if self._runtime.in_request():
            # A handler's thread: the drain waits for this very request, so it runs
            # in a thread of its own while the handler returns.
            threading.Thread(target=self._close, args=(drain,), name="composerv-drain").start()
            return None
        self._closers.append(me)
        if self._closers[0] is not me:
            self._closed_event.wait()
            return self.drain_report
        try:
            self._close_now(drain)
        finally:
            self._closed_event.set()
        return self.drain_report

    def _defer_close(self, drain: float | None) -> None:
        """Close once `serve_forever`, running in this thread, returns: stop it, and
        let the request this thread may be in the middle of (under ``sync()``) see
        the drain at once."""
        self._pending_close = drain
        self._runtime.stop()
        if drain is not None:
            self._runtime.drain_here()

    def _close_now(self, drain: float | None) -> None:
        if drain is None:
            self._runtime.stop()
            report = DrainReport(finished=0, closed_idle=0, cut=0)
        else:
            self._deadline = Deadline.after(0.0 if self._cut_now else drain)
            report = self._runtime.drain(self._deadline)
        self._stop_listening()
        self._runtime.close()
        self._tally.close()
        summarise_episodes()
        self.drain_report = report
        if report.in_flight:
            logger.info(
                "closed %r: %d request(s) finished, %d idle connection(s) closed, %d cut",
                self.transport,
                report.finished,
                report.closed_idle,
                report.cut,
            )

    def _stop_listening(self) -> None:
        """Close the listening socket and undo its binding, once."""
        with self._listening_lock:
            if self._stopped_listening:
                return
            self._stopped_listening = True
            self.socket.close()
            if self._cleanup is not None:
                self._cleanup()

    def __enter__(self) -> Server[R, A]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.serving:
            self.shutdown()
        self.server_close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "serving" if self.serving else "open"
        return f"<Server {state} {self.transport!r} {self.concurrency!r} {self.handler!r}>"
