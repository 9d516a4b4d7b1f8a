"""Unix stream and datagram transports, and the rule for stale socket paths.

The rule: binding to a path that already exists

- replaces it if it is a socket nobody answers on (a dead server left it behind);
- raises `SocketPathInUseError` if a server answers on it;
- raises `FileExistsError` if it is anything but a socket (we never delete a file
  we did not make).

On close the server removes its own path, and only if the file there is still the
one it bound (another server may have replaced it since).
"""

from __future__ import annotations

import errno
import os
import socket
import stat

import attrs

from .._addresses import check_unix_path
from .._errors import SocketPathInUseError
from .._log import logger
from .._validate import flag, positive_int
from ._base import Cleanup, DatagramTransport, StreamTransport
from ._inet import DEFAULT_BACKLOG, DEFAULT_MAX_DATAGRAM_SIZE

__all__ = ["UnixDatagram", "UnixStream", "unix_datagram", "unix_stream"]


def _is_abstract(path: str) -> bool:
    return path.startswith("\0")


def _remove_stale(path: str, socket_type: int) -> None:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise FileExistsError(
            errno.EEXIST,
            f"{path!r} exists and is not a socket; remove it or choose another path",
        )
    with socket.socket(socket.AF_UNIX, socket_type) as probe:
        try:
            probe.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            logger.info("removing stale unix socket %r left by a server that is gone", path)
            os.unlink(path)
            return
    raise SocketPathInUseError(path)


def _bind_unix(sock: socket.socket, path: str) -> Cleanup:
    if _is_abstract(path):
        sock.bind(path)
        return _nothing_to_clean
    _remove_stale(path, sock.type)
    sock.bind(path)
    bound = os.stat(path)

    def unlink_own_path() -> None:
        try:
            now = os.stat(path)
        except FileNotFoundError:
            return
        if (now.st_dev, now.st_ino) == (bound.st_dev, bound.st_ino):
            os.unlink(path)

    return unlink_own_path


def _nothing_to_clean() -> None:
    """An abstract-namespace socket vanishes with its last descriptor."""


@attrs.frozen
class UnixStream(StreamTransport[str]):
    """A unix stream listener; build it with `unix_stream`."""

    path: str = attrs.field(converter=check_unix_path)
    """The filesystem path (or ``"\\0name"`` for Linux's abstract namespace)."""
    backlog: int = attrs.field(default=DEFAULT_BACKLOG, validator=positive_int)
    """The listen queue length."""
    bind_and_activate: bool = attrs.field(default=True, validator=flag)
    """Bind and listen in `serve()`; if False, call `Server.bind_and_activate()` later."""

    @property
    def nodelay(self) -> bool | None:
        """Unix sockets have no Nagle algorithm to turn off."""
        return False

    def create_socket(self) -> socket.socket:
        return socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)

    def bind(self, sock: socket.socket) -> Cleanup:
        return _bind_unix(sock, self.path)


@attrs.frozen
class UnixDatagram(DatagramTransport[str]):
    """A unix datagram socket; build it with `unix_datagram`."""

    path: str = attrs.field(converter=check_unix_path)
    """The filesystem path (or ``"\\0name"`` for Linux's abstract namespace)."""
    max_datagram_size: int = attrs.field(default=DEFAULT_MAX_DATAGRAM_SIZE, validator=positive_int)
    """The largest datagram accepted whole; a longer one is dropped and logged."""
    bind_and_activate: bool = attrs.field(default=True, validator=flag)
    """Bind in `serve()`; if False, call `Server.bind_and_activate()` later."""

    def create_socket(self) -> socket.socket:
        return socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    def bind(self, sock: socket.socket) -> Cleanup:
        return _bind_unix(sock, self.path)


def unix_stream(
    path: str | os.PathLike[str],
    *,
    backlog: int = DEFAULT_BACKLOG,
    bind_and_activate: bool = True,
) -> UnixStream:
    """A unix stream transport listening on `path`; see the module notes on stale paths."""
    return UnixStream(path, backlog=backlog, bind_and_activate=bind_and_activate)


def unix_datagram(
    path: str | os.PathLike[str],
    *,
    max_datagram_size: int = DEFAULT_MAX_DATAGRAM_SIZE,
    bind_and_activate: bool = True,
) -> UnixDatagram:
    """A unix datagram transport bound to `path`; see the module notes on stale paths."""
    return UnixDatagram(
        path,
        max_datagram_size=max_datagram_size,
        bind_and_activate=bind_and_activate,
    )
