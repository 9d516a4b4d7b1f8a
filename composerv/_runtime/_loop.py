"""The blocking request loop, hook for hook the one of the stdlib's ``BaseServer``.

`ServeLoop` owns the waiting, the waking and the order of the calls; a
`RequestLifecycle` supplies what each step does. The blocking runtime supplies
steps built from a server's transport, scheduler and handler; `compat.socketserver`
supplies the classic overridable methods, so legacy subclasses see the same calls
at the same moments as under the stdlib. The event loops reuse its waking and
stopping (`running_loop`, `request_stop`).
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from collections.abc import Generator
from typing import Any, Protocol, TypeVar

from ._gate import ListenerGate

__all__ = ["BATCH", "RequestLifecycle", "ServeLoop", "drain", "new_selector", "take_request"]

R = TypeVar("R")
R_contra = TypeVar("R_contra", contravariant=True)

# poll() has no limit on descriptor numbers and needs no descriptor of its own,
# which matters for a loop that is set up once per serve_forever call.
new_selector: type[selectors.BaseSelector] = getattr(
    selectors, "PollSelector", selectors.SelectSelector
)

BATCH = 64
"""Requests a loop takes per wake-up when ``get_request`` does not block: enough to
drain a burst without a poll() per request, few enough that housekeeping, and
connections already open under an event loop, still get their turn."""

# How often `handle_request` looks for a free place while the gate is closed: unlike
# serve_forever it has no wake-up pipe for a request that ends to write to.
CAPACITY_POLL = 0.01


class RequestLifecycle(Protocol[R]):
    """The steps of serving a request, named as in ``socketserver.BaseServer``.

    For one readable event the loop calls ``get_request``; then, if
    ``verify_request`` agrees, ``process_request`` (on an exception from it,
    ``handle_error`` and ``shutdown_request``); if not, ``shutdown_request``.
    ``service_actions`` runs on every turn of `ServeLoop.serve_forever`, and
    ``handle_timeout`` when `ServeLoop.handle_request` times out.
    """

    def fileno(self) -> int:
        """The listening socket's descriptor, which the loop waits on."""
        ...

    def get_request(self) -> tuple[R, Any]:
        """Take one request and its client address; raises `OSError` if there is none."""
        ...

    def verify_request(self, request: R, client_address: Any) -> bool:
        """Whether to serve `request`; False shuts it down unserved."""
        ...

    def process_request(self, request: R, client_address: Any) -> None:
        """Serve `request`, or hand it to where it is served."""

    def handle_error(self, request: R, client_address: Any) -> None:
        """Report that `process_request` raised for `request`."""

    def handle_timeout(self) -> None:
        """`ServeLoop.handle_request` waited its timeout and no request came."""

    def service_actions(self) -> None:
        """Housekeeping on each turn of `ServeLoop.serve_forever`."""

    def shutdown_request(self, request: R) -> None:
        """Release a request that will not be served, or was served."""


