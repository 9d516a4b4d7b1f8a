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

Replacing workers without refusing a connection (`WorkerSupervisor.reload`, a
worker past ``max_requests``) is one mechanism: a new worker is started and says
it is ready on its channel, about to accept on the shared socket, before the old
one is told to drain; one worker at a time. The listening socket stays open in
the parent throughout, so a connection that arrives in between waits in the
backlog, never refused.

No Python signal handler runs in a worker: a thread takes SIGTERM (see
`take_signals_in_a_thread`), and stopping only sets a flag and writes to a
wake-up socket.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import selectors
import signal
import socket
import threading
import time
from typing import Any, Generic, TypeVar, overload

import attrs

from .._episodes import summarise_episodes
from .._errors import ConfigurationError, ConfigurationTypeError
from .._limits import DrainReport
from .._log import logger
from .._runtime import (
    CUT_GRACE,
    FLUSH_INTERVAL,
    Concurrency,
    Deadline,
    Handler,
    Runtime,
    Service,
    Tally,
    take_signals_in_a_thread,
)
from .._transports._base import Transport
from .._validate import optional_positive_int, positive_int
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
# A new worker only builds its runtime from values the parent has checked, in
# milliseconds: one that has not said it is ready after this long is stuck.
_READY_TIMEOUT = 10.0
# At most this many reads of a channel per turn: its messages are a few lines.
_MAX_READS = 16
# A replaced worker stops accepting, then waits this long before its drain closes
# the connections that have sent nothing yet: a client's first bytes follow its
# connect within a round trip, and a connection accepted just before the order
# is a request on its way, not an idle one (closing it would fail that request).
_RETIRE_GRACE = 0.1


