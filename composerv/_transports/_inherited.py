"""Sockets a supervisor passes in: `inherited(fd)` and systemd's `systemd_sockets()`.

The supervisor (systemd, s6, a test) creates, binds and listens; the server only
takes requests off the socket, and never unlinks a unix path it did not bind.
"""

from __future__ import annotations

import os
import socket
import stat
from typing import Literal, overload

import attrs

from .._addresses import Address
from .._errors import ConfigurationError
from .._validate import optional_flag, positive_int
from ._base import Cleanup, DatagramTransport, StreamTransport
from ._inet import DEFAULT_MAX_DATAGRAM_SIZE

__all__ = [
    "InheritedDatagram",
    "InheritedStream",
    "inherited",
    "named_systemd_sockets",
    "systemd_sockets",
]

# sd_listen_fds(3): passed sockets start at descriptor 3, after stdin, stdout, stderr.
SD_LISTEN_FDS_START = 3

Kind = Literal["stream", "datagram"]


def _socket_fd(_instance: object, attribute: attrs.Attribute[int], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"{attribute.name} must be a non-negative int, not {value!r}")
    try:
        mode = os.fstat(value).st_mode
    except OSError as exc:
        raise ConfigurationError(
            f"{attribute.name} {value} is not an open descriptor ({exc.strerror}); "
            "was it passed to this process?"
        ) from None
    if not stat.S_ISSOCK(mode):
        raise ConfigurationError(f"{attribute.name} {value} is open but is not a socket")


def _socket_type(fd: int) -> int:
    # A socket object made on the descriptor only to ask; detach so it stays open.
    probe = socket.socket(fileno=fd)
    try:
        return probe.type
    finally:
        probe.detach()


def _adopt(fd: int) -> socket.socket:
    sock = socket.socket(fileno=fd)
    # Children such as request processes must not keep the listening socket open
    # after an exec; sd_listen_fds sets FD_CLOEXEC for the same reason.
    sock.set_inheritable(False)
    return sock


def _nothing_to_clean() -> None:
    """The supervisor that made the socket owns its address (and any unix path)."""


@attrs.frozen
class InheritedStream(StreamTransport[Address]):
    """A listening stream socket passed in on descriptor `fd`; build it with `inherited`."""

    fd: int = attrs.field(validator=_socket_fd)
    """The descriptor number; the server owns it once made and closes it on close."""
    nodelay: bool | None = attrs.field(default=None, validator=optional_flag)
    """TCP_NODELAY on accepted TCP connections; None: the concurrency decides."""

    def __attrs_post_init__(self) -> None:
        if _socket_type(self.fd) != socket.SOCK_STREAM:
            raise ConfigurationError(
                f"fd {self.fd} is a datagram socket: use inherited({self.fd}, kind='datagram')"
            )

    @property
    def bind_and_activate(self) -> bool:
        """The socket is bound already; `serve()` only starts listening if needed."""
        return True

    @property
    def backlog(self) -> int:
        """The kernel's maximum: a socket that is not yet listening gets the most room."""
        return socket.SOMAXCONN

    def create_socket(self) -> socket.socket:
        return _adopt(self.fd)

    def bind(self, sock: socket.socket) -> Cleanup:
        return _nothing_to_clean

    def activate(self, sock: socket.socket) -> None:
        # Keep the backlog the supervisor chose (systemd's Backlog=) if it listened.
        if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            sock.listen(self.backlog)


@attrs.frozen
class InheritedDatagram(DatagramTransport[Address]):
    """A bound datagram socket passed in on descriptor `fd`; build it with `inherited`."""

    fd: int = attrs.field(validator=_socket_fd)
    """The descriptor number; the server owns it once made and closes it on close."""
    max_datagram_size: int = attrs.field(default=DEFAULT_MAX_DATAGRAM_SIZE, validator=positive_int)
    """The largest datagram accepted whole; a longer one is dropped and logged."""

    def __attrs_post_init__(self) -> None:
        if _socket_type(self.fd) != socket.SOCK_DGRAM:
            raise ConfigurationError(
                f"fd {self.fd} is not a datagram socket: use inherited({self.fd}, kind='stream')"
            )

    @property
    def bind_and_activate(self) -> bool:
        """The socket is bound already."""
        return True

    def create_socket(self) -> socket.socket:
        return _adopt(self.fd)

    def bind(self, sock: socket.socket) -> Cleanup:
        return _nothing_to_clean


