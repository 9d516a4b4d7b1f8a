"""`sync()`: one request at a time, in the server's own thread."""

from __future__ import annotations

import attrs

from ._base import BlockingConcurrency, Scheduler, Work

__all__ = ["Sync", "sync"]


class _InlineScheduler:
    __slots__ = ()

    def submit(self, work: Work, release_in_parent: Work) -> None:
        work()

    def service_actions(self) -> None:
        """Nothing runs in the background, so there is nothing to tidy."""

    def close(self) -> None:
        """Nothing runs in the background, so there is nothing to wait for."""

    def __len__(self) -> int:
        return 0


@attrs.frozen
class Sync(BlockingConcurrency):
    """Serve each request to completion before taking the next; build it with `sync`."""

    def scheduler(self) -> Scheduler:
        return _InlineScheduler()


def sync() -> Sync:
    """Serve one request at a time in the thread that runs `serve_forever`.

    The simplest and the fastest per request, but one slow client holds up all others.
    """
    return Sync()
