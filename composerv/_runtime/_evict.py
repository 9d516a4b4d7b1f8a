"""Eviction: at capacity, the connection that has waited longest for a new request
makes room for a new client, as nginx does with idle keep-alive connections.

Written once: every runtime supplies its connections as `Evictable` values (a
blocking request's context, an event loop's connection) and the bound it reached;
`Evictions.evict_longest_idle` picks, closes and logs. A connection in the middle of a
request is never chosen.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Protocol

from .._addresses import Address, peer_repr
from .._episodes import Episodes

__all__ = ["EVICTABLE_AFTER", "Evictable", "Evictions"]

EVICTABLE_AFTER = 1.0
"""Seconds a connection must have waited for a new request before it can be evicted:
one that has waited less is most likely between two messages of one conversation
(its client read a reply and is sending the next request), not holding a place."""


class Evictable(Protocol):
    """A connection as eviction sees it."""

    @property
    def peer(self) -> Address:
        """The client's address, for the log."""
        ...

    @property
    def idle_since(self) -> float | None:
        """Since when (monotonic seconds) it waits for a new request; None if it does
        not (it is mid-request, or already evicted)."""

    def evict(self) -> bool:
        """Close it if it still waits for a new request; whether it did."""
        ...


class Evictions:
    """The evictions of one server at one bound (``"max_connections=100"``), logged
    as episodes: a flood of newcomers at capacity evicts one connection each, which
    is one INFO line, then a count of the others once a minute."""

    __slots__ = ("_bound", "_log")

    def __init__(self, bound: str) -> None:
        self._bound = bound
        self._log = Episodes(quiet=60.0, level=logging.INFO)

    def evict_longest_idle(self, candidates: Iterable[Evictable]) -> bool:
        """Close the candidate that has waited longest for a new request (and at least
        `EVICTABLE_AFTER`), to admit a new client; whether one was closed (none has
        waited so long, or the one chosen has just become busy)."""
        victim: Evictable | None = None
        oldest = time.monotonic() - EVICTABLE_AFTER
        for candidate in candidates:
            since = candidate.idle_since
            if since is not None and since < oldest:
                victim, oldest = candidate, since
        if victim is None or not victim.evict():
            return False
        self._log.occurred(
            None,
            "closed %s, idle for %.1fs, to admit a new connection at %s",
            peer_repr(victim.peer),
            time.monotonic() - oldest,
            self._bound,
        )
        return True
