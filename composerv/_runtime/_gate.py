"""`ListenerGate`: when a loop watches its listening socket. Every loop uses it.

A loop stops watching the listening socket, so that new clients wait in the
kernel's listen backlog, while the server is at ``max_connections`` and for a
moment after accept() ran out of a resource (EMFILE and the like): retrying at
once would spin the CPU (socketserver does: ~400k calls/s). The back-off is a
time to look again, not a sleep, so an event loop keeps serving the clients it
has meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["ACCEPT_BACK_OFF", "ListenerGate"]

ACCEPT_BACK_OFF = 0.1
"""Seconds a loop stops accepting after accept() ran out of a resource, as trio does:
long enough for handlers to finish and free what they hold."""


class ListenerGate:
    """Whether a loop should watch its listening socket now, and until when not.

    `has_room` says whether the server is below its connection limit (None: no
    limit). A loop asks `open` before each wait and bounds the wait by `resume_at`;
    it sets `paused` while it does not watch for lack of room, so that a request
    that ends knows to wake it.
    """

    __slots__ = ("_has_room", "paused", "resume_at")

    def __init__(self, has_room: Callable[[], bool] | None) -> None:
        self._has_room = has_room
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
        room = self._has_room is None or self._has_room()
        self.paused = not room
        return room

    def has_room(self) -> bool:
        """Whether the server is below its connection limit."""
        return self._has_room is None or self._has_room()

    def back_off(self) -> None:
        """Stop accepting for `ACCEPT_BACK_OFF` seconds."""
        self.resume_at = time.monotonic() + ACCEPT_BACK_OFF

    def bound(self, timeout: float | None) -> float | None:
        """`timeout`, shortened so that a wait ends when the back-off does."""
        if self.resume_at is None:
            return timeout
        left = max(0.0, self.resume_at - time.monotonic())
        return left if timeout is None else min(timeout, left)
