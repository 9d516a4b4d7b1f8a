"""`rate_limit`: at most so many connections, datagrams or messages per second per peer."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

import attrs

from .._addresses import peer_ip, peer_repr
from .._context import RequestContext
from .._episodes import Episodes
from .._errors import RefusedError
from .._framing import MessageFn
from .._runtime import Layer
from .._validate import positive_number

__all__ = ["RateLimit", "rate_limit"]

# Peers remembered at most: the oldest bucket goes first, so a flood of addresses
# costs memory in proportion to this, not to the flood.
MAX_PEERS = 65536


class _Buckets:
    """Token buckets per peer: `rate` tokens a second, at most `burst` saved."""

    __slots__ = ("_burst", "_lock", "_peers", "_rate")

    def __init__(self, rate: float, burst: float) -> None:
        self._rate = rate
        self._burst = burst
        self._lock = threading.Lock()
        # peer -> [tokens, when they were counted], updated in place: a message limit
        # takes a token per message, and a new tuple and min() cost a third more.
        self._peers: OrderedDict[object, list[float]] = OrderedDict()

    def take(self, peer: object) -> bool:
        """Take a token for `peer`; False if it has none left."""
        now = time.monotonic()
        peers, burst = self._peers, self._burst
        # acquire/release, not `with`: a message limit takes the lock per message,
        # and the context manager protocol costs twice as much.
        self._lock.acquire()
        try:
            bucket = peers.get(peer)
            if bucket is None:
                bucket = peers[peer] = [burst, now]
                if len(peers) > MAX_PEERS:
                    peers.popitem(last=False)
            else:
                peers.move_to_end(peer)
            tokens = bucket[0] + (now - bucket[1]) * self._rate
            if tokens > burst:  # noqa: PLR1730  # min() is a call, per message
                tokens = burst
            bucket[1] = now
            if tokens < 1.0:
                bucket[0] = tokens
                return False
            bucket[0] = tokens - 1.0
            return True
        finally:
            self._lock.release()


def _key(peer: object) -> object:
    """The bucket's key for `peer`: its IP address as bytes (an ipaddress object hashes
    in Python, which a per-message limit pays for on every message), or a unix peer's
    path."""
    address = peer_ip(peer)
    return peer if address is None else address.packed


@attrs.frozen
class RateLimit(Layer):
    """Limits each peer's rate; build it with `rate_limit`."""

    per_second: float = attrs.field(validator=positive_number)
    """The rate each peer may keep up."""
    burst: float = attrs.field(validator=positive_number)
    """How many may come at once after a quiet spell."""
    messages: bool = False
    """Count messages (of a message or session handler) instead of connections."""
    reply: bytes | None = None
    """With `messages`: the reply to a message over the limit (None: drop it)."""
    _buckets: _Buckets = attrs.field(init=False, eq=False, repr=False)
    _episodes: Episodes = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        # Mutable parts of an immutable value: each layer keeps its own counts.
        object.__setattr__(self, "_buckets", _Buckets(self.per_second, self.burst))
        object.__setattr__(self, "_episodes", Episodes())

    def admit(self, context: RequestContext) -> None:
        if self.messages or self._buckets.take(_key(context.peer)):
            return
        self._log(context)
        raise RefusedError(f"{peer_repr(context.peer)} is over its rate")

    def wrap(self, fn: MessageFn, context: RequestContext) -> MessageFn:
        if not self.messages:
            return fn
        take = self._buckets.take
        key = _key(context.peer)
        reply = self.reply

        def limited(message: bytes) -> bytes | None:
            if take(key):
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
    return RateLimit(
        per_second,
        max(1.0, per_second) if burst is None else burst,
        messages=messages,
        reply=reply,
    )
