"""`Tally`: one server's counters, kept by every runtime, summed across processes.

The process that made the server (the owner) keeps the totals. A process forked
from it (a `workers` worker, a `forking` child, a worker's child) counts in a
fresh set of its own and sends what it counted since the last time to the owner
as one record on a pipe: at most every `FLUSH_INTERVAL` seconds while it counts,
and when it is told to (a worker, every second and as it exits). A record is
smaller than PIPE_BUF, so writes from many processes never interleave. The owner
reads the pipe when asked for a snapshot and as it goes. Nothing is on disk.
"""

# Underscore names here are private to the module, not to one class: the fork hooks
# call each Tally's own fork methods.
# pyright: reportPrivateUsage=false

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import threading
import time
import weakref
from collections.abc import Callable

from .._limits import DrainReport
from .._stats import ServerStats
from ._process import current_pid

__all__ = ["FLUSH_INTERVAL", "Tally"]

# The counters, in the order of a record.
_ACCEPTED, _CLOSED, _REQUESTS, _ERRORS, _TIMEOUTS, _REFUSED, _BYTES_IN, _BYTES_OUT = range(8)
_FIELDS = 8
_RECORD = struct.Struct(f"@{_FIELDS}q")  # 64 bytes, well under PIPE_BUF (4096 on Linux)

FLUSH_INTERVAL = 1.0
"""At most how long a forked process keeps what it counted before sending it."""

# A pipe holds 64 KiB (a thousand records) by default; a megabyte holds 16k, a few
# seconds of forking() children at full speed, between two reads by the owner.
_PIPE_SIZE = 1 << 20
# The owner reads the pipe every so many accepts too, not only when asked.
_COLLECT_EVERY = 256
# At most this much is read per collect, so one never runs on without bound.
_MAX_READ = 256 * _RECORD.size

# Every tally of this process, to prepare before a fork and reset in the child.
_TALLIES: weakref.WeakSet[Tally] = weakref.WeakSet()


class Tally:
    """Counters of one server; thread-safe, and safe across fork (see the module)."""

    __slots__ = (
        "__weakref__",
        "_closed",
        "_counts",
        "_limit",
        "_lock",
        "_next_flush",
        "_owner",
        "_pipe",
        "_since_collect",
        "served",
    )

    def __init__(self) -> None:
        self._owner = current_pid()
        self._lock = threading.Lock()
        self._counts = [0] * _FIELDS
        self._pipe: tuple[int, int] | None = None
        self._closed = False
        self._next_flush = 0.0
        self._since_collect = 0
        self.served = 0
        """Requests this process has seen end (served or refused), since it started."""
        self._limit: tuple[int, Callable[[], None]] | None = None
        _TALLIES.add(self)

    # Counting, in whatever process serves.

    def accepted(self) -> None:
        """A request was taken off the socket."""
        with self._lock:
            self._counts[_ACCEPTED] += 1
        self._after_counting()

    def transferred(self, bytes_in: int, bytes_out: int) -> None:
        """Bytes received and sent (by an event loop, as it goes)."""
        with self._lock:
            self._counts[_BYTES_IN] += bytes_in
            self._counts[_BYTES_OUT] += bytes_out

    def closed(
        self,
        error: BaseException | None = None,
        *,
        refused: bool = False,
        timed_out: bool = False,
        bytes_in: int = 0,
        bytes_out: int = 0,
    ) -> None:
        """A request ended: served (with an `error`, if it failed), or `refused` before
        the handler. `timed_out`: it failed on a timeout that `error` does not show."""
        with self._lock:
            self.served += 1
            reached = self._limit is not None and self.served == self._limit[0]
            counts = self._counts
            counts[_CLOSED] += 1
            counts[_BYTES_IN] += bytes_in
            counts[_BYTES_OUT] += bytes_out
            if refused:
                counts[_REFUSED] += 1
            else:
                counts[_REQUESTS] += 1
                if error is not None or timed_out:
                    counts[_ERRORS] += 1
                    if timed_out or isinstance(error, TimeoutError):
                        counts[_TIMEOUTS] += 1
        if reached:
            assert self._limit is not None
            self._limit[1]()
        self._after_counting()

    def when_served(self, count: int, then: Callable[[], None]) -> None:
        """Call `then` once, in the thread that ends it, when this process's `count`-th
        request ends."""
        self._limit = (count, then)

    def _after_counting(self) -> None:
        if current_pid() == self._owner:
            self._since_collect += 1
            if self._pipe is not None and self._since_collect >= _COLLECT_EVERY:
                self.collect()
        elif time.monotonic() >= self._next_flush:
            self.flush()

    # Across processes.

    def flush(self) -> None:
        """In a forked process: send what it counted to the owner (kept for the next
        flush if the pipe is full)."""
        if current_pid() == self._owner or self._pipe is None:
            return
        with self._lock:
            counts = self._counts
            if not any(counts):
                return
            try:
                os.write(self._pipe[1], _RECORD.pack(*counts))
            except OSError:
                return  # full (the owner is behind) or gone (it closed): try later
            self._counts = [0] * _FIELDS
            self._next_flush = time.monotonic() + FLUSH_INTERVAL

    def collect(self) -> None:
        """In the owner: add what forked processes have sent."""
        if self._pipe is None or current_pid() != self._owner:
            return
        self._since_collect = 0
        with contextlib.suppress(BlockingIOError, OSError):
            data = os.read(self._pipe[0], _MAX_READ)  # whole records: each was one write
            with self._lock:
                counts = self._counts
                for record in _RECORD.iter_unpack(data[: len(data) - len(data) % _RECORD.size]):
                    for index, value in enumerate(record):
                        counts[index] += value

    def snapshot(self, report: DrainReport | None) -> ServerStats:
        """The totals so far, with the drains' figures from `report`."""
        self.collect()
        with self._lock:
            counts = list(self._counts)
        drained = report or DrainReport(finished=0, closed_idle=0, cut=0)
        return ServerStats(
            connections=counts[_ACCEPTED],
            open=max(0, counts[_ACCEPTED] - counts[_CLOSED]),
            requests=counts[_REQUESTS],
            errors=counts[_ERRORS],
            timeouts=counts[_TIMEOUTS],
            refused=counts[_REFUSED],
            bytes_in=counts[_BYTES_IN],
            bytes_out=counts[_BYTES_OUT],
            drained=drained.finished,
            closed_idle=drained.closed_idle,
            cut=drained.cut,
        )

    def close(self) -> None:
        """Read what is left and close the pipe (in the owner, when the server closes)."""
        if current_pid() != self._owner:
            return
        self.collect()
        self._closed = True
        pipe, self._pipe = self._pipe, None
        if pipe is not None:
            os.close(pipe[0])
            os.close(pipe[1])

    def _before_fork(self) -> None:
        if self._pipe is None and not self._closed and current_pid() == self._owner:
            self._pipe = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            # Linux only, and capped by /proc/sys/fs/pipe-max-size: best effort.
            with contextlib.suppress(AttributeError, OSError):
                fcntl.fcntl(self._pipe[1], fcntl.F_SETPIPE_SZ, _PIPE_SIZE)

    def _in_child(self) -> None:
        # The parent's counts are the parent's; another thread may have held the lock.
        self._lock = threading.Lock()
        self._counts = [0] * _FIELDS
        self._next_flush = 0.0
        self.served = 0
        self._limit = None


def _before_fork() -> None:
    for tally in list(_TALLIES):
        tally._before_fork()  # the module's own hook


def _after_fork_in_child() -> None:
    for tally in list(_TALLIES):
        tally._in_child()  # the module's own hook


os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)
