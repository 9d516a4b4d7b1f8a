"""`rate_limit`: at most so many connections, datagrams or messages per second per peer."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

import attrs

from .._addresses import peer_ip, peer_repr
from .._context import RequestContext
from .._episodes import Episodes
from .._errors import ConfigurationError, RefusedError
from .._framing import MessageFn
from .._runtime import Layer
from .._validate import check_type

__all__ = ["RateLimit", "rate_limit"]

# Peers remembered at most: the oldest bucket goes first, so a flood of addresses
# costs memory in proportion to this, not to the flood.
MAX_PEERS = 65536


class _Cells:
    """When each peer's next request is due: a token bucket of `burst` tokens filled at
    `rate` a second, kept as one number per peer (GCRA, the generic cell rate
    algorithm): a request is within the rate unless it comes more than the burst's
    worth of intervals before its due time, and each one admitted moves the due time
    one interval on."""

    __slots__ = ("_interval", "_lock", "_peers", "_tolerance")

    def __init__(self, rate: float, burst: float) -> None:
        self._interval = 1.0 / rate
        self._tolerance = (burst - 1.0) / rate
        self._lock = threading.Lock()
        # peer -> [its due time], a list so that a connection's messages update the
        # cell it took once, with no lookup per message.
        self._peers: OrderedDict[object, list[float]] = OrderedDict()

    def cell(self, peer: object) -> list[float]:
        """`peer`'s cell (new: due at once, with its whole burst), now the most recently
        used: the least recently used goes once there are `MAX_PEERS`."""
        with self._lock:
            cell = self._peers.get(peer)
            if cell is None:
                cell = self._peers[peer] = [0.0]
                if len(self._peers) > MAX_PEERS:
                    self._peers.popitem(last=False)
            else:
                self._peers.move_to_end(peer)
            return cell

    def take(self, cell: list[float]) -> bool:
        """Whether a request of `cell`'s peer is within the rate now (then it counts)."""
        now = time.monotonic()
        # acquire/release, not `with`: a message limit takes the lock per message,
        # and the context manager protocol costs twice as much.
        self._lock.acquire()
        try:
            due = cell[0]
            if due < now:
                due = now
            elif due - now > self._tolerance:
                return False
            cell[0] = due + self._interval
            return True
        finally:
            self._lock.release()


def _positive_rate(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    check_type(attribute.name, value, (int, float), "a number of requests a second")
    if not value > 0:  # type: ignore[operator]  # a number, checked above
        raise ConfigurationError(
            f"{attribute.name} must be a positive number of requests a second, not {value!r}"
        )


def _at_least_one(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    check_type(attribute.name, value, (int, float), "a number of requests")
    if not value >= 1:  # type: ignore[operator]  # a number, checked above
        raise ConfigurationError(
            f"{attribute.name} must be at least 1 (requests let through at once), not {value!r}"
        )


def _key(peer: object) -> object:
    """The bucket's key for `peer`: its IP address as bytes (an ipaddress object hashes
    in Python, which a per-message limit pays for on every message), or a unix peer's
    path."""
    address = peer_ip(peer)
    return peer if address is None else address.packed


@attrs.frozen
class RateLimit(Layer):
    """Limits each peer's rate; build it with `rate_limit`."""

    per_second: float = attrs.field(validator=_positive_rate)
    """The rate each peer may keep up."""
    burst: float = attrs.field(validator=_at_least_one)
    """How many may come at once after a quiet spell."""
    messages: bool = False
    """Count messages (of a message or session handler) instead of connections."""
    reply: bytes | None = None
    """With `messages`: the reply to a message over the limit (None: drop it)."""
    _cells: _Cells = attrs.field(init=False, eq=False, repr=False)
    _episodes: Episodes = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        # Mutable parts of an immutable value: each layer keeps its own counts.
        object.__setattr__(self, "_cells", _Cells(self.per_second, self.burst))
        object.__setattr__(self, "_episodes", Episodes())

    def admit(self, context: RequestContext) -> None:
        if self.messages or self._cells.take(self._cells.cell(_key(context.peer))):
            return
        self._log(context)
        raise RefusedError(f"{peer_repr(context.peer)} is over its rate")

    def wrap(self, fn: MessageFn, context: RequestContext) -> MessageFn:
        if not self.messages:
            return fn
        take, cell = self._cells.take, self._cells.cell(_key(context.peer))
        reply = self.reply

        def limited(message: bytes) -> bytes | None:
            if take(cell):
                return fn(message)
            self._log(context)
            return reply

        return limited

    def _log(self, context: RequestContext) -> None:
        self._episodes.occurred(
            _key(context.peer),
            "%s is over its rate of %g %s a second; %s",
            peer_repr(context.peer),
            self.per_second,
            "messages" if self.messages else "connections",
            "refusing it"
            if not self.messages
            else "answering with a refusal"
            if self.reply is not None
            else "dropping them",
        )


def rate_limit(
    per_second: float,
    *,
    burst: float | None = None,
    messages: bool = False,
    reply: bytes | None = None,
) -> RateLimit:
    """At most `per_second` a second from each peer (by IP address; a unix peer by its
    path), `burst` at once (default: one second's worth, at least 1).

    By default it counts connections (and datagrams): one over the limit is closed at
    once (a datagram is dropped). With ``messages=True`` (message and session handlers)
    it counts each message: one over the limit gets `reply`, or nothing if `reply` is
    None, and the connection stays open. Each episode of a peer over its rate is
    logged once, not once per request.
    """
    if burst is None:
        # Checked here too: the default burst is computed from it.
        _positive_rate(None, attrs.fields(RateLimit).per_second, per_second)
        burst = max(1.0, per_second)
    return RateLimit(per_second, burst, messages=messages, reply=reply)
