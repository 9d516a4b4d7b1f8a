"""`evented()`: one thread serves every connection from an epoll event loop.

Per-message overhead is the whole game here (see docs/architecture.md, "The fast paths"), so the
read path is written for the common case: one recv holds exactly one whole
message, which goes to the handler without any buffer concatenation, and its
reply leaves in one ``send``. Everything else falls back to the framing's
incremental decoder.
"""

# Underscore names here are private to the module, not to one class: a connection
# looks itself up in, and drops itself from, its loop when it is evicted.
# pyright: reportPrivateUsage=false

from __future__ import annotations

import abc
import contextlib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import attrs

from .._addresses import Address
from .._context import RequestContext, bytes_waiting
from .._errors import HandlerMismatchError, MessageTooLargeError, ProxyHeaderError, RefusedError
from .._framing import Decoder, MessageFn, StreamFraming
from .._hub import Hub
from .._limits import DrainReport, Limits, sweep_interval
from .._log import logger
from .._runtime import (
    BATCH,
    Acceptor,
    Deadline,
    Evictions,
    Handler,
    ListenerGate,
    MessageForm,
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
from .._transports._proxy import HeaderReader, ProxyProtocol, Relayed
from .._validate import positive_int
from ._base import EventLoopConcurrency
from ._poller import new_poller

__all__ = ["Evented", "evented"]

# One receive buffer shared by every connection of a loop: 64 KiB takes a burst of
# pipelined messages in one call, and being reused it never reaches malloc (fresh
# 256 KiB buffers cost an mmap/munmap pair per recv with glibc).
DEFAULT_RECV_SIZE = 65536


def _no_messages_yet(message: bytes) -> bytes | None:
    raise AssertionError("a connection got a message before its PROXY header")


class _Connection:
    """One open connection: what the loop keeps per client (small, for idle clients).

    It is also the connection's `Outlet`, through which the server's hub sends to it.
    """

    __slots__ = (
        "context",
        "decoder",
        "fn",
        "fresh",
        "header",
        "inbox",
        "loop",
        "out",
        "peer",
        "since",
        "sock",
    )

    def __init__(
        self,
        loop: _EventedLoop,
        sock: socket.socket,
        peer: Address,
        decoder: Decoder,
        fn: MessageFn,
        *,
        context: RequestContext | None,
        now: float,
    ) -> None:
        self.loop = loop
        self.sock = sock
        self.peer = peer
        self.decoder = decoder
        self.fn = fn
        """The reply function for this connection's messages."""
        self.context = context
        """The connection's context, made only when the handler keeps state or has layers."""
        self.out: bytearray | memoryview | None = None
        """Bytes the socket did not take yet; reading pauses while there are any."""
        self.inbox: tuple[list[bytes], int] | None = None
        """Messages received and not answered yet (the list, and where to go on), kept
        while the replies so far are over ``max_output_buffer``."""
        self.since = now
        """When the connection entered its state (idle, mid-read, mid-write), for timeouts."""
        self.fresh = True
        """Whether nothing has been received yet (the first wait has its own limit)."""
        self.header: HeaderReader | None = None
        """While the PROXY header is being read: its reader (no message is read before)."""

    @property
    def idle(self) -> bool:
        """Whether the connection waits for a new message, with nothing half-read or unsent."""
        return self.out is None and self.inbox is None and not self.decoder.pending

    def timed_out(self, limits: Limits, now: float) -> TimeoutError | None:
        """The error to close this connection with, if it outstayed the limit of its state."""
        limit: float | None
        error: Callable[[], TimeoutError]
        if self.header is not None:
            return None  # see `_EventedLoop._close_timed_out`
        if self.out is not None:
            limit, error = limits.write_timeout, limits.write_timed_out
        elif self.decoder.pending:
            limit, error = limits.read_timeout, limits.read_timed_out
        elif self.fresh:
            limit, error = limits.first_wait, limits.first_wait_timed_out
        else:
            limit, error = limits.idle_timeout, limits.idle_timed_out
        return error() if limit is not None and now - self.since > limit else None

    @property
    def idle_since(self) -> float | None:
        """Since when it waits for a new message, if it does (for eviction)."""
        return self.since if self.idle and self in self.loop._connections else None

    def evict(self) -> bool:
        """Close it, unless its next message has arrived already."""
        if bytes_waiting(self.sock):
            return False
        self.loop._drop(self)
        return True

    def queued(self) -> int:
        """Bytes waiting to be sent to this connection (the socket took no more)."""
        return 0 if self.out is None else len(self.out)

    def send_own(self, data: bytes) -> None:
        """This connection's own reply, in order with the others."""
        self.loop.send(self, data)

    def push(self, data: bytes) -> int:
        """Queue `data` (the hub has checked the bound)."""
        self.loop.send(self, data)
        return len(data)

    def shed(self) -> None:
        """Close it at the end of this turn (it may be in use right now); the hub has
        logged why."""
        self.loop.doom(self, None)


class _Marker:
    """What the poller reports for a socket that is not a connection."""

    __slots__ = ()


_LISTENER = _Marker()
_WAKE = _Marker()


class _EventedLoop(ServeLoop, metaclass=abc.ABCMeta):
    """The runtime of `evented()`: a message handler's function on an event loop (see
    `Poller`), over a stream or a datagram transport."""

    def __init__(self, service: Service[Any], form: MessageForm, *, recv_size: int) -> None:
        limits = service.limits
        cap = limits.max_connections
        gate = ListenerGate(
            None if cap is None else self._has_room,
            self._make_room if cap is not None and limits.evict_idle else None,
        )
        super().__init__(self, gate)
        self._service = service
        self._evictions = Evictions(f"max_connections={cap}")
        self._acceptor = Acceptor(service, gate)
        self._form = form
        self._limits = limits
        self._poller = new_poller()
        self._wake_reader: socket.socket | None = None
        self._buffer = bytearray(recv_size)
        self._view = memoryview(self._buffer)
        self._connections: set[_Connection] = set()
        self._layers = service.handler.layers
        # A context per connection only where something reads it: a handler with
        # state (no one function for all) or layers.
        self._contexts = form.fn is None or bool(self._layers)
        self._hub = Hub(limits.max_output_buffer)
        self._framing: Any = form.framing
        self._doomed: list[tuple[_Connection, Exception | None]] = []
        # While the loop answers one connection, what is sent to it is collected
        # here and sent in one write, in order, when the answering is done.
        self._collecting: _Connection | None = None
        self._collected: list[bytes] | None = None
        self._draining = False
        self._listener_watched = True
        self._drained = 0
        self._closed_idle = 0
        self._cut = 0
        self._tally = service.tally
        # Bytes moved in this turn, counted in the tally once at its end.
        self._bytes_in = 0
        self._bytes_out = 0
        # The time at the start of the current turn: one clock read serves every
        # connection the turn touches.
        self._now = time.monotonic()
        self._proxy = service.transport.proxy_protocol
        self._sweep_every = sweep_interval(
            limits, None if self._proxy is None else self._proxy.header_timeout
        )
        self._next_sweep = self._now
        self._poller.register(self._acceptor, False, _LISTENER)

    @abc.abstractmethod
    def _on_listener(self) -> None:
        """The server socket is readable."""

    @abc.abstractmethod
    def _read(self, connection: _Connection) -> None:
        """A connection is readable."""

    @abc.abstractmethod
    def _flush(self, connection: _Connection) -> None:
        """A connection with pending output is writable."""

    # The loop's request lifecycle (the loop takes requests through the acceptor).

    def fileno(self) -> int:
        return self._acceptor.fileno()

    def get_request(self) -> tuple[Any, Address]:
        return self._acceptor.accept()

    def verify_request(self, request: Any, client_address: Address) -> bool:
        return True

    def process_request(self, request: Any, client_address: Address) -> None:
        """Never called: the loop serves what it takes itself."""

    def handle_error(self, request: Any, client_address: Address) -> None:
        """Never called: the loop logs how each request ends itself."""

    def handle_timeout(self) -> None:
        """Nothing to do when `handle_request` times out."""

    def service_actions(self) -> None:
        """Nothing runs in the background, so there is nothing to tidy."""

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

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        if self._sweep_every is not None:
            poll_interval = min(poll_interval, self._sweep_every)
        with self.running_loop() as wake_reader:
            self._wake_reader = wake_reader
            self._poller.register(wake_reader, False, _WAKE)
            try:
                while not self._stop_requested:
                    self._turn(self._poller.poll(self._wait_limit(poll_interval)))
            finally:
                self._poller.unregister(wake_reader)

    def handle_request(self, timeout: float | None) -> None:
        """Run one turn of the loop; ``handle_timeout`` if nothing happened in `timeout` s."""
        ready = self._poller.poll(self._wait_limit(timeout))
        if ready:
            self._turn(ready)
        else:
            self.handle_timeout()

    def _wait_limit(self, timeout: float | None) -> float | None:
        assert self.gate is not None  # made in __init__
        return self.gate.bound(timeout)

    def drain(self, deadline: Deadline) -> DrainReport:
        # The loop owns its connections and is not thread-safe: it drains them
        # itself, from here, once its serve_forever has returned.
        self.request_stop()
        if not self.wait_stopped(deadline.remaining()):
            logger.warning("the event loop of %r did not stop within the drain", self._service)
        return drain_requests(self, deadline)

    def close(self) -> None:
        """Close every open connection and the poller."""
        self._draining = True  # the server socket is closed: do not listen on it again
        for connection in list(self._connections):
            self._drop(connection)
        self._poller.close()
        self._view.release()

    def __len__(self) -> int:
        return len(self._connections)

    @property
    def waits_on_close(self) -> bool:
        """Closing the server drains its connections."""
        return True

    def _open(
        self, peer: Address, relayed: Relayed | None = None
    ) -> tuple[MessageFn, RequestContext | None]:
        """The reply function and the context (if one is needed) for a new connection
        or datagram from `peer` (relayed by a proxy, as its header says); raises
        `RefusedError` if a layer refuses it."""
        form = self._form
        if not self._contexts:
            assert form.fn is not None  # a handler that keeps no state
            return form.fn, None
        context = self._acceptor.context(peer)
        if relayed is not None:
            relayed.apply(context)
        context.hub = self._hub
        admit(self._layers, context)
        return form.open(context), context

    def _finish(self, context: RequestContext | None, error: BaseException | None) -> None:
        """A connection or datagram is done: the layers hear how it ended."""
        if context is not None:
            finish(self._layers, context, error)

    def doom(self, connection: _Connection, error: Exception | None) -> None:
        """Close `connection` at the end of this turn (it may be in use right now),
        logging `error` (None: it was logged already)."""
        self._doomed.append((connection, error))

    def send(self, connection: _Connection, data: bytes) -> None:
        """Send `data` on `connection`, or queue it behind what waits already."""
        raise NotImplementedError  # a datagram loop has no connections to send on

    # The drain's view of the connections (see `DrainTarget`).

    def begin(self) -> None:
        self._draining = True
        self._watch_listener(False)
        self._service.stop_listening()
        self._drained = len(self._connections)
        # Read what has already arrived first, so that a connection whose request
        # is in its socket buffer is not taken for idle.
        self._turn(self._poller.poll(0))
        self._closed_idle += self._close_idle()

    def wait(self, timeout: float) -> None:
        self._turn(self._poller.poll(timeout))
        self._close_idle()  # those finished their request: counted as finished

    def cut(self) -> None:
        self._cut = len(self._connections)
        for connection in list(self._connections):
            self._drop(connection)

    def settle(self, timeout: float) -> bool:
        return True  # dropped connections are closed at once

    def tally(self) -> DrainReport:
        return DrainReport(
            finished=self._drained - self._closed_idle - self._cut,
            closed_idle=self._closed_idle,
            cut=self._cut,
        )

    # The loop.

    def _close_idle(self) -> int:
        idle = [connection for connection in self._connections if connection.idle]
        for connection in idle:
            self._drop(connection)
        return len(idle)

    def _turn(self, ready: list[Any]) -> None:
        self._now = now = time.monotonic()
        connections = self._connections
        for connection in ready:
            if connection is _LISTENER:
                self._on_listener()
            elif connection is _WAKE:
                assert self._wake_reader is not None  # registered only while serving
                drain(self._wake_reader)
            elif connection not in connections:
                continue  # closed earlier in this turn
            elif connection.out is not None:
                # Watched for writing only: reading waits until the replies are out.
                self._flush(connection)
            else:
                self._read(connection)
        while self._doomed:
            connection, error = self._doomed.pop()
            if error is None:
                self._drop(connection)
            else:
                self._failed(connection, error)
        if self._bytes_in or self._bytes_out:
            self._tally.transferred(self._bytes_in, self._bytes_out)
            self._bytes_in = self._bytes_out = 0
        if not self._listener_watched:
            self._update_listener()
        if self._sweep_every is not None and now >= self._next_sweep:
            self._next_sweep = now + self._sweep_every
            self._close_timed_out(now)

    def _close_timed_out(self, now: float) -> None:
        limits = self._limits
        for connection in list(self._connections):
            if connection.header is not None:
                if now > connection.header.deadline:
                    self._refuse_header(connection, connection.header.timed_out())
            elif error := connection.timed_out(limits, now):
                self._failed(connection, error)

    def _refuse_header(self, connection: _Connection, error: Exception) -> None:
        """Close a connection whose PROXY header is missing or bad, with one log line."""
        assert self._proxy is not None  # only a PROXY transport reads headers
        self._proxy.refuse(connection.peer, error)
        self._drop(connection, refused=True)

    def _has_room(self) -> bool:
        cap = self._limits.max_connections
        return cap is None or len(self._connections) < cap

    def _make_room(self) -> bool:
        return self._evictions.evict_longest_idle(list(self._connections))

    def _update_listener(self) -> None:
        """Watch the listening socket while the gate is open and no drain is on."""
        assert self.gate is not None  # made in __init__
        self._watch_listener(not self._draining and self.gate.open())

    def _watch_listener(self, watch: bool) -> None:
        if watch != self._listener_watched:
            self._listener_watched = watch
            if watch:
                self._poller.register(self._acceptor, False, _LISTENER)
            else:
                self._poller.unregister(self._acceptor)

    def _failed(self, connection: _Connection, error: Exception) -> None:
        if connection in self._connections:
            self._service.outcomes.log(connection.peer, error)
            self._drop(connection, error)

    def _drop(
        self, connection: _Connection, error: BaseException | None = None, *, refused: bool = False
    ) -> None:
        if connection not in self._connections:
            return  # already dropped, e.g. by a failed send just before
        self._connections.remove(connection)
        self._finish(connection.context, error)
        self._tally.closed(error, refused=refused)
        sock = connection.sock
        # KeyError/ValueError: the poller never had it or is closed (close() ends both).
        with contextlib.suppress(KeyError, ValueError):
            self._poller.unregister(sock)
        self.shutdown_request(sock)
        if not self._listener_watched:
            self._update_listener()


class _StreamLoop(_EventedLoop):
    """Serves the connections of a stream transport."""

    def __init__(self, service: Service[Any], form: MessageForm, *, recv_size: int) -> None:
        super().__init__(service, form, recv_size=recv_size)
        framing = form.framing
        assert isinstance(framing, StreamFraming)  # checked by Evented.check
        self._framing = framing

    def _on_listener(self) -> None:
        assert self.gate is not None  # made in __init__
        if not self.gate.admit():
            self._update_listener()
            return
        for _ in range(BATCH):
            taken = take_request(self)
            if taken is None:
                break  # nothing left to accept (or one refused: the next event goes on)
            sock, peer = taken
            sock.setblocking(False)
            if self._proxy is None:
                self._start(sock, peer)
            else:
                self._await_header(sock, peer, self._proxy)
            if not self._has_room():
                break
        self._update_listener()

    def _start(self, sock: socket.socket, peer: Address, relayed: Relayed | None = None) -> None:
        """Serve a new connection (whose PROXY header, if any, is read)."""
        try:
            fn, context = self._open(peer, relayed)
        except RefusedError as refused:
            self._refuse(sock, refused)
            return
        except Exception as error:
            self._service.outcomes.log(peer, error)
            self.shutdown_request(sock)
            self._tally.closed(error)
            return
        connection = _Connection(
            self, sock, peer, self._framing.decoder(), fn, context=context, now=self._now
        )
        if context is not None:
            context.outlet = connection
            self._hub.enter(connection)
        self._connections.add(connection)
        self._poller.register(sock, False, connection)

    def _await_header(self, sock: socket.socket, peer: Address, proxy: ProxyProtocol) -> None:
        """Read a new connection's PROXY header as it arrives, then serve it."""
        try:
            reader = proxy.reader(peer)
        except ProxyHeaderError as error:
            proxy.refuse(peer, error)
            self.shutdown_request(sock)
            self._tally.closed(refused=True)
            return
        connection = _Connection(
            self, sock, peer, self._framing.decoder(), _no_messages_yet, context=None, now=self._now
        )
        connection.header = reader
        self._connections.add(connection)
        self._poller.register(sock, False, connection)
        self._read_header(connection, reader)  # it usually came with the connection

    def _read_header(self, connection: _Connection, reader: HeaderReader) -> None:
        try:
            relayed = reader.step(connection.sock)
        except (ProxyHeaderError, OSError) as error:
            self._refuse_header(connection, error)
            return
        if relayed is None:
            return  # the rest is still to come
        # The connection starts again as the client's, with its layers and state.
        self._connections.remove(connection)
        self._poller.unregister(connection.sock)
        self._start(connection.sock, relayed.peer, relayed)

    def _refuse(self, sock: socket.socket, refused: RefusedError) -> None:
        if refused.reply:
            with contextlib.suppress(OSError):
                sock.send(refused.reply)
        self.shutdown_request(sock)
        self._tally.closed(refused=True)

    def _read(self, connection: _Connection) -> None:
        if connection.header is not None:
            self._read_header(connection, connection.header)
            return
        buffer = self._buffer
        try:
            size = connection.sock.recv_into(buffer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self._failed(connection, error)
            return
        if not size:
            self._end_of_stream(connection)
            return
        connection.fresh = False
        self._bytes_in += size
        context = connection.context
        # What a session sends itself while answering joins the replies, in order.
        self._collecting = connection
        try:
            out = connection.decoder.reply_to_whole(self._view, size, connection.fn)
            if out is None:
                out = self._decode(connection, size)
            else:
                connection.since = self._now
        except Exception as error:
            self._fail_after_collected(connection, error)
            return
        self._collecting = None
        if self._collected is not None:
            out = b"".join(self._collected) + out
            self._collected = None
        if context is not None:
            context.bytes_in += size
        if out:
            self.send(connection, out)
        self._answer_inbox(connection)
        if context is not None and context.closing and connection.out is None:
            self._drop(connection)

    def _decode(self, connection: _Connection, size: int) -> bytes:
        """The slow path: replies to every message completed by what was just read."""
        decoder = connection.decoder
        if not decoder.pending:
            connection.since = self._now  # a read begins (or ends, below)
        try:
            messages = decoder.feed(self._view[:size])
        except MessageTooLargeError as error:
            self._answer(connection, error.messages, 0)  # the replies go out before the close
            raise
        if not decoder.pending:
            connection.since = self._now
        return self._answer(connection, messages, 0)

    def _answer(self, connection: _Connection, messages: list[bytes], start: int) -> bytes:
        """The framed replies to `messages` from `start` on, up to ``max_output_buffer``
        bytes waiting in all; the messages not answered yet wait in the inbox."""
        fn = connection.fn
        encode = self._framing.encode
        limit = self._limits.max_output_buffer
        if self._collected is None:
            self._collected = []
        parts = self._collected  # with what a session sends itself, in order
        size = connection.queued() + sum(map(len, parts))
        context = connection.context
        connection.inbox = None
        for index in range(start, len(messages)):
            reply = fn(messages[index])
            if context is not None and context.closing:
                break  # the messages after a session's Close go unanswered
            if reply is not None:
                framed = encode(reply)
                parts.append(framed)
                size += len(framed)
                if size >= limit and index + 1 < len(messages):
                    connection.inbox = (messages, index + 1)
                    break
        return b""

    def _answer_inbox(self, connection: _Connection) -> None:
        """Answer the messages that wait in the inbox while the socket takes the replies."""
        while connection.inbox is not None and connection.out is None:
            messages, start = connection.inbox
            self._collecting = connection
            try:
                self._answer(connection, messages, start)
            except Exception as error:
                self._fail_after_collected(connection, error)
                return
            self._collecting = None
            out, self._collected = b"".join(self._collected or ()), None
            if out:
                self.send(connection, out)

    def _fail_after_collected(self, connection: _Connection, error: Exception) -> None:
        """Answering failed with `error`: what was answered before goes out, then the
        connection is closed (a step's wrong output, a message over the size limit)."""
        self._collecting = None
        out, self._collected = b"".join(self._collected or ()), None
        if out:
            self.send(connection, out)
        self._failed(connection, error)

    def send(self, connection: _Connection, data: bytes) -> None:
        if connection is self._collecting:
            if self._collected is None:
                self._collected = [data]
            else:
                self._collected.append(data)
            return
        context = connection.context
        if context is not None:
            context.bytes_out += len(data)
        self._bytes_out += len(data)
        pending = connection.out
        if pending is not None:
            if isinstance(pending, memoryview):
                pending = connection.out = bytearray(pending)
            pending += data
            return
        try:
            sent = connection.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as error:
            self.doom(connection, error)
            return
        if sent < len(data):
            # Backpressure: stop reading from a peer that does not read its replies;
            # what waits for it is bounded by max_output_buffer (see `_answer`).
            connection.out = memoryview(data)[sent:]
            connection.since = self._now
            self._poller.modify(connection.sock, True, connection)

    def _flush(self, connection: _Connection) -> None:
        out = connection.out
        assert out is not None
        try:
            sent = connection.sock.send(out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self._failed(connection, error)
            return
        if sent < len(out):
            if isinstance(out, bytearray):
                del out[:sent]
            else:
                connection.out = out[sent:]
            return
        connection.out = None
        connection.since = self._now
        self._answer_inbox(connection)
        context = connection.context
        if context is not None and context.closing and connection.out is None:
            self._drop(connection)
        elif connection.out is None:
            self._poller.modify(connection.sock, False, connection)

    def _end_of_stream(self, connection: _Connection) -> None:
        try:
            connection.decoder.close()
        except Exception as error:
            self._failed(connection, error)
            return
        self._drop(connection)


class _DatagramLoop(_EventedLoop):
    """Serves the datagrams of a datagram transport: each one is a message."""

    def _on_listener(self) -> None:
        for _ in range(BATCH):
            taken = take_request(self)
            if taken is None:
                return  # nothing left to read (or one refused: the next event goes on)
            datagram, peer = taken
            context = None
            error: Exception | None = None
            refused = False
            sent = 0
            try:
                fn, context = self._open(peer)
                reply = fn(datagram.data)
                if reply is not None:
                    datagram.reply(reply)
                    sent = len(reply)
            except RefusedError:
                refused = True  # dropped; the layer that refused it logs why
            except Exception as failure:
                error = failure
                self._service.outcomes.log(peer, failure)
            self._finish(context, error)
            self._tally.closed(error, refused=refused, bytes_in=len(datagram.data), bytes_out=sent)

    def _read(self, connection: _Connection) -> None:
        """A datagram loop has no connections."""

    def _flush(self, connection: _Connection) -> None:
        """A datagram loop has no connections."""


@attrs.frozen
class Evented(EventLoopConcurrency):
    """A single-threaded event loop (epoll; selectors elsewhere) for message handlers; build it
    with `evented`."""

    recv_size: int = attrs.field(default=DEFAULT_RECV_SIZE, validator=positive_int)
    """Size of the one receive buffer the loop reuses for every read."""

    def check(self, transport: Transport[Any], handler: Handler[Any]) -> None:
        if handler.for_event_loop() is None:
            raise HandlerMismatchError(
                f"evented() serves only message handlers, not {type(handler).__name__}: "
                "use message_handler(fn), or a blocking concurrency such as threaded() or pooled()"
            )
        self.check_transport(transport)

    def build(self, service: Service[Any]) -> Runtime:
        form = service.handler.for_event_loop()
        assert form is not None  # checked by `check`
        if service.transport.kind == "stream":
            return _StreamLoop(service, form, recv_size=self.recv_size)
        return _DatagramLoop(service, form, recv_size=self.recv_size)


def evented(*, recv_size: int = DEFAULT_RECV_SIZE) -> Evented:
    """Serve every connection from one thread with a non-blocking event loop.

    Takes `message_handler` values only (a blocking handler would stall every
    client: mypy rejects the pairing and `serve` raises `HandlerMismatchError`).
    Connections cost a few hundred bytes each instead of a thread. Replies that
    the peer does not read yet are buffered, and the loop stops reading from that
    peer until they are sent. TCP connections get TCP_NODELAY unless the
    transport says ``nodelay=False``.
    """
    return Evented(recv_size=recv_size)
