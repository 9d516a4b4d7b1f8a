"""`BlockingRuntime`: the runtime of every blocking concurrency.

One thread runs a `ServeLoop` that takes requests off the listening socket; a
`Scheduler` runs each one (inline, in a thread, in a child process) as a
`RequestJob`: the transport's per-connection setup (a TLS handshake), the
handler, the logging of how it ended, and the release of the request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .._addresses import Address
from .._context import RequestContext
from .._errors import PoolFullError, RefusedError
from .._hub import Hub
from .._limits import DrainReport
from .._log import logger
from ._accept import Acceptor
from ._contract import Deadline, Scheduler, Service, cannot_reload
from ._evict import Evictions
from ._gate import ListenerGate
from ._layering import admit, finish, refuse_connection
from ._loop import ServeLoop
from ._process import current_pid

__all__ = ["BlockingRuntime", "LoopFactory", "RequestJob", "SchedulerFactory"]

SchedulerFactory = Callable[[Callable[[], None]], Scheduler]
"""Makes a runtime's scheduler, given what to call each time a request ends (in the
thread or process that served it)."""

LoopFactory = Callable[["BlockingRuntime", ListenerGate, Scheduler], ServeLoop]
"""Makes a runtime's loop (the default: a `ServeLoop` that takes batches)."""


class RequestJob:
    """One request as a scheduler runs it (see `composerv.abc.Job`)."""

    __slots__ = ("_runtime", "context", "request")

    def __init__(self, runtime: BlockingRuntime, request: Any, context: RequestContext) -> None:
        self._runtime = runtime
        self.request = request
        self.context = context

    def run(self) -> None:
        self._runtime.serve(self)

    def release_in_parent(self) -> None:
        self._runtime.service.transport.close_request_copy(self.request)

    def enter_child(self) -> None:
        service = self._runtime.service
        if service.transport.kind == "stream":  # a datagram is answered on the server's socket
            service.socket.close()

    def drain(self) -> None:
        self.context.drain()

    def cut(self) -> None:
        self.context.cut()

    @property
    def closed_idle(self) -> bool:
        return self.context.closed_idle

    @property
    def peer(self) -> Address:
        return self.context.peer

    @property
    def idle_since(self) -> float | None:
        return self.context.idle_since

    def evict(self) -> bool:
        return self.context.evict()


def _default_loop(runtime: BlockingRuntime, gate: ListenerGate, scheduler: Scheduler) -> ServeLoop:
    return ServeLoop(runtime, gate, nonblocking=True)


