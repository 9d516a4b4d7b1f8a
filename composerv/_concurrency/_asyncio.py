"""`asyncio_loop()`: serve `async_stream_handler` connections on one asyncio event loop.

Each connection's coroutine reads through a `_TrackedReader`, which knows whether
the coroutine waits for a new request (nothing buffered) or for the rest of one,
and since when. With that, the loop keeps the limits as `evented()` does, by a
sweep: a wait for a new request longer than ``idle_timeout``, or for the rest of
one longer than ``read_timeout`` after its first byte, raises `TimeoutError` in
the coroutine's read (never a short read that looks like the end of the stream);
a write that does not drain within ``write_timeout`` aborts the connection. A
drain closes the connections that wait for a new request (their read sees end of
stream) and lets the others finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import select
import socket
import threading
from collections.abc import Iterable
from typing import Any, Literal, SupportsIndex

import attrs

from .._addresses import Address
from .._context import RequestContext, bytes_waiting
from .._errors import ConfigurationError, HandlerMismatchError, ProxyHeaderError, RefusedError
from .._handlers._async import CountingReader, ServerWriter, serve_with_streams
from .._limits import DrainReport, Limits, sweep_interval
from .._log import logger
from .._runtime import (
    Acceptor,
    AsyncForm,
    Deadline,
    Evictions,
    Handler,
    ListenerGate,
    Runtime,
    ServeLoop,
    Service,
    admit,
    cannot_reload,
    drain,
    drain_requests,
    finish,
    take_request,
)
from .._transports._base import Transport
from .._transports._proxy import HeaderReader, Relayed
from .._transports._tls import TLS
from .._validate import flag
from ._base import EventLoopConcurrency

__all__ = ["AsyncioLoop", "asyncio_loop"]


def _new_event_loop(use_uvloop: bool) -> asyncio.AbstractEventLoop:
    if not use_uvloop:
        return asyncio.new_event_loop()
    # Imported only when asked for: uvloop is an optional dependency.
    loop: asyncio.AbstractEventLoop = importlib.import_module("uvloop").new_event_loop()
    return loop


def _output_waits(transport: asyncio.Transport) -> bool:
    """Whether output waits for the peer: in the transport's buffer, or in a socket
    buffer the peer does not empty. (Under TLS the encrypted bytes wait in a socket
    transport asyncio does not show: the TLS transport's own buffer is empty.)"""
    if transport.get_write_buffer_size():
        return True
    sock = transport.get_extra_info("socket")
    if sock is None:
        return False
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLOUT)
    return not poller.poll(0)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _TrackedReader(CountingReader):
    """A stream reader that knows what its coroutine waits for, and since when."""

    def __init__(self, limit: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit, loop)
        self._clock = loop.time
        self.waiting_since: float | None = None
        """When the coroutine began to wait for data, if it waits now."""
        self.idle = False
        """Whether that wait began with nothing buffered: between requests."""
        self.request_since: float | None = None
        """When the first byte of the request being read arrived."""
        self.fresh = True
        """Whether nothing has arrived yet (the first wait has its own limit)."""

    def feed_data(self, data: Iterable[SupportsIndex]) -> None:
        if data and not self._buffer:  # type: ignore[attr-defined]  # StreamReader's buffer, since 3.4
            self.request_since = self._clock()
            self.fresh = False
        super().feed_data(data)

    async def _wait_for_data(self, func_name: str) -> None:
        # Every read of a StreamReader that lacks data waits here (CPython 3.4+).
        # A sweep can time out a wait whose data has just arrived: the waiter is
        # resolved already, so the error is only stored, and StreamReader's read
        # loops would wait again without looking at it.
        if (error := self.exception()) is not None:
            raise error
        self.idle = not self._buffer  # type: ignore[attr-defined]  # StreamReader's buffer
        self.waiting_since = self._clock()
        try:
            await super()._wait_for_data(func_name)  # type: ignore[misc]  # a private hook
        finally:
            self.waiting_since = None

    def timed_out(self, limits: Limits, now: float) -> TimeoutError | None:
        """The error to end this connection's wait with, if it outstayed its limit."""
        if self.waiting_since is None:
            return None
        if self.idle and self.fresh:
            limit, error = limits.first_wait, limits.first_wait_timed_out
            since = self.waiting_since
        elif self.idle:
            limit, since, error = limits.idle_timeout, self.waiting_since, limits.idle_timed_out
        else:
            since = self.request_since or self.waiting_since
            limit, error = limits.read_timeout, limits.read_timed_out
        return error() if limit is not None and now - since > limit else None


