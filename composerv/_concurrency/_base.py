"""The scheduling protocol every concurrency strategy implements."""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import ClassVar, Protocol

__all__ = ["BlockingConcurrency", "Concurrency", "Scheduler", "Work"]

Work = Callable[[], None]
"""Serving one request from start to release; it handles its own errors."""


class Scheduler(Protocol):
    """The run-time side of a concurrency value, owned by one server.

    The server calls `submit` once per request, `service_actions` on every turn of
    its loop, and `close` once when it closes.
    """

    def submit(self, work: Work, release_in_parent: Work) -> None:
        """Run `work` now, in a thread or in a child process.

        `release_in_parent` is called instead of `work` in a parent process that
        handed the request to a child (it closes the parent's copy of the request).
        Raises if the work cannot be started; the server then releases the request.
        """

    def service_actions(self) -> None:
        """Housekeeping between requests (reaping finished children)."""

    def close(self) -> None:
        """Wait for running work as the strategy promises, then free its resources."""

    def __len__(self) -> int:
        """How many requests are being served right now, outside the caller's thread."""


class Concurrency(metaclass=abc.ABCMeta):
    """How a server schedules requests: an immutable value that makes a `Scheduler`."""

    __slots__ = ()

    blocking: ClassVar[bool]
    """Whether handlers may block (False for event loops)."""

    @abc.abstractmethod
    def scheduler(self) -> Scheduler:
        """A new scheduler for one server."""


class BlockingConcurrency(Concurrency):
    """A strategy that runs handlers which may block: sync, threads, processes."""

    __slots__ = ()

    blocking: ClassVar[bool] = True
