"""`message_handler`: a pure function from one request message to its reply.

The blocking loop here is shared by every message handler (sessions too): it reads
frames within the read deadline of each whole message, answers them, and sends the
replies in batches of at most the limits' ``max_output_buffer``, so one receive
full of small requests cannot build an unbounded pile of replies.
"""

from __future__ import annotations

import abc
import socket
from collections.abc import Callable, Iterable
from typing import ClassVar, Literal, overload

import attrs

from .._context import RequestContext
from .._datagram import Datagram
from .._errors import MessageTooLargeError
from .._framing import Datagrams, Framing, MessageFn, StreamFraming, lines
from .._runtime import Handler, Layer, MessageForm
from .._transports._base import R
from .._validate import callable_value, instance_of
from ._layering import layers_field

__all__ = [
    "DatagramMessageHandler",
    "MessageHandler",
    "StreamMessageHandler",
    "message_handler",
    "serve_datagram_messages",
    "serve_stream_messages",
]


# One receive buffer per blocking connection, reused for every read: 64 KiB fills a
# loopback segment burst in one call and stays under glibc's mmap threshold.
RECV_SIZE = 65536


class MessageHandler(Handler[R]):
    """A handler that answers messages: a framing, and per connection a function from
    a message to its reply.

    It runs under every concurrency: under a blocking one its `handle` reads
    frames, calls the function and writes the replies; an event loop (`evented`)
    takes the framing and the function from `for_event_loop` and calls it itself.
    Build one with `message_handler` (a pure function) or `session_handler` (state
    per connection).
    """

    __slots__ = ()

    @property
    @abc.abstractmethod
    def framing(self) -> Framing[R]:
        """How messages and replies are framed."""

    @property
    def stateless_fn(self) -> MessageFn | None:
        """The one function of a handler that keeps no state per connection, if so."""
        return None

    @abc.abstractmethod
    def open_session(self, context: RequestContext) -> MessageFn:
        """The function that answers the messages of `context`'s connection (or of a
        datagram's sender), before layers."""

    def open(self, context: RequestContext) -> MessageFn:
        """`open_session`, wrapped by the layers that wrap messages."""
        fn = self.open_session(context)
        for layer in reversed(self.layers):
            fn = layer.wrap(fn, context)
        return fn

    def for_event_loop(self) -> MessageForm:
        fn = self.stateless_fn
        if any(layer.wraps_messages() for layer in self.layers):
            fn = None  # each connection gets its wrapped function from `open`
        framing = self.framing
        assert isinstance(framing, (StreamFraming, Datagrams))  # the two kinds of framing
        return MessageForm(framing, self.open, fn)


def _send_replies(
    fn: MessageFn,
    framing: StreamFraming,
    messages: Iterable[bytes],
    context: RequestContext,
    send: Callable[[bytes], object],
) -> None:
    """Send `fn`'s framed replies to `messages`, joined in batches of about the limits'
    ``max_output_buffer`` (each batch ends with a whole reply); the messages after one
    that closes the connection (a session's `Close`) go unanswered."""
    encode, batch = framing.encode, context.limits.max_output_buffer
    parts: list[bytes] = []
    size = 0
    try:
        for message in messages:
            reply = fn(message)
            if reply is not None:
                framed = encode(reply)
                parts.append(framed)
                size += len(framed)
                if size >= batch:
                    # Emptied first: a send that fails is not tried again below.
                    full, parts, size = parts, [], 0
                    send(b"".join(full))
            if context.closing:
                break
    finally:
        # Also when `fn` fails: the replies before the failure go out before the close.
        if parts:
            send(b"".join(parts))


def serve_stream_messages(
    request: socket.socket, context: RequestContext, fn: MessageFn, framing: StreamFraming
) -> None:
    """Read messages off `request`, answer each with `fn`; a message must arrive whole
    within ``read_timeout`` of its first byte, however slowly it trickles in."""
    decoder = framing.decoder()
    buffer = bytearray(RECV_SIZE)
    receive, recv_into = context.receive, context.raw_recv_into
    outlet = context.outlet
    send = context.send_all if outlet is None else outlet.send_own
    context.begin_read(False)
    with memoryview(buffer) as view:
        while size := receive(recv_into, buffer, 0):
            try:
                messages = decoder.feed(view[:size])
            except MessageTooLargeError as error:
                _send_replies(fn, framing, error.messages, context, send)
                raise
            if messages:
                _send_replies(fn, framing, messages, context, send)
                if context.closing:
                    return
                # A message ended: the next read waits for a new one, or (its
                # first bytes are here) its read clock starts now.
                context.begin_read(decoder.pending > 0)
            elif not decoder.pending:
                context.begin_read(False)
    decoder.close()