class BlockingRuntime:
    """Serves a `Service` with a `ServeLoop` feeding a `Scheduler`.

    It is also the loop's `RequestLifecycle`: the loop calls it to take, process
    and release each request.
    """

    def __init__(
        self,
        service: Service[Any],
        scheduler: SchedulerFactory,
        loop: LoopFactory = _default_loop,
    ) -> None:
        self.service = service
        """What this runtime serves."""
        cap = service.limits.max_connections
        self._gate = ListenerGate(
            None if cap is None else self._has_room,
            self._make_room if cap is not None and service.limits.evict_idle else None,
        )
        self._evictions = Evictions(f"max_connections={cap}")
        self._acceptor = Acceptor(service, self._gate)
        self._stream = service.transport.kind == "stream"
        self._layers = service.handler.layers
        self._hub = Hub(service.limits.max_output_buffer)
        self._pid = current_pid()
        self._scheduler = scheduler(self._request_ended)
        self._loop = loop(self, self._gate, self._scheduler)
        self._serving_here = threading.local()
        self._drained_here: RequestJob | None = None

    # The runtime contract.

    def serve_forever(self, poll_interval: float) -> None:
        self._loop.serve_forever(poll_interval)

    def stop(self) -> None:
        self._loop.request_stop()

    def wait_stopped(self, timeout: float | None) -> bool:
        return self._loop.wait_stopped(timeout)

    @property
    def serving_thread(self) -> object | None:
        return self._loop.serving_thread

    def in_request(self) -> bool:
        return getattr(self._serving_here, "job", None) is not None

    def drain_here(self) -> None:
        job = getattr(self._serving_here, "job", None)
        if job is not None:
            # The drain itself begins once this request is over: it is counted there.
            self._drained_here = job
            job.drain()

    def handle_request(self, timeout: float | None) -> None:
        self._loop.handle_request(timeout)

    def reload(self, service: Service[Any]) -> None:
        cannot_reload(service)

    def drain(self, deadline: Deadline) -> DrainReport:
        # Once stop is asked the loop takes no new request; one it took just before
        # is drained as the scheduler gets it. The listening socket can close now:
        # a loop inside a handler (sync()) does not touch it again.
        self._loop.request_stop()
        self.service.stop_listening()
        report = self._scheduler.drain(deadline)
        if not self._loop.wait_stopped(deadline.remaining()):
            logger.warning("the loop of %r did not stop within the drain", self.service)
        job = self._drained_here
        if job is not None:
            closed_idle = int(job.closed_idle)
            report = DrainReport(
                finished=report.finished + 1 - closed_idle,
                closed_idle=report.closed_idle + closed_idle,
                cut=report.cut,
            )
        return report

    def close(self) -> None:
        if len(self._scheduler):
            logger.warning(
                "%d request(s) of %r still running at close; not waiting for them",
                len(self._scheduler),
                self.service.transport,
            )
            return
        self._scheduler.close()

    def __len__(self) -> int:
        return len(self._scheduler)

    @property
    def waits_on_close(self) -> bool:
        return self._scheduler.waits_on_close

    def _has_room(self) -> bool:
        # No lock: len() is atomic, and a request that ends just after wakes the loop.
        cap = self.service.limits.max_connections
        return cap is None or len(self._scheduler) < cap

    def _make_room(self) -> bool:
        return self._scheduler.make_room(self._evictions)

    def _request_ended(self) -> None:
        # In a child process the parent's gate is unknown (this is a copy): wake it
        # always, so that it reaps the child and accepts again without delay.
        if self._gate.paused or current_pid() != self._pid:
            self._loop.wake()

    # The loop's request lifecycle.

    def fileno(self) -> int:
        return self._acceptor.fileno()

    def get_request(self) -> tuple[Any, Address]:
        return self._acceptor.accept()

    def verify_request(self, request: Any, client_address: Address) -> bool:
        return True

    def process_request(self, request: Any, client_address: Address) -> None:
        if self._stream:
            request = self._acceptor.connection(request, client_address)
            context = request.request_context
        else:
            context = self._acceptor.context(client_address)
        context.hub = self._hub
        job = RequestJob(self, request, context)
        try:
            self._scheduler.submit(job)
        except PoolFullError as exc:
            logger.warning("refused a request from %s: %s", client_address, exc)
            self.service.transport.close_request(job.request)
            self.service.tally.closed(refused=True)
        except BaseException as exc:
            self.service.transport.close_request(job.request)
            self.service.tally.closed(exc)
            raise

    def handle_error(self, request: Any, client_address: Address) -> None:
        logger.exception("error while taking a request from %s", client_address)

    def handle_timeout(self) -> None:
        """A core server has nothing to do when `handle_request` times out."""

    def service_actions(self) -> None:
        self._scheduler.service_actions()

    def shutdown_request(self, request: Any) -> None:
        self.service.transport.close_request(request)

    # What a job does, wherever its scheduler runs it.

    def serve(self, job: RequestJob) -> None:
        """Serve `job`'s request: per-connection setup, the handler, then release it."""
        service = self.service
        transport = service.transport
        context = job.context
        tally = service.tally
        try:
            prepared = transport.prepare_request(job.request, context)
        except Exception as exc:
            context.log_outcome(exc)
            transport.close_request(job.request)
            tally.closed(exc)
            return
        if prepared is None:
            tally.closed(refused=True)
            return  # dropped, logged and closed by the transport
        job.request = prepared
        here = self._serving_here
        here.job = job
        layers = self._layers
        error: BaseException | None = None
        refused = False
        try:
            if layers:
                admit(layers, context)
            service.handler.handle(prepared, context)
        except RefusedError as refusal:
            refused = True
            if self._stream:
                refuse_connection(context, refusal.reply)
        except Exception as exc:
            error = exc
            context.log_outcome(exc)
        finally:
            here.job = None
            if layers or context.outlet is not None:
                finish(layers, context, error)
            transport.close_request(prepared, at_eof=context.at_eof)
            # A datagram's own size: its context reads nothing.
            received = context.bytes_in if self._stream else len(prepared.data)
            tally.closed(error, refused=refused, bytes_in=received, bytes_out=context.bytes_out)