class ServeLoop:
    """Waits for requests and runs a `RequestLifecycle` on each; stops at once on `shutdown`.

    Unlike the stdlib loop, `shutdown` wakes the loop through a socket pair instead
    of waiting out the poll interval, returns at once when called from the loop's
    own thread (a handler under ``sync()``, a signal handler) instead of
    deadlocking, and returns at once when no loop is running. A `shutdown` before
    `serve_forever` makes the next `serve_forever` return at once, so starting and
    stopping from two threads cannot race. Asking to stop takes no lock, so a
    signal handler may do it whatever the loop's thread was doing.

    `gate`, if given, is asked before each wait whether to watch the listening
    socket (see `ListenerGate`): while it says no, new connections wait in the
    kernel's backlog, until `wake` is called or the back-off ends.

    With `nonblocking` (the lifecycle's ``get_request`` raises `BlockingIOError`
    instead of waiting, as the core server's does), one wake-up serves up to
    `BATCH` requests that are ready: under load, most requests then cost no poll().
    Without it (the classic servers' blocking sockets), ``get_request`` is called
    once per readable event, as the stdlib does.
    """

    def __init__(
        self,
        lifecycle: RequestLifecycle[Any],
        gate: ListenerGate | None = None,
        *,
        nonblocking: bool = False,
    ) -> None:
        self._lifecycle = lifecycle
        self.gate = gate
        """When to watch the listening socket (None: always)."""
        self._batch = BATCH if nonblocking else 1
        self._listening = False
        self._lock = threading.Lock()
        self._stop_requested = False
        self._loop_thread: threading.Thread | None = None
        self._waker: socket.socket | None = None
        self._stopped = threading.Event()
        self._stopped.set()

    @property
    def running(self) -> bool:
        """Whether `serve_forever` is running in some thread."""
        return self._loop_thread is not None

    @property
    def serving_thread(self) -> threading.Thread | None:
        """The thread running `serve_forever`, or None."""
        return self._loop_thread

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Serve until `shutdown`; ``service_actions`` runs at least every `poll_interval` s."""
        with self.running_loop() as wake_reader, new_selector() as selector:
            selector.register(wake_reader, selectors.EVENT_READ)
            self._listening = False
            while not self._stop_requested:
                request_ready = self.wait_for_request(selector, wake_reader, poll_interval)
                if self._stop_requested:
                    break
                if request_ready:
                    self.handle_batch()
                self._lifecycle.service_actions()

    def _watching(self) -> bool:
        return self.gate is None or self.gate.open()

    def wait_for_request(
        self, selector: selectors.BaseSelector, wake_reader: socket.socket, timeout: float
    ) -> bool:
        """Wait up to `timeout` s on `selector` (which watches `wake_reader`); whether a
        request is ready. Watches the listening socket only while the gate is open."""
        if self._listening != self._watching():
            self._listening = not self._listening
            if self._listening:
                selector.register(self._lifecycle, selectors.EVENT_READ)
            else:
                selector.unregister(self._lifecycle)
        if self.gate is not None:
            timeout = self.gate.bound(timeout)  # type: ignore[assignment]  # a float in, a float out
        request_ready = False
        for key, _ in selector.select(timeout):
            if key.fileobj is wake_reader:
                drain(wake_reader)
            else:
                request_ready = True
        return request_ready

    @contextlib.contextmanager
    def running_loop(self) -> Generator[socket.socket, None, None]:
        """Mark the loop as running in this thread for the duration of the block.

        Yields the socket that becomes readable when `shutdown` is called; a loop
        must watch it (and `drain` it) and end once ``_stop_requested`` is set.
        """
        wake_reader, wake_writer = socket.socketpair()
        wake_reader.setblocking(False)
        wake_writer.setblocking(False)
        with self._lock:
            if self._loop_thread is not None:
                wake_reader.close()
                wake_writer.close()
                raise RuntimeError("serve_forever() is already running in another thread")
            self._loop_thread = threading.current_thread()
            self._waker = wake_writer
            self._stopped.clear()
        try:
            yield wake_reader
        finally:
            with self._lock:
                self._stop_requested = False
                self._loop_thread = None
                self._waker = None
            wake_reader.close()
            wake_writer.close()
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop `serve_forever`; from another thread, return once it has stopped."""
        loop_thread = self.request_stop()
        if loop_thread is not None and loop_thread is not threading.current_thread():
            self._stopped.wait()

    def request_stop(self) -> threading.Thread | None:
        """Make `serve_forever` stop soon without waiting; return the loop's thread, if any.

        Takes no lock: a signal handler may call it in the middle of anything the
        loop's thread does, `running_loop`'s locked steps included. The flag is set
        before the loop thread is read, and `running_loop` sets the thread before
        it looks at the flag, so a stop is never missed (the GIL orders the stores).
        """
        self._stop_requested = True
        loop_thread = self._loop_thread
        self.wake()
        return loop_thread

    def wait_stopped(self, timeout: float | None) -> bool:
        """Wait up to `timeout` seconds for `serve_forever` to return; whether it has."""
        return self._stopped.wait(timeout)

    def wake(self) -> None:
        """Make a waiting loop look at its state again (a stop, or capacity freed).

        Safe from any thread, from a signal handler, and from a forked child, which
        inherited the pipe.
        """
        waker = self._waker
        if waker is not None:
            # OSError: the pipe is full (a wake-up is pending) or closed (the loop ended).
            with contextlib.suppress(OSError):
                waker.send(b"\0")

    def handle_request(self, timeout: float | None) -> None:
        """Wait up to `timeout` seconds (None: forever) for one request and serve it.

        Calls ``handle_timeout`` if none came in time. While the gate is closed (at
        capacity, or backing off), waits for it to open before taking a request, as
        `serve_forever` does.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        remaining = None if timeout is None else max(0.0, timeout)
        with new_selector() as selector:
            selector.register(self._lifecycle, selectors.EVENT_READ)
            while True:
                if not self._watching():
                    time.sleep(
                        CAPACITY_POLL if remaining is None else min(CAPACITY_POLL, remaining)
                    )
                elif selector.select(remaining) and self.handle_ready():
                    return
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        self._lifecycle.handle_timeout()
                        return

    def handle_ready(self) -> bool:
        """Serve one request from a readable socket (the stdlib's
        ``_handle_request_noblock``); False if the gate did not admit one (at
        capacity, with no idle connection to evict), so the caller waits on."""
        if self.gate is not None and not self.gate.admit():
            return False
        taken = take_request(self._lifecycle)
        if taken is not None:
            self.process_taken(*taken)
        return True

    def handle_batch(self) -> None:
        """Serve the requests ready on a readable socket, up to the batch size, while
        there is room and no stop was asked for."""
        lifecycle = self._lifecycle
        gate = self.gate
        # The first accept may evict an idle connection (a client is known to wait);
        # the others only fill the room there is.
        if gate is not None and not gate.admit():
            return
        for _ in range(self._batch):
            taken = take_request(lifecycle)
            if taken is None:
                return  # nothing left (or one refused: the next poll() goes on)
            self.process_taken(*taken)
            if self._stop_requested or (gate is not None and not gate.has_room()):
                return

    def process_taken(self, request: Any, client_address: Any) -> None:
        """Process a request `take_request` returned, as ``_handle_request_noblock`` ends."""
        lifecycle = self._lifecycle
        try:
            lifecycle.process_request(request, client_address)
        except Exception:
            lifecycle.handle_error(request, client_address)
            lifecycle.shutdown_request(request)
        except BaseException:
            lifecycle.shutdown_request(request)
            raise


def take_request(lifecycle: RequestLifecycle[R]) -> tuple[R, Any] | None:
    """Get a request and verify it, as ``_handle_request_noblock`` begins.

    None when there was nothing to get (``get_request`` raised OSError) or when
    ``verify_request`` refused the request, which is then shut down.
    """
    try:
        request, client_address = lifecycle.get_request()
    except OSError:
        return None
    if lifecycle.verify_request(request, client_address):
        return request, client_address
    lifecycle.shutdown_request(request)
    return None


def drain(sock: socket.socket) -> None:
    """Read and discard all that is readable now on a non-blocking socket."""
    try:
        while sock.recv(4096):
            pass
    except BlockingIOError:
        pass
