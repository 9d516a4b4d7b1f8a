"""`workers(n, concurrency)`: one listening socket served by n worker processes.

The parent binds and listens, then forks the workers; each runs the server's
loop on the shared socket with the inner concurrency (a worker that loses the
race for a connection gets ``BlockingIOError``, which the loop ignores, because
the server's socket is non-blocking). The parent accepts nothing: it supervises.
It restarts a worker that dies, pausing when workers die young so a crash loop
does not spin, and on shutdown sends SIGTERM to every worker (each stops
accepting and finishes its requests), waits up to `stop_timeout`, then SIGKILLs
what is left. It waits only for its own children, by pid. A worker whose parent
dies gets SIGTERM from the kernel (Linux) and finishes on its own.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import selectors
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import (
    TYPE_CHECKING,
    Any,
    Generic,
    Protocol,
    TypeVar,
    overload,
    runtime_checkable,
)

import attrs

from .._errors import ConfigurationError
from .._log import logger
from .._validate import positive_int
from ._base import Built, Concurrency, Loop, Scheduler, Work

if TYPE_CHECKING:
    from .._handlers._base import Handler
    from .._limits import Limits
    from .._server._lifecycle import RequestLifecycle
    from .._transports._base import Transport
    from ._threaded import Threaded

__all__ = ["Supervisor", "WorkerPool", "Workers", "workers"]

DEFAULT_STOP_TIMEOUT = 30.0

# A worker that dies sooner than this after starting is taken for a crash loop
# (a bad import, a port it cannot use): restarts then wait, doubling from
# _FIRST_RESTART_DELAY up to _MAX_RESTART_DELAY, instead of forking flat out.
_MIN_UPTIME = 1.0
_FIRST_RESTART_DELAY = 0.1
_MAX_RESTART_DELAY = 10.0
# Without pidfds (Linux < 5.3, other systems) exits are found by polling this often.
_EXIT_POLL = 0.1
_PR_SET_PDEATHSIG = 1


@runtime_checkable
class Supervisor(Protocol):
    """A scheduler that runs the server's loop in other processes and watches them.

    `Server.serve_forever` calls `supervise` instead of running the loop itself,
    and `Server.shutdown` calls `stop`.
    """

    def supervise(self, poll_interval: float) -> None:
        """Serve in worker processes until `stop`; take them all down before returning."""

    def stop(self) -> None:
        """End `supervise`; from another thread, return once it has ended."""


class WorkerPool:
    """The scheduler of `workers`: a supervisor in the parent, the inner scheduler in a worker."""

    def __init__(
        self,
        *,
        count: int,
        build: Callable[[], Built],
        drain_timeout: float,
        stop_timeout: float,
    ) -> None:
        self.count = count
        self.drain_timeout = drain_timeout
        self.stop_timeout = stop_timeout
        # Called in each worker after the fork: an event loop's selector must not
        # be shared with the other workers.
        self._build = build
        self.pids: dict[int, float] = {}
        """Live workers: pid -> when it started (monotonic)."""
        self._inner: Scheduler | None = None
        self._loop: Loop | None = None
        self._lock = threading.Lock()
        self._stop_requested = False
        self._waker: socket.socket | None = None
        self._supervising_thread: threading.Thread | None = None
        self._done = threading.Event()
        self._done.set()
        self._fast_crashes = 0

    # The Scheduler protocol, as a worker process uses it.

    def submit(self, work: Work, release_in_parent: Work) -> None:
        if self._inner is None:
            raise RuntimeError("workers(): requests are served in worker processes only")
        self._inner.submit(work, release_in_parent)

    def service_actions(self) -> None:
        if self._inner is not None:
            self._inner.service_actions()

    def close(self) -> None:
        """In a worker, wait for its requests; in the parent, take the workers down."""
        if self._inner is not None:
            self._inner.close()
            return
        self.stop()
        self._done.wait()

    def __len__(self) -> int:
        """Requests in flight in a worker; live workers in the parent."""
        if self._inner is not None:
            return len(self._inner)
        return len(self.pids)

    # The Supervisor protocol, in the parent.

    def supervise(self, poll_interval: float) -> None:
        wake_reader, wake_writer = socket.socketpair()
        wake_reader.setblocking(False)
        wake_writer.setblocking(False)
        with self._lock:
            if not self._done.is_set():
                wake_reader.close()
                wake_writer.close()
                raise RuntimeError("serve_forever() is already running in another thread")
            self._done.clear()
            self._waker = wake_writer
            self._supervising_thread = threading.current_thread()
        watch = _ExitWatch(wake_reader, poll_interval)
        try:
            restart_at: list[float] = []
            for _ in range(self.count):
                self._start(poll_interval, watch)
            while not self._stop_requested:
                watch.wait(min(restart_at, default=None))
                if self._stop_requested:
                    break
                restart_at.extend(self._reap(watch))
                now = time.monotonic()
                for when in [t for t in restart_at if t <= now]:
                    restart_at.remove(when)
                    self._start(poll_interval, watch)
        finally:
            try:
                self._take_down(watch)
            finally:
                watch.close()
                wake_writer.close()
                with self._lock:
                    self._stop_requested = False
                    self._waker = None
                    self._supervising_thread = None
                    self._done.set()

    def stop(self) -> None:
        if self._inner is not None:
            # In a worker (a handler under sync() asked the server to stop).
            assert self._loop is not None
            self._loop.shutdown()
            return
        with self._lock:
            self._stop_requested = True
            waker = self._waker
            supervising_thread = self._supervising_thread
        if waker is not None:
            # OSError: the pair is full (a wake-up is pending) or closed (supervise ended).
            with contextlib.suppress(OSError):
                waker.send(b"\0")
        # From the supervising thread itself (a signal handler), waiting would deadlock.
        if supervising_thread not in (None, threading.current_thread()):
            self._done.wait()

    def _start(self, poll_interval: float, watch: _ExitWatch) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            self._run_worker(poll_interval, parent, watch)
        self.pids[pid] = time.monotonic()
        watch.add(pid)
        logger.info("started worker %d", pid)

    def _run_worker(self, poll_interval: float, parent: int, watch: _ExitWatch) -> None:
        """The body of a worker process; never returns."""
        status = 1
        try:
            watch.abandon()
            if self._waker is not None:
                self._waker.close()
            self.pids.clear()
            loop, self._inner, event_loop = self._build()
            self._loop = loop
            _become_worker(loop, parent)
            loop.serve_forever(poll_interval)
            if event_loop is not None:
                # The event loop owns its connections: it drains them itself.
                event_loop.drain(time.monotonic() + self.drain_timeout)
            self._inner.close()
            status = 0
        except BaseException:
            logger.exception("worker %d failed", os.getpid())
        finally:
            os._exit(status)

    def _reap(self, watch: _ExitWatch) -> list[float]:
        """Collect workers that exited; return when to start their replacements."""
        restarts = []
        for pid, started in list(self.pids.items()):
            done, status = os.waitpid(pid, os.WNOHANG)
            if not done:
                continue
            self._forget(pid, watch)
            lived = time.monotonic() - started
            self._fast_crashes = self._fast_crashes + 1 if lived < _MIN_UPTIME else 0
            delay = 0.0
            if self._fast_crashes:
                delay = min(
                    _FIRST_RESTART_DELAY * 2 ** (self._fast_crashes - 1), _MAX_RESTART_DELAY
                )
            logger.error(
                "worker %d %s after %.1fs; starting another%s",
                pid,
                _describe_exit(status),
                lived,
                f" in {delay:.1f}s" if delay else "",
            )
            restarts.append(time.monotonic() + delay)
        return restarts

    def _forget(self, pid: int, watch: _ExitWatch) -> None:
        del self.pids[pid]
        watch.remove(pid)

    def _take_down(self, watch: _ExitWatch) -> None:
        if not self.pids:
            return
        logger.info("stopping %d workers (up to %.1fs)", len(self.pids), self.stop_timeout)
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while self.pids and time.monotonic() < deadline:
            for pid in list(self.pids):
                if os.waitpid(pid, os.WNOHANG)[0]:
                    self._forget(pid, watch)
            if self.pids:
                watch.wait(min(deadline, time.monotonic() + _EXIT_POLL))
        for pid in list(self.pids):
            logger.warning(
                "worker %d did not stop within %.1fs; killing it", pid, self.stop_timeout
            )
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            self._forget(pid, watch)


class _ExitWatch:
    """Waits until a worker exits, a wake-up arrives, or a time passes.

    Uses a pidfd per worker where the system has them (Linux 5.3+), so an exit
    is seen at once; elsewhere it polls every _EXIT_POLL seconds. It never waits
    longer than the server's poll interval.
    """

    def __init__(self, wake_reader: socket.socket, poll_interval: float) -> None:
        self._wake_reader = wake_reader
        # Python runs signal handlers in the main thread only between bytecodes: if
        # the kernel delivers the signal to another thread, a select() here without
        # a timeout would keep a handler that calls shutdown() from running.
        self._max_wait = poll_interval
        self._selector = selectors.DefaultSelector()
        self._selector.register(wake_reader, selectors.EVENT_READ)
        self._pidfds: dict[int, int] = {}
        self._poll = not hasattr(os, "pidfd_open")

    def add(self, pid: int) -> None:
        if self._poll:
            return
        pidfd = os.pidfd_open(pid)
        self._pidfds[pid] = pidfd
        self._selector.register(pidfd, selectors.EVENT_READ)

    def remove(self, pid: int) -> None:
        pidfd = self._pidfds.pop(pid, None)
        if pidfd is not None:
            self._selector.unregister(pidfd)
            os.close(pidfd)

    def wait(self, until: float | None) -> None:
        """Wait for an event, or until the monotonic time `until` (None: no limit)."""
        timeout = self._max_wait
        if until is not None:
            timeout = min(timeout, max(0.0, until - time.monotonic()))
        if self._poll:
            timeout = min(timeout, _EXIT_POLL)
        for key, _ in self._selector.select(timeout):
            if key.fileobj is self._wake_reader:
                # Drain wake-ups; the stop flag says what they meant.
                with contextlib.suppress(BlockingIOError):
                    while self._wake_reader.recv(4096):
                        pass

    def close(self) -> None:
        for pid in list(self._pidfds):
            self.remove(pid)
        self._selector.close()
        self._wake_reader.close()

    def abandon(self) -> None:
        """Close this process's copies of the descriptors, in a forked worker.

        Unregistering would change the epoll instance the parent still shares
        with us (it would stop seeing its workers exit): only close.
        """
        for pidfd in self._pidfds.values():
            os.close(pidfd)
        self._selector.close()
        self._wake_reader.close()


def _become_worker(loop: Loop, parent: int) -> None:
    # A supervisor (the CLI) may block these signals to take them with sigwait; a
    # worker takes SIGTERM itself. Ctrl-C reaches the whole process group: the
    # parent decides, and stops the workers with SIGTERM.
    def on_sigterm(_signum: int, _frame: object) -> None:
        # shutdown() waits for the loop, which runs in this very thread: ask from another.
        threading.Thread(target=loop.shutdown, name="composerv-worker-stop").start()

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, on_sigterm)
    # Unblock only now, so that a SIGTERM already pending finds the handler.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        # The parent died before the death signal was armed.
        loop.shutdown()


def _describe_exit(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"


def _worker_concurrency(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, Workers):
        raise ConfigurationError(
            "workers() cannot run inside workers(): give it threaded(), pooled() or evented()"
        )
    if not isinstance(value, Concurrency):
        raise ConfigurationError(
            f"{attribute.name} must be a concurrency value such as threaded(), pooled() or "
            f"evented(), not {value!r}"
        )


def _positive_seconds(_instance: object, attribute: attrs.Attribute[float], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigurationError(
            f"{attribute.name} must be a positive number of seconds, not {value!r}"
        )


C_co = TypeVar("C_co", bound=Concurrency, covariant=True)


@attrs.frozen
class Workers(Concurrency, Generic[C_co]):
    """`count` worker processes sharing the server's socket, each serving with
    `concurrency`; build it with `workers`."""

    count: int = attrs.field(validator=positive_int)
    """How many worker processes serve at once."""
    concurrency: C_co = attrs.field(validator=_worker_concurrency)
    """How each worker serves its requests."""
    stop_timeout: float = attrs.field(default=DEFAULT_STOP_TIMEOUT, validator=_positive_seconds)
    """On shutdown, how long workers get to finish their requests before SIGKILL."""

    def __attrs_post_init__(self) -> None:
        if not hasattr(os, "fork"):
            raise ConfigurationError("workers() needs os.fork, which this platform lacks")

    @property
    def nodelay(self) -> bool:
        """As the concurrency each worker runs."""
        return self.concurrency.nodelay

    def check_handler(self, handler: Handler[Any]) -> None:
        self.concurrency.check_handler(handler)

    def check_transport(self, transport: Transport[Any]) -> None:
        self.concurrency.check_transport(transport)

    def build(
        self,
        lifecycle: RequestLifecycle[Any],
        handler: Handler[Any],
        limits: Limits,
        has_capacity: Callable[[], bool] | None,
        transport: Transport[Any],
    ) -> Built:
        from .._server._lifecycle import ServeLoop

        pool = WorkerPool(
            count=self.count,
            build=functools.partial(
                self.concurrency.build, lifecycle, handler, limits, has_capacity, transport
            ),
            drain_timeout=limits.drain_timeout,
            stop_timeout=self.stop_timeout,
        )
        # The parent serves nothing; its loop only stands for the server's state.
        return Built(ServeLoop(lifecycle, has_capacity), pool, None)


C = TypeVar("C", bound=Concurrency)


@overload
def workers(
    count: int | None = None, *, stop_timeout: float = DEFAULT_STOP_TIMEOUT
) -> Workers[Threaded]: ...


@overload
def workers(
    count: int | None, concurrency: C, *, stop_timeout: float = DEFAULT_STOP_TIMEOUT
) -> Workers[C]: ...


def workers(
    count: int | None = None,
    concurrency: Concurrency | None = None,
    *,
    stop_timeout: float = DEFAULT_STOP_TIMEOUT,
) -> Workers[Any]:
    """Serve with `count` processes (default: one per core), each using `concurrency`.

    Example::

        server = serve(tcp(("0.0.0.0", 8000)), workers(4, evented()), message_handler(fn))
        server.serve_forever()  # supervises; server.shutdown() stops every worker

    `concurrency` defaults to `threaded()`; any concurrency but `workers` itself
    works, an event loop included (each worker runs its own). A worker that dies
    is replaced; on shutdown the workers get `stop_timeout` seconds to finish
    their requests (an event loop drains its connections for the limits'
    ``drain_timeout``).
    """
    from ._threaded import threaded

    return Workers(
        count=(os.cpu_count() or 1) if count is None else count,
        concurrency=threaded() if concurrency is None else concurrency,
        stop_timeout=stop_timeout,
    )
