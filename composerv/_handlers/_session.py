"""`session_handler`: a protocol as pure functions over per-connection state.

``start(peer) -> state`` makes a connection's state; ``step(state, message) ->
(state, output)`` answers each message. The output is what to do: a reply (bytes),
nothing (None), or actions: `Send` a reply, `Broadcast` to the other connections of
a group, `Join` or `Leave` a group, `Close` after the replies. Being pure, a
session can be tested on a list of messages with no socket
(`composerv.testing.run_messages`).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Generic, Literal, TypeGuard, TypeVar

import attrs

from .._addresses import Address
from .._context import RequestContext
from .._datagram import Datagram
from .._errors import ConfigurationError
from .._framing import Datagrams, MessageFn, StreamFraming, lines
from .._hub import EVERYONE, ContextOutlet, SlowConsumerPolicy
from .._runtime import Layer, MessageForm
from .._validate import callable_value, instance_of
from ._layering import layers_field
from ._message import MessageHandler, serve_datagram_messages, serve_stream_messages

__all__ = [
    "Action",
    "Broadcast",
    "Close",
    "DatagramSessionHandler",
    "Join",
    "Leave",
    "Output",
    "Send",
    "SessionHandler",
    "datagram_session_handler",
    "session_handler",
]

S = TypeVar("S")


@attrs.frozen
class Send:
    """Send `data` (framed) to this connection."""

    data: bytes


@attrs.frozen
class Broadcast:
    """Send `data` (framed) to every connection in `group` but this one (unless
    `to_sender`), within this server process."""

    data: bytes
    group: str = EVERYONE
    to_sender: bool = False


@attrs.frozen
class Join:
    """Add this connection to `group`."""

    group: str


@attrs.frozen
class Leave:
    """Remove this connection from `group`."""

    group: str


@attrs.frozen
class Close:
    """Close this connection once what was sent to it so far has gone out."""


Action = Send | Broadcast | Join | Leave | Close
"""One thing a session step does."""

Output = bytes | None | Action | Sequence[Action]
"""What a step returns beside the new state: a reply, nothing, or actions in order."""

_ACTIONS = (Send, Broadcast, Join, Leave, Close)


def _slow_consumer(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value not in ("drop", "close", "wait"):
        raise ConfigurationError(
            f"{attribute.name} must be 'drop', 'close' or 'wait', not {value!r}"
        )


class _Actor:
    """Carries out a step's actions for one connection."""

    __slots__ = ("_context", "_encode", "_policy")

    def __init__(
        self, context: RequestContext, framing: StreamFraming, policy: SlowConsumerPolicy
    ) -> None:
        self._context = context
        self._encode = framing.encode
        self._policy: SlowConsumerPolicy = policy

    def act(self, out: Output) -> bytes | None:
        """The reply to return for `out`, after carrying out its other actions in order
        (those before a wrong one are carried out: its error then ends the connection)."""
        if out is None or isinstance(out, bytes):
            return out
        context = self._context
        hub, outlet = context.hub, context.outlet
        for action in _actions(out):
            if not isinstance(action, _ACTIONS):
                raise _not_output(action, out)
            if isinstance(action, Close):
                context.close_after_reply()
                continue
            if hub is None or outlet is None:
                raise ConfigurationError(
                    f"a session over {context.socket!r} cannot {type(action).__name__}: "
                    "this runtime has no hub (broadcast runs under evented() and the "
                    "thread-based concurrencies, over plain TCP or unix sockets)"
                )
            if isinstance(action, Send):
                outlet.send_own(self._encode(action.data))
            elif isinstance(action, Broadcast):
                exclude = None if action.to_sender else outlet
                hub.send(self._encode(action.data), action.group, self._policy, exclude=exclude)
            elif isinstance(action, Join):
                hub.join(outlet, action.group)
            else:
                hub.leave(outlet, action.group)
        return None


def _actions(out: object) -> Sequence[object]:
    """`out`, an action or a list or tuple of them, as a sequence."""
    if isinstance(out, _ACTIONS):
        return (out,)
    if _is_sequence(out):
        return out
    raise _not_output(out, out)


def _is_sequence(value: object) -> TypeGuard[list[object] | tuple[object, ...]]:
    # A TypeGuard, since isinstance narrows to items of unknown type under pyright;
    # the caller checks each item.
    return isinstance(value, (list, tuple))


def _not_output(wrong: object, out: object) -> TypeError:
    where = "" if wrong is out else f" in {out!r}"
    return TypeError(
        "a session step must return bytes, None or actions (Send, Broadcast, Join, Leave, "
        f"Close), not {type(wrong).__name__} {wrong!r}{where}"
    )


