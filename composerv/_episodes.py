"""`Episodes`: log a repeated event once when it starts, then count it, then summarise.

A flood of the same event (a peer over its rate, datagrams from an unbound peer)
must not become a flood of log lines: the first occurrence for a key is logged,
later ones within `quiet` seconds are counted, and the count is logged with the
next occurrence after that.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict

from ._log import logger

__all__ = ["Episodes"]

# Keys remembered at most: an attacker that changes its address cannot grow this.
_MAX_KEYS = 4096


class Episodes:
    """Per-key episodes of one kind of event; thread-safe."""

    __slots__ = ("_level", "_lock", "_quiet", "_seen")

    def __init__(self, *, quiet: float = 60.0, level: int = logging.WARNING) -> None:
        self._quiet = quiet
        self._level = level
        self._lock = threading.Lock()
        # key -> (when the episode's last line was logged, occurrences not logged)
        self._seen: OrderedDict[object, tuple[float, int]] = OrderedDict()

    def occurred(
        self, key: object, message: str, *args: object, exc_info: BaseException | None = None
    ) -> None:
        """One occurrence for `key`: logged if it starts an episode (or the episode's
        quiet time passed, with how many were not logged), counted otherwise. A
        logged line carries `exc_info`'s traceback, if given."""
        now = time.monotonic()
        with self._lock:
            logged_at, unlogged = self._seen.pop(key, (None, 0))
            if logged_at is not None and now - logged_at < self._quiet:
                self._seen[key] = (logged_at, unlogged + 1)
                return
            self._seen[key] = (now, 0)
            while len(self._seen) > _MAX_KEYS:
                self._seen.popitem(last=False)
        if unlogged:
            message += " (and %d more like it since the last line)"
            args = (*args, unlogged)
        logger.log(self._level, message, *args, exc_info=exc_info)

    def forget(self, key: object) -> None:
        """End `key`'s episode now (its subject is gone), unlogged count and all."""
        with self._lock:
            self._seen.pop(key, None)
