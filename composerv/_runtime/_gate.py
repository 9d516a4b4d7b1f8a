"""`ListenerGate`: when a loop watches its listening socket, and whom it admits.
Every loop uses it.

A loop stops watching the listening socket, so that new clients wait in the
kernel's listen backlog, while the server is at ``max_connections`` and for a
moment after accept() ran out of a resource (EMFILE and the like): retrying at
once would spin the CPU (socketserver does: ~400k calls/s). The back-off is a
time to look again, not a sleep, so an event loop keeps serving the clients it
has meanwhile.

With eviction (``Limits.evict_idle``) a loop at ``max_connections`` keeps
watching: when a client waits to be accepted, `admit` closes the connection that
has waited longest for a new request (see `evict_longest_idle`) and the loop
accepts the newcomer; only if none is idle does it stop watching, and looks again
`EVICTION_RETRY` later or when a request ends. The connections in flight are then
at most ``max_connections`` plus those evicted and not yet closed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["ACCEPT_BACK_OFF", "EVICTION_RETRY", "ListenerGate"]

ACCEPT_BACK_OFF = 0.1
"""Seconds a loop stops accepting after accept() ran out of a resource, as trio does:
long enough for handlers to finish and free what they hold."""


EVICTION_RETRY = 0.1
"""Seconds a loop at capacity with no idle connection to evict waits before it
looks again (a request ending wakes it sooner): a connection that has just become
idle makes room within this long, and a loop whose clients are all busy looks ten
times a second, not on every poll."""


class ListenerGate:
    """Whether a loop should watch its listening socket now, and until when not.

    `has_room` says whether the server is below its connection limit (None: no
    limit); `make_room`, if given, evicts a connection to admit a new one and says
    whether it did. A loop asks `open` before each wait and bounds the wait by
    `bound`; it sets `paused` while it does not watch for lack of room, so that a
    request that ends knows to wake it. Before the first accept of a wake-up it asks
    `admit`.
    """

    __slots__ = ("_has_room", "_make_room", "_retry_eviction_at", "paused", "resume_at")

    def __init__(
        self, has_room: Callable[[], bool] | None, make_room: Callable[[], bool] | None = None
    ) -> None:
        self._has_room = has_room
        self._make_room = make_room
        self._retry_eviction_at = 0.0
        self.paused = False
        """Whether the loop has stopped watching the listening socket for lack of room."""
        self.resume_at: float | None = None
        """When a back-off ends (monotonic), if one is on."""

    def open(self) -> bool:
        """Whether to watch the listening socket now (updating `paused`)."""
        if self.resume_at is not None:
            if time.monotonic() < self.resume_at:
                return False
            self.resume_at = None
        # Paused first, room second: a request that ends in between sees `paused`
        # and wakes the loop, which then looks again.
        self.paused = True
        room = self.has_room() or (
            self._make_room is not None and time.monotonic() >= self._retry_eviction_at
        )
        self.paused = not room
        return room

    def admit(self) -> bool:
        """Whether to accept a client that waits: there is room, or an idle connection
        was evicted to make it. If neither, eviction is tried again `EVICTION_RETRY`
        later."""
        if self.has_room():
            return True
        if self._make_room is not None:
            if self._make_room():
                return True
            self._retry_eviction_at = time.monotonic() + EVICTION_RETRY
        return False

    def has_room(self) -> bool:
        """Whether the server is below its connection limit."""
        return self._has_room is None or self._has_room()

    def back_off(self) -> None:
        """Stop accepting for `ACCEPT_BACK_OFF` seconds."""
        self.resume_at = time.monotonic() + ACCEPT_BACK_OFF

    def bound(self, timeout: float | None) -> float | None:
        """`timeout`, shortened so that a wait ends when the back-off (or the wait to
        retry eviction) does."""
        until = self.resume_at
        if self.paused and self._make_room is not None:
            until = (
                self._retry_eviction_at if until is None else min(until, self._retry_eviction_at)
            )
        if until is None:
            return timeout
        left = max(0.0, until - time.monotonic())
        return left if timeout is None else min(timeout, left)
