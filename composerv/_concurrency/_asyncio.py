"""`asyncio_loop()`: serve `async_stream_handler` connections on one asyncio event loop."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import socket
import time
from typing import Any

import attrs

from .._addresses import Address, peer_repr
from .._errors import ConfigurationError, HandlerMismatchError
from .._handlers._async import AsyncStreamHandler, serve_with_streams
from .._handlers._base import Handler
from .._limits import DrainReport, Limits
from .._log import logger
from .._server._lifecycle import RequestLifecycle, ServeLoop, drain, take_request
from .._transports._base import Transport
from .._transports._tls import TLS
from .._validate import flag
from ._base import EventLoop, EventLoopConcurrency, Work

__all__ = ["AsyncioLoop", "asyncio_loop"]


def _new_event_loop(use_uvloop: bool) -> asyncio.AbstractEventLoop:
    if not use_uvloop:
        return asyncio.new_event_loop()
    # Imported only when asked for: uvloop is an optional dependency.
    loop: asyncio.AbstractEventLoop = importlib.import_module("uvloop").new_event_loop()
    return loop


class AsyncioServeLoop(ServeLoop):
    """Accepts through the server's lifecycle and serves each connection as a task.

    The event loop lives as long as the server, so connections stay open between
    calls to `serve_forever`; `close` cancels those still running. Of the limits,
    it keeps ``max_connections`` and the drain; timeouts are the coroutine's own
    business (``asyncio.timeout``), since only it knows where its requests begin.
    Over `tls`, each connection's task runs its handshake first, without blocking
    the loop; a failed one is logged in one line and closes that connection only.
    """

    def __init__(
        self,
        lifecycle: RequestLifecycle[Any],
        handler: AsyncStreamHandler,
        *,
        use_uvloop: bool,
        limits: Limits,
        tls: TLS | None,
    ) -> None:
        super().__init__(lifecycle)
        self._handler = handler
        self._tls = tls
        self._max_connections = limits.max_connections
        self._loop = _new_event_loop(use_uvloop)
        self._tasks: set[asyncio.Task[None]] = set()
        self._accepted: asyncio.Future[asyncio.Task[None]] | None = None
        self._serving = False
        self._listening = False

    def submit(self, work: Work, release_in_parent: Work) -> None:
        """Never called: the loop accepts by itself."""
        raise RuntimeError("an asyncio_loop() serves its requests itself")

    def service_actions(self) -> None:
        """Tasks remove themselves when done; nothing to tidy."""

    def close(self) -> None:
        """Cancel the connections still being served, wait for them, close the loop."""
        loop = self._loop
        if self._tasks:
            for task in self._tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*self._tasks, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    def __len__(self) -> int:
        return len(self._tasks)

    def drain(self, deadline: float) -> DrainReport:
        """Let the connections' coroutines return until `deadline`, then cancel the rest.

        A coroutine waiting for a client's next request counts as in flight: only
        it knows that it is idle.
        """
        if not self._tasks:
            return DrainReport(finished=0, closed_idle=0, cut=0)
        loop = self._loop
        timeout = max(0.0, deadline - time.monotonic())
        done, pending = loop.run_until_complete(asyncio.wait(set(self._tasks), timeout=timeout))
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.wait(pending))
        return DrainReport(finished=len(done), closed_idle=0, cut=len(pending))

    def _listen_while_there_is_room(self) -> None:
        """Watch the server socket while serving below ``max_connections``; else let
        new clients wait in the listen backlog."""
        cap = self._max_connections
        want = self._serving and (cap is None or len(self._tasks) < cap)
        self.paused = self._serving and not want
        if want != self._listening:
            self._listening = want
            if want:
                self._loop.add_reader(self._lifecycle.fileno(), self._accept)
            else:
                self._loop.remove_reader(self._lifecycle.fileno())

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._listen_while_there_is_room()

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

            loop.add_reader(wake_reader, wake)
            self._serving = True
            self._listen_while_there_is_room()
            try:
                loop.run_until_complete(stopped)
            finally:
                self._serving = False
                self._listen_while_there_is_room()
                loop.remove_reader(wake_reader)

    def handle_request(self, timeout: float | None) -> None:
        """Wait up to `timeout` s for a connection and serve it to the end."""
        loop = self._loop
        self._accepted = loop.create_future()
        loop.add_reader(self._lifecycle.fileno(), self._accept)
        try:
            task = loop.run_until_complete(asyncio.wait_for(self._accepted, timeout))
        except asyncio.TimeoutError:
            self._lifecycle.handle_timeout()
            return
        finally:
            loop.remove_reader(self._lifecycle.fileno())
            self._accepted = None
        loop.run_until_complete(asyncio.wait([task]))

    def _accept(self) -> None:
        taken = take_request(self._lifecycle)
        if taken is None:
            return
        sock, peer = taken
        task = self._loop.create_task(self._serve(sock, peer))
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        self._listen_while_there_is_room()
        if self._accepted is not None and not self._accepted.done():
            self._accepted.set_result(task)

    async def _serve(self, sock: socket.socket, peer: Address) -> None:
        try:
            await serve_with_streams(self._handler, sock, peer, self._tls)
        except ConnectionError as error:
            # A peer that resets or goes away is routine for a server, not a bug.
            logger.debug("connection from %s failed: %s", peer_repr(peer), error)
        except Exception:
            logger.exception("error while serving %s", peer_repr(peer))
        finally:
            # The streams closed the socket; this is a no-op then, and a close otherwise.
            with contextlib.suppress(OSError):
                self._lifecycle.shutdown_request(sock)


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

    def check_transport(self, transport: Transport[Any]) -> None:
        """Over `tls` asyncio runs the handshakes itself, without blocking the loop."""
        if not isinstance(transport, TLS):
            super().check_transport(transport)

    def check_handler(self, handler: Handler[Any]) -> None:
        if not isinstance(handler, AsyncStreamHandler):
            raise HandlerMismatchError(
                f"asyncio_loop() serves only async_stream_handler(fn), not "
                f"{type(handler).__name__}: use evented() for a message handler"
            )

    def event_loop(
        self,
        lifecycle: RequestLifecycle[Any],
        handler: Handler[Any],
        limits: Limits,
        transport: Transport[Any],
    ) -> EventLoop:
        self.check_handler(handler)
        assert isinstance(handler, AsyncStreamHandler)
        return AsyncioServeLoop(
            lifecycle,
            handler,
            use_uvloop=self.uvloop,
            limits=limits,
            tls=transport if isinstance(transport, TLS) else None,
        )


def asyncio_loop(*, uvloop: bool = False) -> AsyncioLoop:
    """Serve every connection as a task on one asyncio event loop in the server's thread.

    For handlers written as coroutines (`async_stream_handler`). ``uvloop=True``
    uses uvloop's faster loop; it is imported only then, and a clear
    `ConfigurationError` says so if it is missing. Over `tls` asyncio runs each
    connection's handshake on the loop, without blocking it.
    """
    return AsyncioLoop(uvloop=uvloop)
