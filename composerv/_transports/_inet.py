"""TCP and UDP transports over IPv4 and IPv6."""

from __future__ import annotations

import socket

import attrs

from .._addresses import HostPort, InetAddress, check_inet_address, family_of
from .._errors import ConfigurationError
from .._validate import flag, optional_flag, positive_int
from ._base import Cleanup, DatagramTransport, StreamTransport, set_reuse_options

__all__ = ["TCP", "UDP", "tcp", "udp"]

# The stdlib listens with a backlog of 5, and under 128 concurrent connects most of
# them stall in SYN retries; 128 is the long-standing SOMAXCONN and trio's choice too.
DEFAULT_BACKLOG = 128

# The largest UDP payload over IPv4 is 65507 and over IPv6 65527 (without jumbograms):
# a 65535-byte buffer never cuts a datagram.
DEFAULT_MAX_DATAGRAM_SIZE = 65535


def _reuse_port(_instance: object, attribute: attrs.Attribute[bool], value: object) -> None:
    flag(_instance, attribute, value)
    if value and not hasattr(socket, "SO_REUSEPORT"):
        raise ConfigurationError("reuse_port=True is not supported on this platform")


def _resolve(address: InetAddress, socktype: int) -> tuple[socket.AddressFamily, InetAddress]:
    host, port = address[0], address[1]
    if len(address) == 4 or host in ("",):
        return family_of(host), address
    try:
        infos = socket.getaddrinfo(host, port, type=socktype, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigurationError(f"cannot resolve address host {host!r}: {exc}") from None
    family, _, _, _, sockaddr = infos[0]
    return family, sockaddr  # type: ignore[return-value]  # inet families give inet tuples


def _inet_socket(transport: TCP | UDP, socktype: int) -> socket.socket:
    family, _ = _resolve(transport.address, socktype)
    return socket.socket(family, socktype)


def _bind_inet(sock: socket.socket, transport: TCP | UDP) -> Cleanup:
    set_reuse_options(sock, reuse_address=transport.reuse_address, reuse_port=transport.reuse_port)
    if sock.family == socket.AF_INET6:
        dual_stack = transport.dual_stack
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if dual_stack else 1)
    _, sockaddr = _resolve(transport.address, sock.type)
    sock.bind(sockaddr)
    return _nothing_to_clean


def _nothing_to_clean() -> None:
    """An inet binding leaves nothing behind once its socket is closed."""


@attrs.frozen
class TCP(StreamTransport[HostPort]):
    """A TCP listener on IPv4 or IPv6; build it with `tcp`."""

    address: InetAddress = attrs.field(converter=check_inet_address)
    """``(host, port)``; port 0 picks a free port, read it back from `Server.address`."""
    backlog: int = attrs.field(default=DEFAULT_BACKLOG, validator=positive_int)
    """The listen queue length."""
    reuse_address: bool = attrs.field(default=True, validator=flag)
    """SO_REUSEADDR, so a restarted server can bind while old connections sit in TIME_WAIT."""
    reuse_port: bool = attrs.field(default=False, validator=_reuse_port)
    """SO_REUSEPORT, so several processes can listen on one port."""
    dual_stack: bool = attrs.field(default=False, validator=flag)
    """For an IPv6 host such as ``"::"``, accept IPv4 clients too."""
    nodelay: bool | None = attrs.field(default=None, validator=optional_flag)
    """TCP_NODELAY on accepted connections: each write leaves at once, without waiting
    for the peer's acknowledgement of the last. None (the default): the concurrency
    decides, on for event loops and off for blocking handlers (see `tcp`)."""
    bind_and_activate: bool = attrs.field(default=True, validator=flag)
    """Bind and listen in `serve()`; if False, call `Server.bind_and_activate()` later."""

    def create_socket(self) -> socket.socket:
        return _inet_socket(self, socket.SOCK_STREAM)

    def bind(self, sock: socket.socket) -> Cleanup:
        return _bind_inet(sock, self)


@attrs.frozen
class UDP(DatagramTransport[HostPort]):
    """A UDP socket on IPv4 or IPv6; build it with `udp`."""

    address: InetAddress = attrs.field(converter=check_inet_address)
    """``(host, port)``; port 0 picks a free port, read it back from `Server.address`."""
    max_datagram_size: int = attrs.field(default=DEFAULT_MAX_DATAGRAM_SIZE, validator=positive_int)
    """The largest datagram accepted whole; a longer one is dropped and logged."""
    reuse_address: bool = attrs.field(default=False, validator=flag)
    """SO_REUSEADDR; off by default because for UDP it lets two servers share a port."""
    reuse_port: bool = attrs.field(default=False, validator=_reuse_port)
    """SO_REUSEPORT, so several processes can share the port's datagrams."""
    dual_stack: bool = attrs.field(default=False, validator=flag)
    """For an IPv6 host such as ``"::"``, accept IPv4 clients too."""
    bind_and_activate: bool = attrs.field(default=True, validator=flag)
    """Bind in `serve()`; if False, call `Server.bind_and_activate()` later."""

    def create_socket(self) -> socket.socket:
        return _inet_socket(self, socket.SOCK_DGRAM)

    def bind(self, sock: socket.socket) -> Cleanup:
        return _bind_inet(sock, self)


def tcp(
    address: InetAddress,
    *,
    backlog: int = DEFAULT_BACKLOG,
    reuse_address: bool = True,
    reuse_port: bool = False,
    dual_stack: bool = False,
    nodelay: bool | None = None,
    bind_and_activate: bool = True,
) -> TCP:
    """A TCP transport listening on `address`, e.g. ``tcp(("127.0.0.1", 8000))``.

    The family follows the host: ``"::1"`` or ``"::"`` give IPv6, names are resolved
    when the socket is created. Port 0 picks a free port.

    `nodelay` (TCP_NODELAY) left at None is decided by the concurrency: event loops
    turn it on, since they send each batch of replies in one write; blocking
    handlers keep Nagle's algorithm, as socketserver does, so a handler that
    streams many small writes sends full segments (a 4 KiB line echo ran at 0.6x
    the stdlib's speed with it on). A blocking handler that answers a request in
    several writes and then waits for the next request should build the reply and
    send it once, or pass ``nodelay=True``, else each exchange may wait for the
    peer's delayed acknowledgement (up to 40 ms).
    """
    return TCP(
        address,
        backlog=backlog,
        reuse_address=reuse_address,
        reuse_port=reuse_port,
        dual_stack=dual_stack,
        nodelay=nodelay,
        bind_and_activate=bind_and_activate,
    )


def udp(
    address: InetAddress,
    *,
    max_datagram_size: int = DEFAULT_MAX_DATAGRAM_SIZE,
    reuse_address: bool = False,
    reuse_port: bool = False,
    dual_stack: bool = False,
    bind_and_activate: bool = True,
) -> UDP:
    """A UDP transport bound to `address`, e.g. ``udp(("127.0.0.1", 5353))``."""
    return UDP(
        address,
        max_datagram_size=max_datagram_size,
        reuse_address=reuse_address,
        reuse_port=reuse_port,
        dual_stack=dual_stack,
        bind_and_activate=bind_and_activate,
    )
