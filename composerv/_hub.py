"""`Hub`: the connections of one server process in named groups, and sending to them.

Sessions send to other connections through the hub of the runtime that serves
them (``context.hub``). Each connection is an `Outlet` its runtime provides: an
event loop queues what is sent and writes it when the socket is ready; a blocking
runtime writes it under the connection's send lock. What may wait for one
connection is bounded by the limits' ``max_output_buffer``; past it the
sender's slow-consumer policy decides: drop the message for that connection,
close that connection, or (blocking runtimes only) wait for room.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal, Protocol

from ._addresses import peer_repr
from ._log import logger

if TYPE_CHECKING:
    from ._context import RequestContext

__all__ = ["EVERYONE", "ContextOutlet", "Hub", "Outlet", "PeerStates", "SlowConsumerPolicy"]

EVERYONE = "*"
"""The group every connection of a hub is in."""

SlowConsumerPolicy = Literal["drop", "close", "wait"]
"""What a send does for a connection that has ``max_output_buffer`` bytes waiting."""


class Outlet(Protocol):
    """One connection as a hub sends to it."""

    @property
    def peer(self) -> object:
        """Who is at the other end, for the log."""

    def queued(self) -> int:
        """How many bytes wait to be sent to it."""
        ...

    def push(self, data: bytes, policy: SlowConsumerPolicy, limit: int) -> bool:
        """Send or queue `data`; False if `policy` left it out (dropped, or the
        connection closed as a slow consumer)."""
        ...

    def send_own(self, data: bytes) -> None:
        """Send the connection's own reply, in order with what was sent to it before;
        never left out (the server stops reading from a client whose replies wait)."""


class Hub:
    """Named groups of the connections one runtime serves.

    Every connection is in `EVERYONE` from the time it `enter`s until it `exit`s.
    A slow consumer's episode (messages dropped, or a close) is logged once when it
    begins, not once per message.
    """

    __slots__ = ("_groups", "_lagging", "limit", "peer_states")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.peer_states = PeerStates()
        """Datagram sessions' state per peer."""
        """The bound on what waits for one connection (``max_output_buffer``)."""
        self._groups: dict[str, set[Outlet]] = {EVERYONE: set()}
        self._lagging: set[Outlet] = set()

    def enter(self, outlet: Outlet) -> None:
        """A connection starts to take part (in `EVERYONE`)."""
        self._groups[EVERYONE].add(outlet)

    def exit(self, outlet: Outlet) -> None:
        """A connection is gone: out of every group."""
        for group in list(self._groups.values()):
            group.discard(outlet)
        self._lagging.discard(outlet)

    def join(self, outlet: Outlet, group: str) -> None:
        """Add `outlet` to `group`."""
        self._groups.setdefault(group, set()).add(outlet)

    def leave(self, outlet: Outlet, group: str) -> None:
        """Remove `outlet` from `group`."""
        members = self._groups.get(group)
        if members is not None:
            members.discard(outlet)
            if not members and group != EVERYONE:
                del self._groups[group]

    def members(self, group: str) -> Iterable[Outlet]:
        """The connections in `group` now."""
        return tuple(self._groups.get(group, ()))

    def send(
        self,
        data: bytes,
        group: str,
        policy: SlowConsumerPolicy,
        *,
        exclude: Outlet | None = None,
    ) -> int:
        """Send framed `data` to every connection in `group` but `exclude`; how many
        got it."""
        delivered = 0
        for outlet in self.members(group):
            if outlet is exclude:
                continue
            if outlet.push(data, policy, self.limit):
                delivered += 1
                self._lagging.discard(outlet)
            elif outlet not in self._lagging:
                self._lagging.add(outlet)
                logger.warning(
                    "%s is not reading: %d bytes wait for it (max_output_buffer=%d); %s",
                    peer_repr(outlet.peer),
                    outlet.queued(),
                    self.limit,
                    "dropping what is sent to it" if policy == "drop" else "closing it",
                )
        return delivered


class ContextOutlet:
    """A blocking connection as a hub sends to it: sends under one lock, from any thread.

    Nothing is queued: what waits for the connection is what its socket's send
    buffer holds. A send that would block follows the policy: ``"wait"`` blocks the
    sending thread up to ``write_timeout``; ``"drop"`` leaves out a message of which
    nothing was sent; otherwise, and once part of a message went out (the rest must
    follow, or the stream's framing breaks), the connection is cut.
    """

    __slots__ = ("_context", "_lock")

    def __init__(self, context: RequestContext) -> None:
        self._context = context
        self._lock = threading.Lock()

    @property
    def peer(self) -> object:
        return self._context.peer

    def queued(self) -> int:
        return 0

    def push(self, data: bytes, policy: SlowConsumerPolicy, limit: int) -> bool:
        context = self._context
        with self._lock:
            if policy == "wait":
                context.send_all(data)
                return True
            try:
                sent = context.send_now(data)
            except OSError:
                sent = -1
            if sent == len(data):
                return True
            if sent == 0 and policy == "drop":
                return False
            context.cut()
            return False

    def send_own(self, data: bytes) -> None:
        """The connection's own reply, in order with what others send it."""
        with self._lock:
            self._context.send_all(data)


class PeerStates:
    """What a datagram session keeps per peer, for the most recent `MAX_PEERS` peers."""

    MAX_PEERS = 4096

    __slots__ = ("_states",)

    def __init__(self) -> None:
        self._states: OrderedDict[object, object] = OrderedDict()

    def get(self, peer: object, default: object) -> object:
        """The state of `peer`, or `default` for a peer not seen (or forgotten)."""
        state = self._states.pop(peer, default)
        self._states[peer] = state
        while len(self._states) > self.MAX_PEERS:
            self._states.popitem(last=False)
        return state

    def put(self, peer: object, state: object) -> None:
        """Keep `state` for `peer`."""
        self._states[peer] = state
