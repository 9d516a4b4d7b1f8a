"""`message_handler`: a pure function from one request message to its reply."""

from __future__ import annotations

import abc
import socket
from collections.abc import Iterable
from typing import ClassVar, Literal, overload

import attrs

from .._context import RequestContext
from .._datagram import Datagram
from .._errors import MessageTooLargeError
from .._framing import Datagrams, MessageFn, StreamFraming, lines
from .._runtime import Handler, MessageForm
from .._transports._base import R
from .._validate import callable_value, instance_of

__all__ = [
    "DatagramMessageHandler",
    "MessageHandler",
    "StreamMessageHandler",
    "message_handler",
    "replies",
]


# One receive buffer per blocking connection, reused for every read: 64 KiB fills a
# loopback segment burst in one call and stays under glibc's mmap threshold.
RECV_SIZE = 65536


class MessageHandler(Handler[R]):
    """A handler made of a pure function from a message to its reply, and a framing.

    It runs under every concurrency: under a blocking one its `handle` reads
    frames, calls the function and writes the replies; an event loop (`evented`)
    takes the function and framing from `for_event_loop` and calls it itself.
    Build it with `message_handler`.
    """

    __slots__ = ()

    @property
    @abc.abstractmethod
    def fn(self) -> MessageFn:
        """The function called once per message."""

    def _open(self, context: RequestContext) -> MessageFn:
        return self.fn


def replies(fn: MessageFn, framing: StreamFraming, messages: Iterable[bytes]) -> bytes:
    """The framed replies of `fn` to `messages`, joined for one send."""
    encode = framing.encode
    return b"".join([encode(reply) for message in messages if (reply := fn(message)) is not None])


@attrs.frozen
class StreamMessageHandler(MessageHandler[socket.socket]):
    """Serves a stream transport: messages cut by a `StreamFraming`, replies framed alike."""

    kind: ClassVar[Literal["stream", "datagram"]] = "stream"

    fn: MessageFn = attrs.field(validator=callable_value)
    """Called once per message with its payload (without framing)."""
    framing: StreamFraming = attrs.field(
        factory=lines, validator=instance_of(StreamFraming, "lines() or length_prefixed()")
    )
    """How messages and replies are framed on the wire."""

    def handle(self, request: socket.socket, context: RequestContext) -> None:
        """Read messages, answer each; a message must arrive whole within
        ``read_timeout`` of its first byte, however slowly it trickles in."""
        decoder = self.framing.decoder()
        fn = self._open(context)
        buffer = bytearray(RECV_SIZE)
        receive, recv_into = context.receive, context.raw_recv_into
        context.begin_read(False)
        with memoryview(buffer) as view:
            while size := receive(recv_into, buffer, 0):
                try:
                    messages = decoder.feed(view[:size])
                except MessageTooLargeError as error:
                    self._reply(context, fn, error.messages)
                    raise
                if messages:
                    # A message ended: the next read waits for a new one, or (its
                    # first bytes are here) its read clock starts now.
                    self._reply(context, fn, messages)
                    context.begin_read(decoder.pending > 0)
                elif not decoder.pending:
                    context.begin_read(False)
        decoder.close()

    def _reply(self, context: RequestContext, fn: MessageFn, messages: list[bytes]) -> None:
        if out := replies(fn, self.framing, messages):
            context.send_all(out)

    def for_event_loop(self) -> MessageForm:
        return MessageForm(self.framing, self._open, self.fn)


@attrs.frozen
class DatagramMessageHandler(MessageHandler[Datagram]):
    """Serves a datagram transport: each datagram is a message, each reply a datagram."""

    kind: ClassVar[Literal["stream", "datagram"]] = "datagram"

    fn: MessageFn = attrs.field(validator=callable_value)
    """Called once per datagram with its payload."""
    framing: Datagrams = attrs.field(
        factory=Datagrams, validator=instance_of(Datagrams, "datagrams()")
    )
    """Always `datagrams()`."""

    def handle(self, request: Datagram, context: RequestContext) -> None:
        reply = self.fn(request.data)
        if reply is not None:
            request.reply(reply)

    def for_event_loop(self) -> MessageForm:
        return MessageForm(self.framing, self._open, self.fn)


@overload
def message_handler(fn: MessageFn) -> StreamMessageHandler: ...


@overload
def message_handler(fn: MessageFn, framing: StreamFraming) -> StreamMessageHandler: ...


@overload
def message_handler(fn: MessageFn, framing: Datagrams) -> DatagramMessageHandler: ...


def message_handler(
    fn: MessageFn, framing: StreamFraming | Datagrams | None = None
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
        return DatagramMessageHandler(fn, framing)
    return StreamMessageHandler(fn, lines() if framing is None else framing)