class _Worker:
    """What the parent knows of one worker process, and what the worker said."""

    __slots__ = (
        "_received",
        "control",
        "ended",
        "pid",
        "ready",
        "recycle",
        "report",
        "retiring",
        "started",
    )

    def __init__(self, pid: int, control: socket.socket) -> None:
        self.pid = pid
        self.control = control
        control.setblocking(False)
        self.started = time.monotonic()
        self.report: DrainReport | None = None
        self.ready = False
        """Whether it said it is about to accept (see `_WorkerSide.start`)."""
        self.recycle = False
        """Whether it asked to be replaced (past its ``max_requests``)."""
        self.retiring = False
        """Whether it was replaced and told to drain: it is not restarted."""
        self.ended = False
        """Whether its channel reached end of stream (it exited)."""
        self._received = b""

    def order_drain(self, deadline: Deadline, *, grace: float = 0.0) -> None:
        """Tell the worker to stop and drain by `deadline` (or bring its deadline
        forward), after `grace` seconds without accepting."""
        message = json.dumps({"drain": deadline.remaining(), "grace": grace}).encode() + b"\n"
        try:
            self.control.sendall(message)
        except OSError:
            # The channel is gone (the worker is exiting): a signal still reaches it.
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)

    def receive(self) -> None:
        """Read what the worker has sent, without waiting, and note each whole message."""
        for _ in range(_MAX_READS):
            try:
                chunk = self.control.recv(_MAX_MESSAGE)
            except BlockingIOError:
                break
            except OSError:
                chunk = b""
            if not chunk:
                self.ended = True
                break
            self._received += chunk
        *lines, self._received = self._received.split(b"\n")
        for line in lines:
            with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
                message = json.loads(line)
                if "report" in message:
                    self.report = DrainReport(**message["report"])
                self.ready = self.ready or "ready" in message
                self.recycle = self.recycle or "recycle" in message

    def wait_ready(self, deadline: float) -> bool:
        """Wait until the worker says it is ready; False if it exits or `deadline` passes."""
        with selectors.DefaultSelector() as selector:
            selector.register(self.control, selectors.EVENT_READ)
            while not (self.ready or self.ended):  # bounded by the deadline
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                selector.select(remaining)
                self.receive()
        return self.ready


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
        # A reload asked by another thread: the service to serve, and its outcome.
        self._reload: _Reload | None = None

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
            while len(self._serving()) + len(self._restarts) < self._spec.count:
                self._start(poll_interval)
            while not self._stop_requested:
                watch.wait(min(self._restarts, default=None))
                self._service.tally.collect()  # what the workers counted
                if self._stop_requested:
                    break
                for worker in list(self._workers.values()):
                    worker.receive()
                self._restarts.extend(self._reap())
                self._replace([w for w in self._serving() if w.recycle], poll_interval)
                self._take_reload(poll_interval)
                now = time.monotonic()
                for when in [t for t in self._restarts if t <= now]:
                    self._restarts.remove(when)
                    self._start(poll_interval)
        finally:
            self._end_reload(RuntimeError("the server stopped before the reload was done"))
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
        self._wake()

    def _wake(self) -> None:
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

    def reload(self, service: Service[Any]) -> None:
        """Replace the workers, one at a time, with workers serving `service`: each new
        one is ready to accept before an old one is told to drain. Returns once every
        worker was replaced; raises `RuntimeError` if a new worker did not start (the
        old ones it was to replace keep serving) or the server stopped meanwhile."""
        reload = _Reload(service)
        with self._lock:
            if self._supervising_thread is None:
                self._service = service  # the workers start with it
                return
            self._reload = reload
        self._wake()
        # Each new worker has _READY_TIMEOUT to start; the turns between take little.
        if not reload.done.wait(self._spec.count * _READY_TIMEOUT * 2):
            raise RuntimeError("the reload did not finish in time")
        if reload.error is not None:
            raise reload.error

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

    def _serving(self) -> list[_Worker]:
        """The workers that serve for good: not those replaced and draining."""
        return [worker for worker in self._workers.values() if not worker.retiring]

    def _start(self, poll_interval: float) -> _Worker:
        assert self._watch is not None  # made by serve_forever
        spec = self._spec
        max_requests = None
        if spec.max_requests is not None:
            # Jitter, so that workers started together are not all replaced together.
            max_requests = spec.max_requests + random.randint(
                0, spec.max_requests_jitter
            )  # not for security
        parent_end, worker_end = socket.socketpair()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            parent_end.close()
            self._run_worker(worker_end, poll_interval, parent, max_requests)
        worker_end.close()
        worker = self._workers[pid] = _Worker(pid, parent_end)
        self._watch.add(pid, parent_end)
        logger.info("started worker %d", pid)
        return worker

    def _replace(self, old: list[_Worker], poll_interval: float) -> bool:
        """Replace each of `old` in turn: start a worker, wait until it is ready, then
        tell the old one to drain. False, logged, if a new one does not start: the
        old workers not replaced yet keep serving."""
        for worker in old:
            if self._stop_requested:
                return False
            new = self._start(poll_interval)
            if not new.wait_ready(time.monotonic() + _READY_TIMEOUT):
                logger.error(
                    "worker %d did not start within %gs; worker %d keeps serving",
                    new.pid,
                    _READY_TIMEOUT,
                    worker.pid,
                )
                new.retiring = True
                new.order_drain(Deadline(time.monotonic()))
                return False
            worker.retiring = True
            worker.order_drain(
                Deadline.after(self._service.limits.drain_timeout), grace=_RETIRE_GRACE
            )
            logger.info("worker %d replaces worker %d, which drains", new.pid, worker.pid)
        return True

    def _take_reload(self, poll_interval: float) -> None:
        """Carry out a reload another thread asked for (see `reload`)."""
        with self._lock:
            reload, self._reload = self._reload, None
        if reload is None:
            return
        self._service = reload.service
        started = time.monotonic()
        if self._replace(self._serving(), poll_interval):
            logger.info(
                "reloaded: %d workers replaced in %.2fs",
                self._spec.count,
                time.monotonic() - started,
            )
            reload.finish(None)
        else:
            reload.finish(RuntimeError("a new worker did not start; see the log"))

    def _end_reload(self, error: BaseException) -> None:
        with self._lock:
            reload, self._reload = self._reload, None
        if reload is not None:
            reload.finish(error)

    def _run_worker(
        self, control: socket.socket, poll_interval: float, parent: int, max_requests: int | None
    ) -> None:
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
            counting = _count_in_worker(service.tally, worker, max_requests)
            worker.send({"ready": True})  # about to accept
            runtime.serve_forever(poll_interval)
            worker.wait_grace()
            report = runtime.drain(worker.deadline())
            runtime.close()
            worker.send_report(report)
            counting.set()
            status = 0
        except BaseException:
            logger.exception("worker %d failed", os.getpid())
        finally:
            self._service.tally.flush()
            summarise_episodes()
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
        restarts: list[float] = []
        for worker in list(self._workers.values()):
            done, status = os.waitpid(worker.pid, os.WNOHANG)
            if not done:
                continue
            self._forget(worker)
            if worker.retiring:
                logger.info("replaced worker %d %s", worker.pid, _describe_exit(status))
                continue
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
        worker.receive()
        # A replaced worker's drain is its own, not the server's.
        if worker.report is not None and not worker.retiring:
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