def serve_datagram_messages(request: Datagram, fn: MessageFn) -> None:
    """Answer one datagram with `fn`; the reply goes back to its sender."""
    reply = fn(request.data)
    if reply is not None:
        request.reply(reply)


class _OneFunction(MessageHandler[R]):
    """A message handler whose one function `fn` answers every connection."""

    __slots__ = ()

    fn: MessageFn
    """Called once per message with its payload."""

    @property
    def stateless_fn(self) -> MessageFn:
        return self.fn

    def open_session(self, context: RequestContext) -> MessageFn:
        return self.fn


@attrs.frozen
class StreamMessageHandler(_OneFunction[socket.socket]):
    """Serves a stream transport: messages cut by a `StreamFraming`, replies framed alike."""

    kind: ClassVar[Literal["stream", "datagram"]] = "stream"

    fn: MessageFn = attrs.field(validator=callable_value)
    """Called once per message with its payload (without framing)."""
    framing: StreamFraming = attrs.field(
        factory=lines, validator=instance_of(StreamFraming, "lines() or length_prefixed()")
    )
    """How messages and replies are framed on the wire."""
    layers: tuple[Layer, ...] = layers_field()
    """The layers around the handler, outermost first (see `layered`)."""

    def handle(self, request: socket.socket, context: RequestContext) -> None:
        serve_stream_messages(request, context, self.open(context), self.framing)


@attrs.frozen
class DatagramMessageHandler(_OneFunction[Datagram]):
    """Serves a datagram transport: each datagram is a message, each reply a datagram."""

    kind: ClassVar[Literal["stream", "datagram"]] = "datagram"

    fn: MessageFn = attrs.field(validator=callable_value)
    """Called once per datagram with its payload."""
    framing: Datagrams = attrs.field(
        factory=Datagrams, validator=instance_of(Datagrams, "datagrams()")
    )
    """Always `datagrams()`."""
    layers: tuple[Layer, ...] = layers_field()
    """The layers around the handler, outermost first (see `layered`)."""

    def handle(self, request: Datagram, context: RequestContext) -> None:
        serve_datagram_messages(request, self.open(context))


@overload
def message_handler(fn: MessageFn, *, layers: tuple[Layer, ...] = ()) -> StreamMessageHandler: ...


@overload
def message_handler(
    fn: MessageFn, framing: StreamFraming, *, layers: tuple[Layer, ...] = ()
) -> StreamMessageHandler: ...


@overload
def message_handler(
    fn: MessageFn, framing: Datagrams, *, layers: tuple[Layer, ...] = ()
) -> DatagramMessageHandler: ...


def message_handler(
    fn: MessageFn,
    framing: StreamFraming | Datagrams | None = None,
    *,
    layers: tuple[Layer, ...] = (),
) -> StreamMessageHandler | DatagramMessageHandler:
    """A handler made of a pure function from one request message to its reply.

    ``fn(message) -> reply`` gets each message's payload as bytes and returns the
    reply's payload, or None to send nothing. `framing` says how messages are cut
    and replies framed: `lines()` (the default), `length_prefixed()` or
    `datagrams()`. A message over the framing's ``max_size`` closes its connection
    and is logged as a warning; other connections are not affected.

    It runs under every concurrency, including the event loop `evented()`::

        serve(tcp(("127.0.0.1", 7)), evented(), message_handler(lambda line: line))
        serve(udp(("127.0.0.1", 7)), pooled(), message_handler(bytes.upper, datagrams()))
    """
    if isinstance(framing, Datagrams):
        return DatagramMessageHandler(fn, framing, layers=layers)
    return StreamMessageHandler(fn, lines() if framing is None else framing, layers=layers)
