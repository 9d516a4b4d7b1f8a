"""`Poller`: readiness of many sockets, each with a value of its own, for `evented()`.

`selectors` builds a `SelectorKey` lookup and a tuple per ready socket, about a
fifth of a microsecond of the ~6 us an echoed message costs the whole loop; over
epoll the loop gets its value straight from a dict. Elsewhere the same interface
runs over `selectors`.
"""

from __future__ import annotations

import select
import selectors
from typing import Any, Protocol

__all__ = ["Poller", "new_poller"]


class _FileLike(Protocol):
    def fileno(self) -> int: ...


class Poller(Protocol):
    """Which registered sockets are ready; each is watched for reading or for writing."""

    def register(self, fileobj: _FileLike, writing: bool, data: Any) -> None:
        """Watch `fileobj` (for writing if `writing`, else for reading), tagged `data`."""

    def modify(self, fileobj: _FileLike, writing: bool, data: Any) -> None:
        """Watch a registered `fileobj` the other way."""

    def unregister(self, fileobj: _FileLike) -> None:
        """Stop watching `fileobj`; KeyError if it was not registered."""

    def poll(self, timeout: float | None) -> list[Any]:
        """Wait up to `timeout` seconds; the data of the sockets that are ready."""
        ...

    def close(self) -> None:
        """Release the poller."""


class _EpollPoller:
    __slots__ = ("_data", "_epoll")

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._data: dict[int, Any] = {}

    def register(self, fileobj: _FileLike, writing: bool, data: Any) -> None:
        fd = fileobj.fileno()
        self._epoll.register(fd, select.EPOLLOUT if writing else select.EPOLLIN)
        self._data[fd] = data

    def modify(self, fileobj: _FileLike, writing: bool, data: Any) -> None:
        fd = fileobj.fileno()
        self._epoll.modify(fd, select.EPOLLOUT if writing else select.EPOLLIN)
        self._data[fd] = data

    def unregister(self, fileobj: _FileLike) -> None:
        fd = fileobj.fileno()
        del self._data[fd]
        self._epoll.unregister(fd)

    def poll(self, timeout: float | None) -> list[Any]:
        data = self._data
        # Errors and hang-ups are reported whatever was asked for: the loop's next
        # recv or send on the socket meets them.
        return [data[fd] for fd, _ in self._epoll.poll(-1 if timeout is None else timeout)]

    def close(self) -> None:
        self._epoll.close()


class _SelectorsPoller:
    __slots__ = ("_selector",)

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()

    def register(self, fileobj: _FileLike, writing: bool, data: Any) -> None:
        self._selector.register(fileobj, _events(writing), data)

    def modify(self, fileobj: _FileLike, writing: bool, data: Any) -> None:
        self._selector.modify(fileobj, _events(writing), data)

    def unregister(self, fileobj: _FileLike) -> None:
        self._selector.unregister(fileobj)

    def poll(self, timeout: float | None) -> list[Any]:
        return [key.data for key, _ in self._selector.select(timeout)]

    def close(self) -> None:
        self._selector.close()


def _events(writing: bool) -> int:
    return selectors.EVENT_WRITE if writing else selectors.EVENT_READ


def new_poller() -> Poller:
    """An epoll poller on Linux, a `selectors` one elsewhere."""
    return _EpollPoller() if hasattr(select, "epoll") else _SelectorsPoller()
