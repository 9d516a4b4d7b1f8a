"""`Hub`: the connections of one server process in named groups, and sending to them.

Sessions send to other connections through the hub of the runtime that serves
them (``context.hub``). Each connection is an `Outlet` its runtime provides: an
event loop queues what is sent and writes it when the socket is ready; a blocking
runtime writes it under the connection's send lock. Once the kernel's send buffer
of a connection is full, what more may wait for it in the process is bounded by
the limits' ``max_output_buffer`` (as asyncio's write buffer limit is; a blocking
runtime queues nothing); past it the sender's slow-consumer policy decides, here
for every runtime: drop the message for that connection, close that connection,
or (blocking runtimes only) wait for room.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Literal, Protocol

from ._addresses import Address, peer_repr
from ._episodes import Episodes

__all__ = [
    "EVERYONE",
    "BlockingConnection",
    "ContextOutlet",
    "Hub",
    "Outlet",
    "PeerStates",
    "SlowConsumerPolicy",
]

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
        """How many bytes wait for it in the process (beyond the kernel's buffer)."""
        ...

    def push(self, data: bytes) -> int:
        """Send or queue what it can of `data` without waiting; how many bytes of it
        went (if only part did, the hub sheds the connection: the rest must follow)."""
        ...

    def send_own(self, data: bytes) -> None:
        """Send the connection's own reply, in order with what was sent to it before;
        never left out (the server stops reading from a client whose replies wait).
        A blocking runtime waits for room, up to ``write_timeout``."""

    def shed(self) -> None:
        """Close it as a slow consumer (the hub has logged why)."""


class Hub:
    """Named groups of the connections one runtime serves.

    Every connection is in `EVERYONE` from the time it `enter`s until it `exit`s.
    A slow consumer's episode (messages dropped, or a close) is logged as an
    `Episodes` line: once when it begins, then at most once a minute with a count,
    not once per message (a consumer that never reads still takes a message now and
    then, as the kernel makes room, without ending its episode).
    """

    __slots__ = ("_groups", "_lock", "_slow", "limit", "peer_states")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        """The bound on what waits for one connection (``max_output_buffer``)."""
        self.peer_states = PeerStates()
        """Datagram sessions' state per peer."""
        self._groups: dict[str, set[Outlet]] = {EVERYONE: set()}
        self._slow = Episodes()
        # Held while a connection exits and while a send logs one: an episode
        # logged for a connection that has exited would never be forgotten.
        self._lock = threading.Lock()

    def enter(self, outlet: Outlet) -> None:
        """A connection starts to take part (in `EVERYONE`)."""
        self._groups[EVERYONE].add(outlet)

    def exit(self, outlet: Outlet) -> None:
        """A connection is gone: out of every group, then its episode forgotten."""
        with self._lock:
            for group in list(self._groups.values()):
                group.discard(outlet)
            self._slow.forget(outlet)

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
        got it. A connection with more than ``limit`` bytes waiting, counting `data`,
        or that cannot take `data` now, gets what `policy` says (``"wait"``: only under a
        blocking runtime, as `SessionHandler.for_event_loop` refuses it)."""
        delivered = 0
        limit = self.limit
        everyone = self._groups[EVERYONE]
        for outlet in self.members(group):
            if outlet is exclude:
                continue
            waiting = outlet.queued()
            if policy == "wait":
                outlet.send_own(data)
                taken = len(data)
            else:
                taken = outlet.push(data) if waiting + len(data) <= limit else 0
            if taken == len(data):
                delivered += 1
                continue
            # Part of a message cannot be left out: the rest must follow it.
            closing = policy == "close" or taken > 0
            with self._lock:
                # A connection that has exited (in its own thread) is not logged again.
                if outlet in everyone:
                    self._slow.occurred(
                        outlet,
                        "%s is not reading: its kernel send buffer is full and %d more "
                        "bytes wait for it (max_output_buffer=%d); %s",
                        peer_repr(outlet.peer),
                        waiting,
                        limit,
                        "closing it" if closing else "dropping what is sent to it",
                    )
            if closing:
                outlet.shed()
        return delivered


class BlockingConnection(Protocol):
    """What `ContextOutlet` writes through: a blocking request's context (so that the
    hub, which the context holds, does not depend on the context's module)."""

    peer: Address

    def send_now(self, data: bytes) -> int:
        """One send of what fits of `data` at once, without waiting for room."""
        ...

    def send_all(self, data: bytes) -> None:
        """Send all of `data`, within the write timeout."""

    def cut(self) -> None:
        """Force the connection closed."""


class ContextOutlet:
    """A blocking connection as a hub sends to it: sends under one lock, from any thread.

    Nothing is queued in the process: what waits for the connection is what its
    socket's send buffer holds. A push never blocks the sending thread: it sends
    what the kernel takes at once, and cuts the connection if that was only part of
    the message (the rest must follow, or the stream's framing breaks).
    """

    __slots__ = ("_context", "_lock")

    def __init__(self, context: BlockingConnection) -> None:
        self._context = context
        self._lock = threading.Lock()

    @property
    def peer(self) -> object:
        return self._context.peer

    def queued(self) -> int:
        return 0

    def push(self, data: bytes) -> int:
        with self._lock:
            try:
                return self._context.send_now(data)
            except OSError:
                return 0

    def send_own(self, data: bytes) -> None:
        """The connection's own reply, in order with what others send it."""
        with self._lock:
            self._context.send_all(data)

    def shed(self) -> None:
        # Its handler's read wakes with the end of stream and ends the request.
        self._context.cut()


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