@attrs.frozen
class SessionHandler(MessageHandler[socket.socket], Generic[S]):
    """A stream protocol as ``start(peer)`` and ``step(state, message)``; build it with
    `session_handler`."""

    kind: ClassVar[Literal["stream", "datagram"]] = "stream"

    start: Callable[[Address], S] = attrs.field(validator=callable_value)
    """Makes a new connection's state from its peer."""
    step: Callable[[S, bytes], tuple[S, Output]] = attrs.field(validator=callable_value)
    """Answers one message: the new state and what to do."""
    framing: StreamFraming = attrs.field(
        factory=lines, validator=instance_of(StreamFraming, "lines() or length_prefixed()")
    )
    """How messages and what is sent are framed."""
    slow_consumer: SlowConsumerPolicy = attrs.field(default="close", validator=_slow_consumer)
    """What a `Broadcast` does for a connection with ``max_output_buffer`` bytes waiting:
    ``"close"`` it, ``"drop"`` the message for it, or ``"wait"`` for room
    (blocking concurrencies only: `evented()` refuses it with `ConfigurationError`)."""
    layers: tuple[Layer, ...] = layers_field()
    """The layers around the handler, outermost first (see `layered`)."""

    def open_session(self, context: RequestContext) -> MessageFn:
        plain = context.socket is not None and not isinstance(context.socket, ssl.SSLSocket)
        # An event loop's connections are its own outlets, entered by the loop; it
        # sends what a step returns after what the step sent, as one write.
        own_outlet: ContextOutlet | None = None
        if plain and context.hub is not None:
            # A blocking connection: its sends go through one lock, from any thread,
            # and at once, while returned replies wait for the batch to end: they go
            # through the outlet too, to stay in order with Sends.
            own_outlet = context.outlet = ContextOutlet(context)
            context.hub.enter(own_outlet)
        step, act = self.step, _Actor(context, self.framing, self.slow_consumer).act
        encode = self.framing.encode
        state = self.start(context.peer)

        def answer(message: bytes) -> bytes | None:
            nonlocal state
            state, out = step(state, message)
            if out is None:
                return None
            if type(out) is bytes:
                if own_outlet is None:
                    return out
                own_outlet.send_own(encode(out))
                return None
            return act(out)

        return answer

    def handle(self, request: socket.socket, context: RequestContext) -> None:
        serve_stream_messages(request, context, self.open(context), self.framing)

    def for_event_loop(self) -> MessageForm:
        if self.slow_consumer == "wait":
            # Waiting for a slow consumer would block the one thread that serves
            # every connection; refused here rather than dropped at run time.
            raise ConfigurationError(
                "slow_consumer='wait' blocks the sender until the slow connection has "
                "room, which an event loop cannot do: use slow_consumer='close' or 'drop' "
                "with evented(), or a blocking concurrency such as threaded() or pooled()"
            )
        return super().for_event_loop()


@attrs.frozen
class DatagramSessionHandler(MessageHandler[Datagram], Generic[S]):
    """A datagram protocol with state per sender; build it with `session_handler` and
    `datagrams()`. A step's reply goes back to the sender; broadcast is for streams."""

    kind: ClassVar[Literal["stream", "datagram"]] = "datagram"

    start: Callable[[Address], S] = attrs.field(validator=callable_value)
    """Makes the state for a sender not seen yet."""
    step: Callable[[S, bytes], tuple[S, bytes | None]] = attrs.field(validator=callable_value)
    """Answers one datagram: the sender's new state and the reply (None: none)."""
    framing: Datagrams = attrs.field(
        factory=Datagrams, validator=instance_of(Datagrams, "datagrams()")
    )
    """Always `datagrams()`."""
    layers: tuple[Layer, ...] = layers_field()
    """The layers around the handler, outermost first (see `layered`)."""

    def open_session(self, context: RequestContext) -> MessageFn:
        hub = context.hub
        assert hub is not None  # every runtime that serves datagrams has one
        peer, start, step, states = context.peer, self.start, self.step, hub.peer_states

        def answer(message: bytes) -> bytes | None:
            unseen = object()
            state = states.get(peer, unseen)
            state, reply = step(start(peer) if state is unseen else state, message)  # type: ignore[arg-type]  # an S kept for this peer
            states.put(peer, state)
            return reply

        return answer

    def handle(self, request: Datagram, context: RequestContext) -> None:
        serve_datagram_messages(request, self.open(context))


def session_handler(
    start: Callable[[Address], S],
    step: Callable[[S, bytes], tuple[S, Output]],
    framing: StreamFraming | None = None,
    *,
    slow_consumer: SlowConsumerPolicy = "close",
    layers: tuple[Layer, ...] = (),
) -> SessionHandler[S]:
    """A handler for a protocol with state per connection, written as two pure functions.

    ``start(peer)`` makes a connection's state when it connects; ``step(state,
    message)`` returns ``(new_state, output)`` for each message, where the output is
    the reply (bytes), None, or actions (`Send`, `Broadcast`, `Join`, `Leave`,
    `Close`). It runs under every concurrency, `evented()` at message-handler speed.
    A chat room::

        def start(peer):
            return None  # no nick yet

        def step(nick, line):
            if nick is None:
                if not line.startswith(b"NICK "):
                    return None, b"ERR nick first"
                nick = line[5:]
                return nick, [Join("chat"), Send(b"* welcome " + nick)]
            return nick, Broadcast(nick + b": " + line, group="chat")

        serve(tcp(("127.0.0.1", 0)), evented(), session_handler(start, step))

    What waits for one connection is bounded by the limits' ``max_output_buffer``;
    `slow_consumer` says what a broadcast does past it. Groups span one server
    process (one worker under `workers`). For datagrams see `datagram_session_handler`.
    """
    return SessionHandler(
        start,
        step,
        lines() if framing is None else framing,
        slow_consumer=slow_consumer,
        layers=layers,
    )


def datagram_session_handler(
    start: Callable[[Address], S],
    step: Callable[[S, bytes], tuple[S, bytes | None]],
    *,
    layers: tuple[Layer, ...] = (),
) -> DatagramSessionHandler[S]:
    """A handler for datagram transports with state per sender (a syslog receiver that
    counts per host, a game server): ``start(peer)`` makes the state of a sender not
    seen yet, ``step(state, datagram) -> (state, reply)`` answers one datagram, and the
    reply (None: none) goes back to its sender. The state of the 4096 senders seen
    most recently is kept."""
    return DatagramSessionHandler(start, step, layers=layers)