class _Client:
    """One connection's task and its reader, as the loop keeps them."""

    __slots__ = (
        "closed_by_drain",
        "evicted",
        "peer",
        "reader",
        "sock",
        "task",
        "timed_out",
        "transport",
        "write_blocked_since",
        "writer",
    )

    def __init__(self, sock: socket.socket, peer: Address) -> None:
        self.sock = sock
        self.peer = peer
        self.evicted = False
        self.closed_by_drain = False
        self.task: asyncio.Task[None] | None = None
        self.reader: _TrackedReader | None = None
        self.transport: asyncio.Transport | None = None
        self.writer: ServerWriter | None = None
        self.write_blocked_since: float | None = None
        self.timed_out = False

    @property
    def idle(self) -> bool:
        """Whether it waits for a new request with its replies sent: under TLS a reply
        can wait in asyncio's buffers while the coroutine reads again."""
        reader, transport = self.reader, self.transport
        return (
            reader is not None
            and reader.waiting_since is not None
            and reader.idle
            and not (transport is not None and _output_waits(transport))
        )

    @property
    def idle_since(self) -> float | None:
        """Since when (loop time) it waits for a new request, if it does (for eviction)."""
        if not self.idle or self.evicted:
            return None
        assert self.reader is not None  # idle means it reads
        return self.reader.waiting_since

    def evict(self) -> bool:
        """Close it as a drain does (its reader sees end of stream), unless its next
        request has arrived already."""
        if bytes_waiting(self.sock):
            return False
        assert self.reader is not None  # evicted only while idle
        self.evicted = True
        self.reader.feed_eof()
        return True


