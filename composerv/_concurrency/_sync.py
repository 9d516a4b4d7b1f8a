"""`sync()`: one request at a time, in the server's own thread."""

from __future__ import annotations

from collections.abc import Callable

import attrs

from .._limits import DrainReport
from .._runtime import Deadline, Evictions, InProcessJobs, Job, Scheduler, drain_requests
from ._base import BlockingConcurrency

__all__ = ["InlineScheduler", "Sync", "sync"]


class InlineScheduler:
    """Runs each request at once in the calling thread (the loop's)."""

    __slots__ = ("_jobs",)

    def __init__(self, request_ended: Callable[[], None]) -> None:
        self._jobs = InProcessJobs(request_ended)

    def submit(self, job: Job) -> None:
        self._jobs.run(job)

    def service_actions(self) -> None:
        """Nothing runs in the background, so there is nothing to tidy."""

    def make_room(self, evictions: Evictions) -> bool:
        return self._jobs.make_room(evictions)

    def drain(self, deadline: Deadline) -> DrainReport:
        return drain_requests(self._jobs, deadline)

    def close(self) -> None:
        """Nothing runs in the background, so there is nothing to wait for."""

    def __len__(self) -> int:
        return len(self._jobs)

    @property
    def waits_on_close(self) -> bool:
        """Closing from another thread lets the request in hand finish (drains it)."""
        return True


@attrs.frozen
class Sync(BlockingConcurrency):
    """Serve each request to completion before taking the next; build it with `sync`."""

    def scheduler(self, request_ended: Callable[[], None]) -> Scheduler:
        return InlineScheduler(request_ended)


def sync() -> Sync:
    """Serve one request at a time in the thread that runs `serve_forever`.

    The simplest and the fastest per request, but one slow client holds up all others.
    """
    return Sync()