@overload
def inherited(fd: int, kind: Literal["stream"]) -> InheritedStream: ...


@overload
def inherited(fd: int, kind: Literal["datagram"]) -> InheritedDatagram: ...


@overload
def inherited(fd: int, kind: None = None) -> InheritedStream | InheritedDatagram: ...


def inherited(fd: int, kind: Kind | None = None) -> InheritedStream | InheritedDatagram:
    """A transport over a socket this process was given on descriptor `fd`.

    `kind` is ``"stream"`` or ``"datagram"``; by default it is read from the socket.
    Pass the kind to get a precise static type for `serve()`::

        serve(inherited(3, "stream"), threaded(), stream_handler(echo))
    """
    if kind is None:
        _socket_fd(None, attrs.fields(InheritedStream).fd, fd)
        kind = "stream" if _socket_type(fd) == socket.SOCK_STREAM else "datagram"
    if kind == "stream":
        return InheritedStream(fd)
    if kind == "datagram":
        return InheritedDatagram(fd)
    raise ConfigurationError(f"kind must be 'stream', 'datagram' or None, not {kind!r}")


def systemd_sockets() -> list[InheritedStream | InheritedDatagram]:
    """The sockets systemd (or any supervisor following its protocol) passed in.

    Reads ``LISTEN_FDS`` and ``LISTEN_PID`` as ``sd_listen_fds(3)`` does: the
    sockets are descriptors 3, 4, ... and are meant for this process only if
    ``LISTEN_PID`` is its pid. Returns ``[]`` when none were passed. The variables
    are then removed, so that child processes do not take the sockets for theirs.
    """
    return [inherited(fd) for fd, _ in _listen_fds()]


def named_systemd_sockets() -> dict[str, list[InheritedStream | InheritedDatagram]]:
    """The sockets systemd passed in, by the names in ``LISTEN_FDNAMES``, in order.

    A name is the socket unit's ``FileDescriptorName=`` (by default the unit's
    name), so several sockets can share one; without ``LISTEN_FDNAMES`` every
    socket is named ``"unknown"``, as ``sd_listen_fds_with_names(3)`` does. Like
    `systemd_sockets`, this reads the variables once and removes them: take all
    the names from one call, e.g. ``named["web"]`` and ``named["admin"]``.
    """
    named: dict[str, list[InheritedStream | InheritedDatagram]] = {}
    for fd, name in _listen_fds():
        named.setdefault(name, []).append(inherited(fd))
    return named


def _listen_fds() -> list[tuple[int, str]]:
    """The descriptors passed to this process and their names; clears the variables."""
    listen_pid = os.environ.get("LISTEN_PID", "")
    listen_fds = os.environ.get("LISTEN_FDS", "")
    if not listen_fds:
        return []
    if listen_pid != str(os.getpid()):
        # Meant for another process (we were exec'd by it, or inherited its environment).
        return []
    if not listen_fds.isdigit():
        raise ConfigurationError(f"LISTEN_FDS must be a number of sockets, not {listen_fds!r}")
    count = int(listen_fds)
    listen_fdnames = os.environ.get("LISTEN_FDNAMES", "")
    names = listen_fdnames.split(":") if listen_fdnames else ["unknown"] * count
    if len(names) != count:
        raise ConfigurationError(
            f"LISTEN_FDNAMES must name each of the LISTEN_FDS={count} sockets, "
            f"separated by ':', not {listen_fdnames!r}"
        )
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)
    return list(enumerate(names, start=SD_LISTEN_FDS_START))
