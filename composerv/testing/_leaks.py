"""`Resources` and `no_leaks`: what a server could leave behind, and a check that it did not."""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import os
import threading
from collections.abc import Generator

import attrs

from ._wait import wait_until

__all__ = ["DEFAULT_SETTLE", "Resources", "no_leaks"]

DEFAULT_SETTLE = 2.0
"""Seconds `no_leaks` waits for resources to return to their baseline: a thread
that has announced its end may still be exiting, a child still being reaped."""

# Where this process's descriptors are listed: Linux has /proc, BSDs and macOS /dev/fd.
_FD_DIRECTORIES = ("/proc/self/fd", "/dev/fd")


def _descriptors() -> frozenset[tuple[int, str]]:
    for directory in _FD_DIRECTORIES:
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            continue
        # The listing opened a descriptor of its own, closed by now: readlink fails
        # for it, and it is left out.
        return frozenset(
            (int(name), target)
            for name in names
            if (target := _target(directory, name)) is not None
        )
    return frozenset()


def _target(directory: str, name: str) -> str | None:
    try:
        return os.readlink(os.path.join(directory, name))
    except FileNotFoundError:
        return None  # closed since the listing
    except OSError:
        return "?"  # /dev/fd entries of some systems are not links


def _children() -> frozenset[int]:
    """This process's live (or zombie) children, where /proc lists them."""
    pid = os.getpid()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return frozenset()
    children: set[int] = set()
    for task in tasks:
        # A thread may end between the listing and the read: it has no children then.
        with (
            contextlib.suppress(FileNotFoundError),
            open(f"/proc/{pid}/task/{task}/children") as f,
        ):
            children.update(int(child) for child in f.read().split())
    return frozenset(children)


@attrs.frozen
class Resources:
    """What a server could leak, at one moment: descriptors, threads, child processes.

    Take a snapshot before and after, and compare::

        >>> before = Resources.now()
        >>> r, w = os.pipe()
        >>> leaked = Resources.now().new_since(before)
        >>> sorted(fd for fd, _ in leaked.fds) == [r, w]
        True
        >>> os.close(r); os.close(w)
        >>> Resources.now().new_since(before).empty
        True

    Descriptors are listed from /proc/self/fd (or /dev/fd), child processes from
    /proc (elsewhere none are seen).
    """

    fds: frozenset[tuple[int, str]]
    """The open descriptors, each with what it points at (``socket:[1234]``, a path):
    so a descriptor closed and its number reused for something else counts as new."""
    threads: frozenset[threading.Thread]
    """The live threads."""
    children: frozenset[int]
    """The process ids of the live (or unreaped) child processes."""

    @classmethod
    def now(cls) -> Resources:
        """A snapshot of this process's resources now."""
        return cls(_descriptors(), frozenset(threading.enumerate()), _children())

    def new_since(self, before: Resources) -> Resources:
        """What this snapshot holds that `before` did not."""
        return Resources(
            self.fds - before.fds, self.threads - before.threads, self.children - before.children
        )

    @property
    def empty(self) -> bool:
        """Whether there is nothing in this snapshot (of what `new_since` found)."""
        return not (self.fds or self.threads or self.children)

    def describe(self) -> str:
        """The resources named, one kind per line, for a failure message."""
        parts: list[str] = []
        if self.fds:
            listed = ", ".join(f"{fd} ({target})" for fd, target in sorted(self.fds))
            parts.append(f"descriptors: {listed}")
        if self.threads:
            listed = ", ".join(sorted(repr(thread.name) for thread in self.threads))
            parts.append(f"threads: {listed}")
        if self.children:
            parts.append(f"child processes: {', '.join(map(str, sorted(self.children)))}")
        return "\n".join(parts) or "nothing"


@functools.cache
def _open_process_wide_resources() -> None:
    """Open, once, what a library keeps for the rest of the process's life, so that
    no baseline lacks it: uvloop opens a pipe with its first event loop and never
    closes it, which would otherwise be a leak of whichever block ran its first
    server. Where uvloop is installed this imports it, whether or not the block
    uses it: the pipe must be in the baseline before the block's first loop."""
    if importlib.util.find_spec("uvloop") is not None:
        importlib.import_module("uvloop").new_event_loop().close()


@contextlib.contextmanager
def no_leaks(*, settle: float = DEFAULT_SETTLE) -> Generator[Resources, None, None]:
    """Fail if the block leaves descriptors, threads or child processes behind.

    Yields the snapshot taken on entry. On exit it waits up to `settle` seconds
    for what the block started to end, then raises `AssertionError` naming each
    descriptor, thread and child process that is new. A block that raises is not
    checked: its own error says more. ::

        with no_leaks():
            with serve(tcp(("127.0.0.1", 0)), threaded(), stream_handler(echo)) as server:
                ...

    Resources the block closes that existed before are fine; only new ones count.
    Anything else that runs at the same time (another test's thread) counts too,
    so check a block that runs alone. What a library opens once for the whole
    process (uvloop's first event loop opens a pipe it keeps) is opened before the
    first snapshot, so it is never counted.
    """
    _open_process_wide_resources()
    before = Resources.now()
    yield before

    def settled() -> bool:
        return Resources.now().new_since(before).empty

    with contextlib.suppress(AssertionError):
        wait_until(settled, "resources to return to their baseline", timeout=settle)
    leaked = Resources.now().new_since(before)
    if not leaked.empty:
        raise AssertionError(f"left behind after {settle}s:\n{leaked.describe()}")
