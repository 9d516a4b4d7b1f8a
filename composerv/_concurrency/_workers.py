"""`workers(n, concurrency)`: one listening socket served by n worker processes.

The parent binds and listens, then forks the workers; each builds the inner
concurrency's runtime on the shared socket and serves (a worker that loses the
race for a connection gets ``BlockingIOError``, which its loop ignores, because
the socket is non-blocking). The parent accepts nothing: it supervises. It
restarts a worker that dies, pausing when workers die young so a crash loop does
not spin, and waits only for its own children, by pid.

Each worker has a control channel to the parent (a socket pair). On it the
parent tells a worker to drain by a deadline, and the worker sends back what its
drain did, so the server's `DrainReport` counts every worker's requests. When
the parent dies, the channel reaches end of stream and the worker stops (closes
its listening socket, drains, exits) on its own: this works on any system and,
unlike Linux's parent-death signal, is not set off when the thread that forked
the worker ends. A SIGTERM sent to a worker directly drains it by the limits'
``drain_timeout``.

No Python signal handler runs in a worker: a thread takes SIGTERM (see
`take_signals_in_a_thread`), and stopping only sets a flag and writes to a
wake-up socket.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import threading
import time
from typing import Any, Generic, TypeVar, overload

import attrs

from .._errors import ConfigurationError, ConfigurationTypeError
from .._limits import DrainReport
from .._log import logger
from .._runtime import (
    CUT_GRACE,
    Concurrency,
    Deadline,
    Handler,
    Runtime,
    Service,
    take_signals_in_a_thread,
)
from .._transports._base import Transport
from .._validate import positive_int
from ._threaded import Threaded, threaded

__all__ = ["WorkerSupervisor", "Workers", "workers"]

# A worker that dies sooner than this after starting is taken for a crash loop
# (a bad import, a port it cannot use): restarts then wait, doubling from
# _FIRST_RESTART_DELAY up to _MAX_RESTART_DELAY, instead of forking flat out.
_MIN_UPTIME = 1.0
_FIRST_RESTART_DELAY = 0.1
_MAX_RESTART_DELAY = 10.0
# Without pidfds (Linux < 5.3, other systems) exits are found by polling this often.
_EXIT_POLL = 0.1
# The longest control message: a drain order or a report, a line of JSON.
_MAX_MESSAGE = 4096


class _Worker:
    """What the parent knows of one worker process."""

    __slots__ = ("control", "pid", "report", "started")

    def __init__(self, pid: int, control: socket.socket) -> None:
        self.pid = pid
        self.control = control
        self.started = time.monotonic()
        self.report: DrainReport | None = None

    def order_drain(self, deadline: Deadline) -> None:
        """Tell the worker to stop and drain by `deadline` (or bring its deadline forward)."""
        message = json.dumps({"drain": deadline.remaining()}).encode() + b"\n"
        try:
            self.control.sendall(message)
        except OSError:
            # The channel is gone (the worker is exiting): a signal still reaches it.
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)

    def collect_report(self) -> None:
        """Read the report the worker sent before it exited, if it sent one."""
        self.control.setblocking(False)
        data = b""
        with contextlib.suppress(OSError):
            while chunk := self.control.recv(_MAX_MESSAGE):
                data += chunk
        for line in data.splitlines():
            with contextlib.suppress(ValueError, TypeError, KeyError):
                fields = json.loads(line)["report"]
                self.report = DrainReport(**fields)


class WorkerSupervisor:
    """The runtime of `workers`, in the parent: starts, watches and restarts the workers."""

    def __init__(self, service: Service[Any], spec: Workers[Any]) -> None:
        self._service = service
        self._spec = spec
        self._workers: dict[int, _Worker] = {}
        self._lock = threading.Lock()
        self._stop_requested = False
        self._waker: socket.socket | None = None
        self._supervising_thread: threading.Thread | None = None
        self._done = threading.Event()
        self._done.set()
        self._fast_crashes = 0
        self._restarts: list[float] = []
        self._watch: _ExitWatch | None = None
        self._reports: list[DrainReport] = []
        self._lost = 0

    # The runtime contract.

    def serve_forever(self, poll_interval: float) -> None:
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
        if self._watch is None:
            self._watch = _ExitWatch(poll_interval)
        watch = self._watch
        watch.set_waker(wake_reader)
        try:
            while len(self._workers) + len(self._restarts) < self._spec.count:
                self._start(poll_interval)
            while not self._stop_requested:
                watch.wait(min(self._restarts, default=None))
                if self._stop_requested:
                    break
                self._restarts.extend(self._reap())
                now = time.monotonic()
                for when in [t for t in self._restarts if t <= now]:
                    self._restarts.remove(when)
                    self._start(poll_interval)
        finally:
            watch.set_waker(None)
            wake_reader.close()
            wake_writer.close()
            with self._lock:
                self._stop_requested = False
                self._waker = None
                self._supervising_thread = None
                self._done.set()

    def stop(self) -> None:
        # No lock: this may run in a signal handler on the supervising thread.
        self._stop_requested = True
        waker = self._waker
        if waker is not None:
            # OSError: the pair is full (a wake-up is pending) or closed (supervise ended).
            with contextlib.suppress(OSError):
                waker.send(b"\0")

    def wait_stopped(self, timeout: float | None) -> bool:
        return self._done.wait(timeout)

    @property
    def serving_thread(self) -> object | None:
        return self._supervising_thread

    def in_request(self) -> bool:
        """The parent serves no request itself."""
        return False

    def drain_here(self) -> None:
        """The parent serves no request itself."""

    def handle_request(self, timeout: float | None) -> None:
        raise RuntimeError(
            "under workers(), requests are served in the worker processes: call "
            "serve_forever(), which starts and supervises them"
        )

    def drain(self, deadline: Deadline) -> DrainReport:
        """Stop supervising, have every worker drain by `deadline`, and sum their reports.

        A worker still running at the deadline (plus the time its own drain needs
        to cut and settle) is killed; what it was serving is counted as cut."""
        self.stop()
        self._done.wait(deadline.remaining())
        self._service.stop_listening()
        self._take_down(deadline)
        finished = closed_idle = cut = 0
        for report in self._reports:
            finished += report.finished
            closed_idle += report.closed_idle
            cut += report.cut
        return DrainReport(finished=finished, closed_idle=closed_idle, cut=cut + self._lost)

    def close(self) -> None:
        """Take down any worker still running (a server closed without a drain)."""
        if self._workers:
            self._take_down(Deadline(time.monotonic()))
        if self._watch is not None:
            self._watch.close()
            self._watch = None

    def __len__(self) -> int:
        """How many worker processes run."""
        return len(self._workers)

    @property
    def waits_on_close(self) -> bool:
        """Closing the server drains the workers."""
        return True

    # Supervision.

    def _start(self, poll_interval: float) -> None:
        assert self._watch is not None  # made by serve_forever
        parent_end, worker_end = socket.socketpair()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            parent_end.close()
            self._run_worker(worker_end, poll_interval, parent)
        worker_end.close()
        self._workers[pid] = _Worker(pid, parent_end)
        self._watch.add(pid)
        logger.info("started worker %d", pid)

    def _run_worker(self, control: socket.socket, poll_interval: float, parent: int) -> None:
        """The body of a worker process; never returns."""
        status = 1
        try:
            self._forget_parent_state()
            limits = self._service.limits
            # Only the parent removes what binding left (a unix path): others still serve.
            service = attrs.evolve(self._service, stop_listening=self._service.socket.close)
            runtime = self._spec.concurrency.build(service)
            worker = _WorkerSide(runtime, control, limits.drain_timeout)
            worker.start(parent)
            runtime.serve_forever(poll_interval)
            report = runtime.drain(worker.deadline())
            runtime.close()
            worker.send_report(report)
            status = 0
        except BaseException:
            logger.exception("worker %d failed", os.getpid())
        finally:
            os._exit(status)

    def _forget_parent_state(self) -> None:
        """In a new worker: close this process's copies of the parent's descriptors."""
        if self._watch is not None:
            self._watch.abandon()
        if self._waker is not None:
            self._waker.close()
        for worker in self._workers.values():
            worker.control.close()
        self._workers.clear()

    def _reap(self) -> list[float]:
        """Collect workers that exited; return when to start their replacements."""
        restarts = []
        for worker in list(self._workers.values()):
            done, status = os.waitpid(worker.pid, os.WNOHANG)
            if not done:
                continue
            self._forget(worker)
            lived = time.monotonic() - worker.started
            self._fast_crashes = self._fast_crashes + 1 if lived < _MIN_UPTIME else 0
            delay = 0.0
            if self._fast_crashes:
                delay = min(
                    _FIRST_RESTART_DELAY * 2 ** (self._fast_crashes - 1), _MAX_RESTART_DELAY
                )
            logger.error(
                "worker %d %s after %.1fs; starting another%s",
                worker.pid,
                _describe_exit(status),
                lived,
                f" in {delay:.1f}s" if delay else "",
            )
            restarts.append(time.monotonic() + delay)
        return restarts

    def _forget(self, worker: _Worker) -> None:
        worker.collect_report()
        if worker.report is not None:
            self._reports.append(worker.report)
        worker.control.close()
        del self._workers[worker.pid]
        assert self._watch is not None  # made by serve_forever
        self._watch.remove(worker.pid)

    def _take_down(self, deadline: Deadline) -> None:
        """Have every worker drain by `deadline` and exit; kill what is left once the
        workers' own cut and settle had time too. A deadline brought forward (a
        second stop) is passed on at once."""
        self._restarts.clear()
        if not self._workers:
            return
        assert self._watch is not None  # made by serve_forever
        logger.info("stopping %d workers (up to %.1fs)", len(self._workers), deadline.remaining())
        ordered = None
        while self._workers and time.monotonic() < deadline.at + CUT_GRACE + _EXIT_POLL:
            if ordered != deadline.at:
                ordered = deadline.at
                for worker in self._workers.values():
                    worker.order_drain(deadline)
            for worker in list(self._workers.values()):
                if os.waitpid(worker.pid, os.WNOHANG)[0]:
                    self._forget(worker)
            if self._workers:
                self._watch.wait(time.monotonic() + _EXIT_POLL)
        for worker in list(self._workers.values()):
            logger.warning("worker %d did not stop in time; killing it", worker.pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGKILL)
            os.waitpid(worker.pid, 0)
            self._lost += 1
            self._forget(worker)


class _WorkerSide:
    """A worker's end of its control channel: drain orders in, its report out.

    A thread reads the channel: an order to drain stops the runtime (and brings
    its drain deadline forward); the end of the channel means the parent died.
    SIGTERM, taken by another thread (see `take_signals_in_a_thread`), stops the
    runtime the same way; SIGINT is the parent's to decide on.
    """

    def __init__(self, runtime: Runtime, control: socket.socket, drain_timeout: float) -> None:
        self._runtime = runtime
        self._control = control
        self._drain_timeout = drain_timeout
        self._deadline: Deadline | None = None

    def start(self, parent: int) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        take_signals_in_a_thread(
            {signal.SIGTERM},
            lambda _signum: self._stop(self._drain_timeout),
            "composerv-worker-stop",
        )
        threading.Thread(target=self._listen, name="composerv-worker-control", daemon=True).start()
        if os.getppid() != parent:
            self._stop(self._drain_timeout)  # the parent died before the watch was armed

    def deadline(self) -> Deadline:
        """The drain deadline: the parent's, or the limits' from when the stop came."""
        if self._deadline is None:
            self._deadline = Deadline.after(self._drain_timeout)
        return self._deadline

    def _stop(self, seconds: float) -> None:
        at = time.monotonic() + seconds
        if self._deadline is None:
            self._deadline = Deadline(at)
        else:
            self._deadline.bring_forward(at)
        self._runtime.stop()

    def _listen(self) -> None:
        reader = self._control.makefile("rb")
        with contextlib.suppress(OSError, ValueError):
            for line in reader:
                with contextlib.suppress(ValueError, TypeError, KeyError):
                    self._stop(float(json.loads(line)["drain"]))
        if self._deadline is None:
            logger.warning("worker %d: the supervisor is gone; stopping", os.getpid())
            self._stop(self._drain_timeout)

    def send_report(self, report: DrainReport) -> None:
        message = {"report": attrs.asdict(report)}
        with contextlib.suppress(OSError):
            self._control.sendall(json.dumps(message).encode() + b"\n")


class _ExitWatch:
    """Waits until a worker exits, a wake-up arrives, or a time passes.

    Uses a pidfd per worker where the system has them (Linux 5.3+), so an exit
    is seen at once; elsewhere it polls every _EXIT_POLL seconds. It never waits
    longer than the server's poll interval.
    """

    def __init__(self, poll_interval: float) -> None:
        # Python runs signal handlers in the main thread only between bytecodes: if
        # the kernel delivers the signal to another thread, a select() here without
        # a timeout would keep a handler that calls shutdown() from running.
        self._max_wait = poll_interval
        self._selector = selectors.DefaultSelector()
        self._wake_reader: socket.socket | None = None
        self._pidfds: dict[int, int] = {}
        self._poll = not hasattr(os, "pidfd_open")

    def set_waker(self, wake_reader: socket.socket | None) -> None:
        """Wake on `wake_reader` too (None: no longer)."""
        if self._wake_reader is not None:
            self._selector.unregister(self._wake_reader)
        self._wake_reader = wake_reader
        if wake_reader is not None:
            self._selector.register(wake_reader, selectors.EVENT_READ)

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

    def abandon(self) -> None:
        """Close this process's copies of the descriptors, in a forked worker.

        Unregistering would change the epoll instance the parent still shares
        with us (it would stop seeing its workers exit): only close.
        """
        for pidfd in self._pidfds.values():
            os.close(pidfd)
        self._selector.close()


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
        raise ConfigurationTypeError(
            f"{attribute.name} must be a concurrency value such as threaded(), pooled() or "
            f"evented(), not {value!r}"
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

    def __attrs_post_init__(self) -> None:
        if not hasattr(os, "fork"):
            raise ConfigurationError("workers() needs os.fork, which this platform lacks")

    @property
    def nodelay(self) -> bool:
        """As the concurrency each worker runs."""
        return self.concurrency.nodelay

    def check(self, transport: Transport[Any], handler: Handler[Any]) -> None:
        self.concurrency.check(transport, handler)

    def build(self, service: Service[Any]) -> Runtime:
        return WorkerSupervisor(service, self)


C = TypeVar("C", bound=Concurrency)


@overload
def workers(count: int | None = None) -> Workers[Threaded]: ...


@overload
def workers(count: int | None, concurrency: C) -> Workers[C]: ...


def workers(count: int | None = None, concurrency: Concurrency | None = None) -> Workers[Any]:
    """Serve with `count` processes (default: one per core), each using `concurrency`.

    Example::

        server = serve(tcp(("0.0.0.0", 8000)), workers(4, evented()), message_handler(fn))
        server.serve_forever()  # supervises; server.shutdown(drain=5.0) drains every worker

    `concurrency` defaults to `threaded()`; any concurrency but `workers` itself
    works, an event loop included (each worker runs its own). A worker that dies
    is replaced. A drain (``shutdown(drain=...)``, ``server_close()``) reaches every
    worker: each stops accepting, closes its idle connections, lets its requests
    finish by the deadline and reports, so the `DrainReport` covers them all. A
    worker whose parent dies stops by itself. Module state is per process: each
    worker has its own copy of what the parent held when it forked.
    """
    return Workers(
        count=(os.cpu_count() or 1) if count is None else count,
        concurrency=threaded() if concurrency is None else concurrency,
    )
