"""`Episodes`: log a repeated event once when it starts, then count it, then summarise.

A flood of the same event (a peer over its rate, datagrams from an unbound peer)
must not become a flood of log lines: the first occurrence for a key is logged,
later ones within `quiet` seconds are counted, and the count is logged with the
next occurrence after that. An episode that ends (no occurrence for `quiet`
seconds) is summarised with the next event of its kind, when its key is forgotten
or pushed out, or when the server closes (`summarise_episodes`): a count is never
dropped unlogged.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import OrderedDict

from ._log import logger

__all__ = ["Episodes", "summarise_episodes"]

# Keys remembered at most: an attacker that changes its address cannot grow this.
_MAX_KEYS = 4096


class _Episode:
    """One key's episode: when its last line was logged, and what came after it."""

    __slots__ = ("args", "last_at", "logged_at", "message", "unlogged")

    def __init__(self, now: float, message: str, args: tuple[object, ...]) -> None:
        self.logged_at = now
        self.last_at = now
        self.unlogged = 0
        # The last occurrence's message, for its summary.
        self.message = message
        self.args = args


class Episodes:
    """Per-key episodes of one kind of event; thread-safe."""

    __slots__ = ("__weakref__", "_level", "_lock", "_quiet", "_seen")

    def __init__(self, *, quiet: float = 60.0, level: int = logging.WARNING) -> None:
        self._quiet = quiet
        self._level = level
        self._lock = threading.Lock()
        # key -> its episode, the least recently occurred first.
        self._seen: OrderedDict[object, _Episode] = OrderedDict()
        _LIVE.add(self)

    def occurred(
        self, key: object, message: str, *args: object, exc_info: BaseException | None = None
    ) -> None:
        """One occurrence for `key`: logged if it starts an episode (or the episode's
        quiet time passed, with how many were not logged), counted otherwise. A
        logged line carries `exc_info`'s traceback, if given."""
        now = time.monotonic()
        with self._lock:
            episode = self._seen.pop(key, None)
            ended = self._take_ended(now)
            if episode is not None and now - episode.logged_at < self._quiet:
                episode.unlogged += 1
                episode.last_at = now
                episode.message, episode.args = message, args
                self._seen[key] = episode
                unlogged = None
            else:
                unlogged = 0 if episode is None else episode.unlogged
                self._seen[key] = _Episode(now, message, args)
                while len(self._seen) > _MAX_KEYS:
                    ended.append(_summary(self._seen.popitem(last=False)[1]))
        self._log(ended, now)
        if unlogged is None:
            return
        if unlogged:
            message += " (and %d more like it since the last line)"
            args = (*args, unlogged)
        logger.log(self._level, message, *args, exc_info=exc_info)

    def forget(self, key: object) -> None:
        """End `key`'s episode now (its subject is gone): what it counted is logged."""
        with self._lock:
            episode = self._seen.pop(key, None)
        self._log([] if episode is None else [_summary(episode)], time.monotonic())

    def summarise(self) -> None:
        """Log what every episode counted since its last line (its quiet time goes on)."""
        with self._lock:
            pending = [_summary(episode) for episode in self._seen.values()]
            for episode in self._seen.values():
                episode.unlogged = 0
        self._log(pending, time.monotonic())

    def _take_ended(self, now: float) -> list[_Summary]:
        """Remove the episodes with no occurrence for `quiet` seconds (the least
        recently occurred come first), and return their summaries."""
        ended: list[_Summary] = []
        while self._seen:
            first = next(iter(self._seen.values()))
            if now - first.last_at < self._quiet:
                break
            self._seen.popitem(last=False)
            ended.append(_summary(first))
        return ended

    def _log(self, summaries: list[_Summary], now: float) -> None:
        for message, args, count, last_at in summaries:
            if count:
                logger.log(
                    self._level,
                    message + " (%d more like it since the last line, the last %.0f s ago)",
                    *args,
                    count,
                    now - last_at,
                )


_Summary = tuple[str, tuple[object, ...], int, float]
"""What an episode counted: its last message and arguments, how many since its last
line, and when the last was (taken under the lock, logged outside it)."""


def _summary(episode: _Episode) -> _Summary:
    return episode.message, episode.args, episode.unlogged, episode.last_at


_LIVE: weakref.WeakSet[Episodes] = weakref.WeakSet()


def summarise_episodes() -> None:
    """Log what every episode of this process counted and has not logged yet: a
    closing server (or worker) leaves no count unsaid."""
    for episodes in list(_LIVE):
        episodes.summarise()
