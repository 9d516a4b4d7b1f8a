"""Unix stream and datagram transports, and the rule for stale socket paths.

The rule: binding to a path that already exists

- replaces it if it is a socket nobody answers on (a dead server left it behind);
- raises `SocketPathInUseError` if a server answers on it, or holds its lock;
- raises `FileExistsError` if it is anything but a socket (we never delete a file
  we did not make).

The probe never blocks (a live server whose backlog is full counts as live, at
once), and it runs under a lock, ``PATH.lock`` beside the socket, that the
server holds until it closes: of two servers starting at once on a stale path,
one takes it and the other gets `SocketPathInUseError`, instead of each deleting
the other's socket. The lock is a POSIX record lock, owned by the process, so a
forked child never holds it; the lock file stays behind, as removing it would
race with the next server.

``mode``, ``owner`` and ``group`` set the socket file's permissions once it is
bound (before a stream socket listens, so no client connects in between).

On close the server removes its own path, and only if the file there is still the
one it bound (another server may have replaced it since).
"""

# Underscore names here are private to the module, not to one class: binding sets
# the permissions of a socket file.
# pyright: reportPrivateUsage=false

from __future__ import annotations

import errno
import fcntl
import grp
import os
import pwd
import socket
import stat
from collections.abc import Callable
from typing import Any

import attrs

from .._addresses import check_unix_path
from .._errors import ConfigurationError, SocketPathInUseError
from .._log import logger
from .._validate import check_type, flag, positive_int
from ._base import Cleanup, DatagramTransport, StreamTransport
from ._inet import DEFAULT_BACKLOG, DEFAULT_MAX_DATAGRAM_SIZE

__all__ = ["UnixDatagram", "UnixStream", "unix_datagram", "unix_stream"]


def _is_abstract(path: str) -> bool:
    return path.startswith("\0")


def _file_mode(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    check_type(attribute.name, value, int, "an int such as 0o660, or None")
    assert isinstance(value, int)
    if not 0 <= value <= 0o7777:
        raise ConfigurationError(
            f"{attribute.name} must be a file mode from 0 to 0o7777 such as 0o660, not {value:#o}"
        )


def _id_or_name(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    check_type(attribute.name, value, (str, int), "a name or a numeric id, or None")
    if isinstance(value, int) and value < 0:
        raise ConfigurationError(f"{attribute.name} must be a name or an id >= 0, not {value}")
    if isinstance(value, str) and not value:
        raise ConfigurationError(f"{attribute.name} must be a name or an id, not ''")


@attrs.frozen(kw_only=True)
class _SocketFile:
    """What a unix transport sets on its socket file once bound (see the module notes)."""

    mode: int | None = attrs.field(default=None, validator=_file_mode)
    """The socket file's permission bits, e.g. ``0o660`` (None: 0o777 minus the umask).
    Connecting to a unix socket needs write permission on it."""
    owner: str | int | None = attrs.field(default=None, validator=_id_or_name)
    """The user (name or uid) to own the socket file (None: the server's). Changing it
    needs privileges."""
    group: str | int | None = attrs.field(default=None, validator=_id_or_name)
    """The group (name or gid) of the socket file (None: the server's), e.g. the
    group of the clients that may connect."""

    def _set_permissions(self, path: str) -> None:
        if self.mode is not None:
            os.chmod(path, self.mode)
        if self.owner is not None or self.group is not None:
            os.chown(path, _uid(self.owner), _gid(self.group))


def _uid(owner: str | int | None) -> int:
    return _system_id("owner", owner, lambda name: pwd.getpwnam(name).pw_uid, "a user")


def _gid(group: str | int | None) -> int:
    return _system_id("group", group, lambda name: grp.getgrnam(name).gr_gid, "a group")


def _system_id(field: str, value: str | int | None, lookup: Callable[[str], int], what: str) -> int:
    """A user or group id for chown: -1 (unchanged) for None, a name looked up."""
    if not isinstance(value, str):
        return -1 if value is None else value
    try:
        return lookup(value)
    except KeyError:
        raise ConfigurationError(f"{field} {value!r} is not {what} on this system") from None


def _lock(path: str) -> int:
    """The descriptor of ``path.lock``, locked for this process; `SocketPathInUseError`
    if another process holds it (a live server, or one starting at this moment)."""
    fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EACCES, errno.EAGAIN):
            raise SocketPathInUseError(path) from None
        raise
    return fd


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
        # Non-blocking: a live server whose backlog is full answers EAGAIN at once,
        # where a blocking connect would wait for room.
        probe.setblocking(False)
        try:
            probe.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            logger.info("removing stale unix socket %r left by a server that is gone", path)
            os.unlink(path)
            return
        except BlockingIOError:
            pass  # a full backlog: live
    raise SocketPathInUseError(path)


def _bind_unix(sock: socket.socket, path: str, socket_file: _SocketFile) -> Cleanup:
    if _is_abstract(path):
        sock.bind(path)
        return _nothing_to_clean
    lock = _lock(path)
    try:
        _remove_stale(path, sock.type)
        sock.bind(path)
        try:
            socket_file._set_permissions(path)
            bound = os.stat(path)
        except BaseException:
            os.unlink(path)
            raise
    except BaseException:
        os.close(lock)
        raise

    def unlink_own_path() -> None:
        try:
            now = os.stat(path)
        except FileNotFoundError:
            return
        else:
            if (now.st_dev, now.st_ino) == (bound.st_dev, bound.st_ino):
                os.unlink(path)
        finally:
            os.close(lock)

    return unlink_own_path


def _nothing_to_clean() -> None:
    """An abstract-namespace socket vanishes with its last descriptor."""


@attrs.frozen
class UnixStream(_SocketFile, StreamTransport[str]):
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
        return _bind_unix(sock, self.path, self)


@attrs.frozen
class UnixDatagram(_SocketFile, DatagramTransport[str]):
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
        return _bind_unix(sock, self.path, self)


def unix_stream(
    path: str | os.PathLike[str],
    *,
    backlog: int = DEFAULT_BACKLOG,
    bind_and_activate: bool = True,
    mode: int | None = None,
    owner: str | int | None = None,
    group: str | int | None = None,
) -> UnixStream:
    """A unix stream transport listening on `path`; see the module notes on stale paths.

    `mode`, `owner` and `group` set the socket file's permissions, e.g.
    ``unix_stream("/run/app.sock", mode=0o660, group="www-data")`` lets only that
    group's processes connect.
    """
    return UnixStream(
        path,
        backlog=backlog,
        bind_and_activate=bind_and_activate,
        mode=mode,
        owner=owner,
        group=group,
    )


def unix_datagram(
    path: str | os.PathLike[str],
    *,
    max_datagram_size: int = DEFAULT_MAX_DATAGRAM_SIZE,
    bind_and_activate: bool = True,
    mode: int | None = None,
    owner: str | int | None = None,
    group: str | int | None = None,
) -> UnixDatagram:
    """A unix datagram transport bound to `path`; see the module notes on stale paths.
    `mode`, `owner` and `group` as for `unix_stream`."""
    return UnixDatagram(
        path,
        max_datagram_size=max_datagram_size,
        bind_and_activate=bind_and_activate,
        mode=mode,
        owner=owner,
        group=group,
    )