def _count_in_worker(tally: Tally, side: _WorkerSide, max_requests: int | None) -> threading.Event:
    """In a worker: ask to be replaced when its `max_requests`-th request ends, and
    send what it counted to the parent every FLUSH_INTERVAL, also while it is idle,
    until the event returned is set (then once more)."""
    if max_requests is not None:
        tally.when_served(max_requests, lambda: side.send({"recycle": max_requests}))
    done = threading.Event()

    def send() -> None:
        while not done.wait(FLUSH_INTERVAL):  # as long as the worker serves
            tally.flush()
        tally.flush()

    threading.Thread(target=send, name="composerv-worker-counts", daemon=True).start()
    return done


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
        self._grace = 0.0
        self._graced = threading.Event()  # set by an order with no grace: drain at once

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

    def wait_grace(self) -> None:
        """Before the drain: wait out the grace of the order that stopped the worker
        (a replacement's), unless a later order asked to drain at once."""
        if self._grace:
            self._graced.wait(self._grace)

    def _stop(self, seconds: float, grace: float = 0.0) -> None:
        if self._deadline is None:
            self._grace = grace
        if not grace:
            self._graced.set()
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
                    order = json.loads(line)
                    self._stop(float(order["drain"]), float(order.get("grace", 0.0)))
        if self._deadline is None:
            logger.warning("worker %d: the supervisor is gone; stopping", os.getpid())
            self._stop(self._drain_timeout)

    def send_report(self, report: DrainReport) -> None:
        self.send({"report": attrs.asdict(report)})

    def send(self, message: dict[str, object]) -> None:
        """Send `message` to the parent, one line of JSON (lost if it is gone)."""
        with contextlib.suppress(OSError):
            self._control.sendall(json.dumps(message).encode() + b"\n")


class _Reload:
    """A reload asked of the supervising thread, and how it went."""

    __slots__ = ("done", "error", "service")

    def __init__(self, service: Service[Any]) -> None:
        self.service = service
        self.done = threading.Event()
        self.error: BaseException | None = None

    def finish(self, error: BaseException | None) -> None:
        self.error = error
        self.done.set()


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
        self._controls: dict[int, socket.socket] = {}
        self._poll = not hasattr(os, "pidfd_open")

    def set_waker(self, wake_reader: socket.socket | None) -> None:
        """Wake on `wake_reader` too (None: no longer)."""
        if self._wake_reader is not None:
            self._selector.unregister(self._wake_reader)
        self._wake_reader = wake_reader
        if wake_reader is not None:
            self._selector.register(wake_reader, selectors.EVENT_READ)

    def add(self, pid: int, control: socket.socket) -> None:
        """Wake when worker `pid` exits or writes on its `control` channel."""
        self._controls[pid] = control
        self._selector.register(control, selectors.EVENT_READ)
        if self._poll:
            return
        pidfd = os.pidfd_open(pid)
        self._pidfds[pid] = pidfd
        self._selector.register(pidfd, selectors.EVENT_READ)

    def remove(self, pid: int) -> None:
        control = self._controls.pop(pid, None)
        if control is not None:
            self._selector.unregister(control)
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
            wake_reader = self._wake_reader
            if wake_reader is not None and key.fileobj is wake_reader:
                # Drain wake-ups; the stop flag says what they meant.
                with contextlib.suppress(BlockingIOError):
                    while wake_reader.recv(4096):
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


def _jitter(_instance: object, attribute: attrs.Attribute[int], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(
            f"{attribute.name} must be a non-negative int number of requests, not {value!r}"
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
    max_requests: int | None = attrs.field(default=None, validator=optional_positive_int)
    """Replace a worker once it has served this many requests (None: never), as a
    reload does: its replacement accepts before it drains. Bounds what a slow leak
    in the application can grow to."""
    max_requests_jitter: int = attrs.field(default=0, validator=_jitter)
    """Up to this many more requests, drawn per worker, so that workers started
    together are not all replaced together."""

    def __attrs_post_init__(self) -> None:
        if not hasattr(os, "fork"):
            raise ConfigurationError("workers() needs os.fork, which this platform lacks")
        if self.max_requests_jitter and self.max_requests is None:
            raise ConfigurationError(
                f"max_requests_jitter={self.max_requests_jitter} needs max_requests, the "
                "count it adds to"
            )

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
def workers(
    count: int | None = None, *, max_requests: int | None = None, max_requests_jitter: int = 0
) -> Workers[Threaded]: ...


@overload
def workers(
    count: int | None,
    concurrency: C,
    *,
    max_requests: int | None = None,
    max_requests_jitter: int = 0,
) -> Workers[C]: ...


def workers(
    count: int | None = None,
    concurrency: Concurrency | None = None,
    *,
    max_requests: int | None = None,
    max_requests_jitter: int = 0,
) -> Workers[Any]:
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

    `Server.reload` replaces the workers one at a time with ones serving a new
    handler, each new one accepting before an old one drains; so does a worker
    past `max_requests` (plus up to `max_requests_jitter`), on its own.
    """
    return Workers(
        count=(os.cpu_count() or 1) if count is None else count,
        concurrency=threaded() if concurrency is None else concurrency,
        max_requests=max_requests,
        max_requests_jitter=max_requests_jitter,
    )
