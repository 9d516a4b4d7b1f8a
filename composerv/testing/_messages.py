"""`run_messages` and `run_bytes`: a message handler driven with no socket at all."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from composerv import Address, HandlerMismatchError, RequestContext, limits
from composerv._hub import Hub
from composerv.abc import Handler, MessageForm, StreamFraming

__all__ = ["run_bytes", "run_messages"]

Bytes = bytes | bytearray | memoryview


def run_messages(
    handler: Handler[Any], messages: Iterable[bytes], *, peer: Address = ("127.0.0.1", 0)
) -> list[bytes]:
    """The replies `handler` gives to `messages`, in order, as an event loop gets them.

    The handler is driven through its event-loop form (``handler.for_event_loop()``,
    a `composerv.abc.MessageForm`), the way `composerv.evented` runs it, so any
    handler that offers one works: `composerv.message_handler` values and the
    handlers layered on them. Messages are payloads, without framing; messages
    without a reply (None) add nothing to the list. For a stream framing the
    messages are one connection's, from `peer`, in one `RequestContext` with the
    default `composerv.limits`; for `composerv.datagrams` each is a datagram of
    its own from `peer`, as a datagram server sees them. ::

        >>> from composerv import message_handler
        >>> run_messages(message_handler(bytes.upper), [b"hello", b"world"])
        [b'HELLO', b'WORLD']

    A blocking handler (`composerv.stream_handler`) has no such form: test it with
    `connect_handler`, or serve it with `serving`.
    """
    form = _message_form(handler, "run_messages")
    if isinstance(form.framing, StreamFraming):
        connection = _Connection(handler, form, peer)
        return [reply for message in messages for reply in connection.answer(message)]
    # One hub for the run, as a datagram server has: it keeps the state per sender.
    hub = Hub(limits().max_output_buffer)
    return [
        reply
        for message in messages
        for reply in _Connection(handler, form, peer, hub).answer(message)
    ]


def run_bytes(
    handler: Handler[Any], data: Bytes | Iterable[Bytes], *, peer: Address = ("127.0.0.1", 0)
) -> bytes:
    """What `handler` sends back when one connection from `peer` sends `data`.

    `data` is raw bytes as the client writes them (framed), or an iterable of
    chunks, each fed as one receive: how the stream is split never changes the
    messages. The bytes are cut with the handler's framing, each message is
    answered as in `run_messages`, and the replies come back framed and joined::

        >>> from composerv import length_prefixed, message_handler
        >>> run_bytes(message_handler(bytes.upper), b"one\\ntwo\\n")
        b'ONE\\nTWO\\n'
        >>> run_bytes(message_handler(bytes.upper), [b"o", b"ne\\nt", b"wo\\n"])
        b'ONE\\nTWO\\n'
        >>> run_bytes(message_handler(bytes.upper, length_prefixed(header_size=1)), b"\\x02hi")
        b'\\x02HI'

    Where a server would close the connection it raises what the server logs:
    `composerv.MessageTooLargeError` for a message over the framing's
    ``max_size``, `composerv.TruncatedMessageError` when `data` ends inside a
    message. A datagram handler has no byte stream: use `run_messages`.
    """
    form = _message_form(handler, "run_bytes")
    framing = form.framing
    if not isinstance(framing, StreamFraming):
        raise HandlerMismatchError(
            f"run_bytes needs a stream handler, not {handler!r}: each datagram is one "
            "message, so test a datagram handler with run_messages(handler, datagrams)"
        )
    connection = _Connection(handler, form, peer)
    decoder = framing.decoder()
    # The cast: pyright narrows the Iterable[Bytes] side to memoryview[Bytes] too.
    chunks = [cast("Bytes", data)] if isinstance(data, (bytes, bytearray, memoryview)) else data
    out = [
        framing.encode(reply)
        for chunk in chunks
        for message in decoder.feed(chunk)
        for reply in connection.answer(message)
    ]
    decoder.close()
    return b"".join(out)


def _message_form(handler: Handler[Any], helper: str) -> MessageForm:
    for_event_loop = getattr(handler, "for_event_loop", None)
    if for_event_loop is None:
        raise HandlerMismatchError(
            f"{helper} needs a handler value such as message_handler(fn), not {handler!r}"
        )
    form: MessageForm | None = for_event_loop()
    if form is None:
        raise HandlerMismatchError(
            f"{helper} drives a handler through its event-loop form, and {handler!r} has "
            "none (it blocks): test it with connect_handler(handler), or serve it "
            "with serving(serve(...))"
        )
    return form


class _Connection:
    """One connection (or datagram) as `composerv.evented` opens it: the handler's
    layers admit it, and what a session sends itself comes back in order with the
    replies (a hub that only this connection is in)."""

    def __init__(
        self, handler: Handler[Any], form: MessageForm, peer: Address, hub: Hub | None = None
    ) -> None:
        self._framing = form.framing
        self._sent: list[bytes] = []
        context = RequestContext(None, peer, limits())
        for layer in handler.layers:
            layer.admit(context)
        if form.fn is not None:
            self._fn = form.fn
            return
        context.hub = Hub(context.limits.max_output_buffer) if hub is None else hub
        context.outlet = self
        context.hub.enter(self)
        self._fn = form.open(context)

    @property
    def peer(self) -> object:
        return None

    def queued(self) -> int:
        return 0

    def shed(self) -> None:
        """Never called: nothing waits for this connection."""

    def push(self, data: bytes) -> int:
        if isinstance(self._framing, StreamFraming):
            decoder = self._framing.decoder()
            self._sent.extend(decoder.feed(data))
        else:
            self._sent.append(data)
        return len(data)

    def send_own(self, data: bytes) -> None:
        self.push(data)

    def answer(self, message: bytes) -> list[bytes]:
        """The payloads sent back for `message`, in order."""
        reply = self._fn(message)
        sent, self._sent = self._sent, []
        return sent if reply is None else [*sent, reply]