class AsyncioServeLoop(ServeLoop):
    """The runtime of `asyncio_loop()`: accepts through the acceptor and serves each
    connection as a task on an event loop that lives as long as the server.

    Over `tls`, each connection's task runs its handshake first, without blocking
    the loop; a failed one is logged in one line and closes that connection only.
    """

    def __init__(
        self, service: Service[Any], form: AsyncForm, *, use_uvloop: bool, tls: TLS | None
    ) -> None:
        cap = service.limits.max_connections
        gate = ListenerGate(
            None if cap is None else self._has_room,
            self._make_room if cap is not None and service.limits.evict_idle else None,
        )
        super().__init__(self, gate)
        self._service = service
        self._evictions = Evictions(f"max_connections={cap}")
        self._acceptor = Acceptor(service, gate)
        self._form = form
        self._tls = tls
        self._proxy = service.transport.proxy_protocol
        self._limits = service.limits
        self._layers = service.handler.layers
        self._loop = _new_event_loop(use_uvloop)
        self._clients: dict[asyncio.Task[None], _Client] = {}
        self._accepted: asyncio.Future[asyncio.Task[None]] | None = None
        self._serving = False
        self._listening = False
        self._resume: asyncio.TimerHandle | None = None
        self._draining = False
        self._drained = 0
        self._closed_idle = 0
        self._cut = 0
        self._sweep_every = sweep_interval(self._limits)
        self._sweeper: asyncio.TimerHandle | None = None

    # The loop's request lifecycle.

    def fileno(self) -> int:
        return self._acceptor.fileno()

    def get_request(self) -> tuple[Any, Address]:
        return self._acceptor.accept()

    def verify_request(self, request: Any, client_address: Address) -> bool:
        return True

    def process_request(self, request: Any, client_address: Address) -> None:
        """Never called: the loop serves what it takes itself."""

    def handle_error(self, request: Any, client_address: Address) -> None:
        """Never called: each connection's task logs how it ended."""

    def handle_timeout(self) -> None:
        """Nothing to do when `handle_request` times out."""

    def service_actions(self) -> None:
        """Tasks remove themselves when done; nothing to tidy."""

    def shutdown_request(self, request: Any) -> None:
        self._service.transport.close_request(request)

    # The runtime contract.

    def stop(self) -> None:
        self.request_stop()

    def in_request(self) -> bool:
        """Handlers run on the loop's own thread."""
        return self.serving_thread is threading.current_thread()

    def drain_here(self) -> None:
        """Handlers do not block the loop: it drains once it returns."""

    def reload(self, service: Service[Any]) -> None:
        cannot_reload(service)

    def close(self) -> None:
        """Cancel the connections still being served, wait for them, close the loop."""
        loop = self._loop
        self._cancel_timers()
        if self._clients:
            for task in self._clients:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*self._clients, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    def __len__(self) -> int:
        return len(self._clients)

    @property
    def waits_on_close(self) -> bool:
        """Closing the server drains its connections."""
        return True

    def drain(self, deadline: Deadline) -> DrainReport:
        self.request_stop()
        if not self.wait_stopped(deadline.remaining()):
            logger.warning("the event loop of %r did not stop within the drain", self._service)
        return drain_requests(self, deadline)

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        with self.running_loop() as wake_reader:
            if self._stop_requested:
                return
            loop = self._loop
            stopped = loop.create_future()

            def wake() -> None:
                drain(wake_reader)
                if self._stop_requested and not stopped.done():
                    stopped.set_result(None)
                self._update_listener()

            loop.add_reader(wake_reader, wake)
            self._serving = True
            self._update_listener()
            self._schedule_sweep()
            try:
                loop.run_until_complete(stopped)
            finally:
                self._serving = False
                self._update_listener()
                self._cancel_timers()
                loop.remove_reader(wake_reader)

    def handle_request(self, timeout: float | None) -> None:
        """Wait up to `timeout` s for a connection and serve it to the end."""
        loop = self._loop
        self._accepted = loop.create_future()
        loop.add_reader(self._acceptor.fileno(), self._accept)
        try:
            task = loop.run_until_complete(asyncio.wait_for(self._accepted, timeout))
        except asyncio.TimeoutError:
            self.handle_timeout()
            return
        finally:
            loop.remove_reader(self._acceptor.fileno())
            self._accepted = None
        loop.run_until_complete(asyncio.wait([task]))

    # The drain's view of the connections (see `DrainTarget`).

    def begin(self) -> None:
        self._draining = True
        self._update_listener()
        self._service.stop_listening()
        self._drained = len(self._clients)
        # Read what has already arrived first (one turn feeds the readers, the next
        # runs their coroutines), so that a connection whose request is in its
        # socket buffer is not taken for idle.
        for _ in range(2):
            self._loop.run_until_complete(asyncio.sleep(0))
        self._closed_idle += self._close_idle()

    def wait(self, timeout: float) -> None:
        if self._clients:
            self._loop.run_until_complete(
                asyncio.wait(
                    set(self._clients), timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
            )
        self._close_idle()  # those finished their request: counted as finished

    def cut(self) -> None:
        pending = set(self._clients)
        # One the drain closed is counted already, though over TLS its close may
        # still wait for the peer's close_notify: aborted with the rest, not a cut.
        self._cut = sum(1 for client in self._clients.values() if not client.closed_by_drain)
        for task, client in self._clients.items():
            # Aborted first: a cancelled coroutine's close would otherwise wait,
            # forever, to flush a reply its peer does not read.
            if client.transport is not None:
                client.transport.abort()
            task.cancel()
        self._loop.run_until_complete(asyncio.wait(pending))

    def settle(self, timeout: float) -> bool:
        return not self._clients

    def tally(self) -> DrainReport:
        return DrainReport(
            finished=self._drained - self._closed_idle - self._cut,
            closed_idle=self._closed_idle,
            cut=self._cut,
        )

    # The loop.

    def _close_idle(self) -> int:
        idle = [client for client in self._clients.values() if client.idle]
        for client in idle:
            assert client.reader is not None  # idle means it reads
            client.closed_by_drain = True
            client.reader.feed_eof()
        return len(idle)

    def _has_room(self) -> bool:
        cap = self._limits.max_connections
        return cap is None or len(self._clients) < cap

    def _make_room(self) -> bool:
        return self._evictions.evict_longest_idle(list(self._clients.values()))

    def _update_listener(self) -> None:
        """Watch the server socket while serving, not draining, and the gate is open;
        else new clients wait in the listen backlog."""
        assert self.gate is not None  # made in __init__
        want = self._serving and not self._draining and self.gate.open()
        if want != self._listening:
            self._listening = want
            if want:
                self._loop.add_reader(self._acceptor.fileno(), self._accept)
            else:
                self._loop.remove_reader(self._acceptor.fileno())
        look_again = self.gate.bound(None)
        if not want and look_again is not None and self._serving and self._resume is None:
            # Backing off after accept() ran out of a resource, or at capacity until an
            # eviction may succeed: look again by timer, never by sleeping on the loop
            # that serves every connection.
            self._resume = self._loop.call_later(look_again, self._resume_listening)

    def _resume_listening(self) -> None:
        self._resume = None
        self._update_listener()

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._clients.pop(task, None)
        self._update_listener()

    def _accept(self) -> None:
        assert self.gate is not None  # made in __init__
        if not self.gate.admit():
            self._update_listener()
            return
        taken = take_request(self)
        if taken is None:
            self._update_listener()
            return
        sock, peer = taken
        sock.setblocking(False)
        client = _Client(sock, peer)
        task = self._loop.create_task(self._serve(sock, client))
        client.task = task
        self._clients[task] = client
        task.add_done_callback(self._task_done)
        self._update_listener()
        if self._accepted is not None and not self._accepted.done():
            self._accepted.set_result(task)

    async def _serve(self, sock: socket.socket, client: _Client) -> None:
        def reader_for(limit: int, loop: asyncio.AbstractEventLoop) -> CountingReader:
            client.reader = _TrackedReader(limit, loop)
            return client.reader

        def opened(transport: asyncio.Transport, writer: ServerWriter) -> None:
            client.transport = transport
            client.writer = writer

        context = None
        failure: BaseException | None = None
        refused = True
        try:
            relayed = await self._relayed(sock, client)
            if relayed is False:
                return
            context = self._admitted(sock, client, relayed)
            if context is False:
                return
            refused = False
            await serve_with_streams(
                self._form,
                sock,
                client.peer,
                self._tls,
                reader=reader_for,
                opened=opened,
                extra=None if relayed is None else relayed.extra_info(),
                closed_by_server=lambda: client.closed_by_drain or client.evicted,
            )
        except asyncio.CancelledError as cancelled:
            failure = cancelled
            raise
        except Exception as error:
            failure = error
            if not client.timed_out:
                self._service.outcomes.log(client.peer, error)
        finally:
            # The streams closed the socket; this is a no-op then, and a close otherwise.
            with contextlib.suppress(OSError):
                self.shutdown_request(sock)
            if context:
                finish(self._layers, context, failure)
            self._count(client, failure, refused=refused)

    def _count(self, client: _Client, failure: BaseException | None, *, refused: bool) -> None:
        """Count how a connection ended: a cut (cancelled) is no error of its own."""
        reader, writer = client.reader, client.writer
        self._service.tally.closed(
            None if isinstance(failure, asyncio.CancelledError) else failure,
            refused=refused,
            timed_out=client.timed_out,
            bytes_in=0 if reader is None else reader.received,
            bytes_out=0 if writer is None else writer.sent,
        )

    async def _relayed(
        self, sock: socket.socket, client: _Client
    ) -> Relayed | Literal[False] | None:
        """The connection as its PROXY header describes it (None: the transport has no
        PROXY protocol); False, logged, if the header is missing or bad. The client's
        peer becomes the one the header names."""
        proxy = self._proxy
        if proxy is None:
            return None
        try:
            reader = proxy.reader(client.peer)
            relayed = await asyncio.wait_for(self._header(sock, reader), reader.timeout)
        except asyncio.TimeoutError:
            # Only wait_for times out, and reader is bound before it starts.
            proxy.refuse(client.peer, reader.timed_out())  # pyright: ignore[reportPossiblyUnboundVariable]
            return False
        except (ProxyHeaderError, OSError) as error:
            proxy.refuse(client.peer, error)
            return False
        client.peer = relayed.peer
        return relayed

    async def _header(self, sock: socket.socket, reader: HeaderReader) -> Relayed:
        loop = self._loop
        # Bounded: the reader refuses a header after so many steps, and wait_for times it.
        while (relayed := reader.step(sock)) is None:
            readable: asyncio.Future[None] = loop.create_future()
            loop.add_reader(sock, _resolve, readable)
            try:
                await readable
            finally:
                loop.remove_reader(sock)
        return relayed

    def _admitted(
        self, sock: socket.socket, client: _Client, relayed: Relayed | None
    ) -> RequestContext | Literal[False] | None:
        """The connection's context if it has layers, after they admitted it; False if
        one refused it (answered with the layer's reply, if any)."""
        if not self._layers:
            return None
        context = self._acceptor.context(client.peer)
        if relayed is not None:
            relayed.apply(context)
        try:
            admit(self._layers, context)
        except RefusedError as refused:
            if refused.reply:
                with contextlib.suppress(OSError):
                    sock.send(refused.reply)
            return False
        return context

    def _schedule_sweep(self) -> None:
        if self._sweep_every is not None:
            self._sweeper = self._loop.call_later(self._sweep_every, self._sweep)

    def _sweep(self) -> None:
        now = self._loop.time()
        limits = self._limits
        for client in list(self._clients.values()):
            reader = client.reader
            if reader is not None and (error := reader.timed_out(limits, now)):
                self._service.outcomes.log(client.peer, error)
                client.timed_out = True
                reader.set_exception(error)
            elif self._write_timed_out(client, now):
                client.timed_out = True
        self._schedule_sweep()

    def _write_timed_out(self, client: _Client, now: float) -> bool:
        transport = client.transport
        limit = self._limits.write_timeout
        if transport is None or limit is None or not _output_waits(transport):
            client.write_blocked_since = None
            return False
        if client.write_blocked_since is None:
            client.write_blocked_since = now
            return False
        if now - client.write_blocked_since <= limit:
            return False
        self._service.outcomes.log(client.peer, self._limits.write_timed_out())
        transport.abort()
        return True

    def _cancel_timers(self) -> None:
        for handle in (self._sweeper, self._resume):
            if handle is not None:
                handle.cancel()
        self._sweeper = self._resume = None


@attrs.frozen
class AsyncioLoop(EventLoopConcurrency):
    """An asyncio event loop for `async_stream_handler`; build it with `asyncio_loop`."""

    uvloop: bool = attrs.field(default=False, validator=flag)
    """Use uvloop's event loop instead of asyncio's (the uvloop package must be installed)."""

    def __attrs_post_init__(self) -> None:
        if self.uvloop and importlib.util.find_spec("uvloop") is None:
            raise ConfigurationError(
                "asyncio_loop(uvloop=True) needs the uvloop package, which is not installed: "
                "pip install uvloop, or use asyncio_loop()"
            )

    def check(self, transport: Transport[Any], handler: Handler[Any]) -> None:
        if handler.for_asyncio() is None:
            raise HandlerMismatchError(
                f"asyncio_loop() serves only async_stream_handler(fn), not "
                f"{type(handler).__name__}: use evented() for a message handler"
            )
        # Over `tls` asyncio runs the handshakes itself, without blocking the loop.
        if transport.tls is not transport:
            self.check_transport(transport)

    def build(self, service: Service[Any]) -> Runtime:
        form = service.handler.for_asyncio()
        assert form is not None  # checked by `check`
        return AsyncioServeLoop(service, form, use_uvloop=self.uvloop, tls=service.transport.tls)


def asyncio_loop(*, uvloop: bool = False) -> AsyncioLoop:
    """Serve every connection as a task on one asyncio event loop in the server's thread.

    For handlers written as coroutines (`async_stream_handler`). ``uvloop=True``
    uses uvloop's faster loop; it is imported only then, and a clear
    `ConfigurationError` says so if it is missing. Over `tls` asyncio runs each
    connection's handshake on the loop, without blocking it. The limits hold as
    under `evented()`: see the module notes.
    """
    return AsyncioLoop(uvloop=uvloop)
