"""`proxy_protocol(transport, trusted=...)`: a PROXY protocol header before each connection.

A load balancer in front of the server (HAProxy's ``send-proxy``/``send-proxy-v2``,
nginx's ``proxy_protocol on``, a cloud load balancer) opens each connection with a
header naming the real client. This transport reads it before anything else
(before a TLS handshake: ``tls(proxy_protocol(tcp(...)), ctx)``), and the request's
peer becomes the client it names, for every handler kind and layer; the proxy's
own address stays in ``context.proxy`` and the header itself, TLVs included, in
``context.proxy_header``.

One mechanism reads the header under every concurrency: `HeaderReader.step` peeks
at what has arrived, without waiting, and takes exactly the header's bytes off the
socket, so the client's own bytes stay there for the handler. A blocking runtime
waits between steps with poll() (`prepare_request`, in the thread or process that
serves the connection); an event loop steps when its poller says the socket is
readable. A connection from a source outside `trusted`, a malformed or oversized
header, or one not complete within `header_timeout` is closed, and logged in one
line (a flood of them becomes a count, see `Episodes`); nothing reaches the handler.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterable, Sequence
from typing import Any, Generic, TypeGuard

import attrs

from .._addresses import Address, Network, networks, peer_ip, peer_repr
from .._context import RequestContext
from .._episodes import Episodes
from .._errors import ConfigurationError, ConfigurationTypeError, ProxyHeaderError
from .._proxy import DEFAULT_MAX_SIZE, ProxyHeader, ProxyHeaderIncomplete, decode_proxy_header
from .._proxy._decode import check_max_size
from .._validate import positive_number
from ._base import A, StreamTransport, WrappingStreamTransport, close_connection
from ._tls import TLS
from ._unix import UnixStream

__all__ = [
    "DEFAULT_HEADER_TIMEOUT",
    "HeaderReader",
    "ProxyProtocol",
    "Relayed",
    "proxy_protocol",
    "relayed",
    "relayed_by",
]

# A proxy writes the header as soon as it has connected, usually in the same
# segment as the client's first bytes; one that has sent none of it after this
# long is stalled or is not a proxy, and holds a worker (or a slot) until then.
DEFAULT_HEADER_TIMEOUT = 5.0

# Each step that finds the socket readable takes at least one byte of the header,
# so a header of `max_size` bytes takes at most that many; the few more allow for
# wake-ups with nothing to read (EINTR, a spurious poll).
_SPARE_STEPS = 8


def _stream_transport(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, (TLS, ProxyProtocol)):
        raise ConfigurationError(
            f"{attribute.name} must be the plain transport the proxy connects to, not "
            f"{value!r}: the PROXY header comes first on the wire, so wrap TLS outside it, "
            "tls(proxy_protocol(tcp(...), trusted=...), ctx)"
        )
    if not isinstance(value, StreamTransport):
        raise ConfigurationTypeError(
            f"{attribute.name} must be a stream transport such as tcp(...) or "
            f"unix_stream(...), not {value!r}: the PROXY protocol runs over streams only"
        )


def _max_size(_instance: object, attribute: attrs.Attribute[int], value: object) -> None:
    check_max_size(attribute.name, value)


def _iterable(value: object) -> TypeGuard[Iterable[object]]:
    """Whether `value` has ``__iter__``: `networks` checks each of its items."""
    return hasattr(value, "__iter__")


def _networks(values: object) -> tuple[Network, ...]:
    if isinstance(values, (str, bytes)) or not _iterable(values):
        raise ConfigurationTypeError(
            f"trusted must be a sequence of networks such as ['10.0.0.0/8'], not {values!r}"
        )
    return networks(tuple(values))


@attrs.frozen
class Relayed:
    """A connection as the header that opened it describes it."""

    peer: Address
    """The client: the header's source, or the proxy itself for a LOCAL or UNKNOWN
    header (a health check), which relays no one."""
    proxy: Address
    """Where the connection really came from."""
    header: ProxyHeader
    """The header, with its TLVs."""

    def apply(self, context: RequestContext) -> None:
        """Make `context` (and so every handler and layer) see the client."""
        context.peer = self.peer
        context.proxy = self.proxy
        context.proxy_header = self.header

    def extra_info(self) -> dict[str, object]:
        """What asyncio's ``writer.get_extra_info(name)`` answers differently."""
        return {"peername": self.peer, "proxy": self.proxy, "proxy_header": self.header}


def relayed_by(context: RequestContext) -> Relayed | None:
    """How the proxy described the connection of `context`; None if none did."""
    if context.proxy is None or context.proxy_header is None:
        return None
    return Relayed(context.peer, context.proxy, context.proxy_header)


def relayed(header: ProxyHeader, proxy: Address) -> Relayed:
    """The `Relayed` view of a connection from `proxy` that opened with `header`."""
    client = header.source if header.command == "PROXY" and header.source is not None else proxy
    return Relayed(client, proxy, header)


class HeaderReader:
    """Reads one connection's header, a step at a time, never past its end.

    Made by `ProxyProtocol.reader`, once the connection's source is known to be
    trusted. `step` never blocks; its caller waits for the socket to be readable
    between steps and gives up at `deadline` (`timed_out`).
    """

    __slots__ = ("_max_size", "_received", "_steps_left", "deadline", "peer", "timeout")

    def __init__(self, peer: Address, *, max_size: int, timeout: float) -> None:
        self.peer = peer
        """The connection's real source (the proxy)."""
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        """When the whole header must have arrived (monotonic seconds)."""
        self._max_size = max_size
        self._received = b""
        self._steps_left = max_size + _SPARE_STEPS

    def step(self, sock: socket.socket) -> Relayed | None:
        """Take what has arrived of the header off `sock`; the connection as the header
        describes it once complete, else None. Raises `ProxyHeaderError` for a header
        that cannot be valid or a connection that closed before its end, and `OSError`
        from the socket."""
        self._steps_left -= 1
        if self._steps_left < 0:
            raise ProxyHeaderError(
                f"no complete PROXY header after {self._max_size + _SPARE_STEPS} reads"
            )
        flags = socket.MSG_PEEK | socket.MSG_DONTWAIT
        try:
            # The socket's own recv: the header is read before any request routing.
            peeked = socket.socket.recv(sock, self._max_size - len(self._received), flags)
        except (BlockingIOError, InterruptedError):
            return None
        if not peeked:
            raise ProxyHeaderError(
                f"the connection closed after {len(self._received)} bytes of its PROXY header"
            )
        result = decode_proxy_header(self._received + peeked, max_size=self._max_size)
        if isinstance(result, ProxyHeaderIncomplete):
            self._take(sock, len(peeked))
            return None
        self._take(sock, result.size - len(self._received))
        return relayed(result.header, self.peer)

    def _take(self, sock: socket.socket, size: int) -> None:
        """Take `size` bytes, all of them already peeked at, off the socket."""
        left = size
        for _ in range(size):  # each recv takes a byte at least: they have all arrived
            if not left:
                return
            taken = socket.socket.recv(sock, left, socket.MSG_DONTWAIT)
            self._received += taken
            left -= len(taken)

    def timed_out(self) -> ProxyHeaderError:
        """The error for a header that did not arrive by the deadline."""
        return ProxyHeaderError(
            f"no complete PROXY header within header_timeout={self.timeout:g}s "
            f"({len(self._received)} bytes of it came)"
        )

    def read(self, sock: socket.socket) -> Relayed:
        """Read the header from a blocking `sock`, waiting up to the deadline."""
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        while (found := self.step(sock)) is None:  # bounded by _steps_left and the deadline
            remaining = self.deadline - time.monotonic()
            if remaining <= 0 or not poller.poll(remaining * 1000):
                raise self.timed_out()
        return found


@attrs.frozen
class ProxyProtocol(WrappingStreamTransport[A], Generic[A]):
    """The PROXY protocol (v1 or v2) over a stream transport; build it with `proxy_protocol`."""

    transport: StreamTransport[A] = attrs.field(validator=_stream_transport)
    """The stream transport the proxy connects to (`tcp`, `unix_stream`, `inherited`)."""
    trusted: tuple[Network, ...] = attrs.field(converter=_networks)
    """The networks proxies connect from; a connection from anywhere else is closed
    unread. Unix-socket peers have no address: the socket file's permissions decide
    who connects, and they are trusted."""
    header_timeout: float = attrs.field(default=DEFAULT_HEADER_TIMEOUT, validator=positive_number)
    """Seconds the whole header may take to arrive."""
    max_size: int = attrs.field(default=DEFAULT_MAX_SIZE, validator=_max_size)
    """The longest header accepted, in bytes; a v2 header that says it is longer is
    refused from its first 16 bytes."""
    _refusals: Episodes = attrs.field(init=False, eq=False, repr=False, factory=Episodes)

    def __attrs_post_init__(self) -> None:
        if not self.trusted and not isinstance(self.transport, UnixStream):
            raise ConfigurationError(
                "trusted must name the networks the proxy connects from, e.g. "
                "trusted=['10.0.0.0/8'], not (): with none every connection would be refused"
            )

    @property
    def proxy_protocol(self) -> ProxyProtocol[A]:
        """This transport itself."""
        return self

    def reader(self, peer: Address) -> HeaderReader:
        """A reader for the header of a connection from `peer`; `ProxyHeaderError` if
        `peer` is not in `trusted`."""
        address = peer_ip(peer)
        if address is not None and not any(address in network for network in self.trusted):
            shown = ", ".join(map(str, self.trusted))
            raise ProxyHeaderError(f"it is not a trusted proxy (trusted={shown})")
        return HeaderReader(peer, max_size=self.max_size, timeout=self.header_timeout)

    def refuse(self, peer: Address, error: Exception) -> None:
        """Log, once per source and episode, that a connection from `peer` was closed."""
        address = peer_ip(peer)
        self._refusals.occurred(
            (str(address), type(error)),
            "closed the connection from %s before its PROXY header: %s",
            peer_repr(peer),
            error,
        )

    def prepare_request(
        self, request: socket.socket, context: RequestContext
    ) -> socket.socket | None:
        """Read the header (a blocking read, within `header_timeout`) and make `context`
        see the client it names; None, logged and closed, if there is no valid one."""
        prepared = self.transport.prepare_request(request, context)
        if prepared is None:
            return None
        try:
            self.reader(context.peer).read(prepared).apply(context)
        except (ProxyHeaderError, OSError) as error:
            self.refuse(context.peer, error)
            close_connection(prepared)
            return None
        return prepared


def proxy_protocol(
    transport: StreamTransport[A],
    *,
    trusted: Sequence[str | Network],
    header_timeout: float = DEFAULT_HEADER_TIMEOUT,
    max_size: int = DEFAULT_MAX_SIZE,
) -> ProxyProtocol[A]:
    """Read a PROXY protocol header (v1 or v2) at the start of every connection.

    ``proxy_protocol(tcp(("0.0.0.0", 8000)), trusted=["10.0.0.0/8"])`` serves
    behind HAProxy's ``server s1 host:8000 send-proxy-v2``. Handlers and layers see
    the client the header names as the peer (``conn.peer``, a classic handler's
    ``client_address``, a session's start, ``writer.get_extra_info("peername")``);
    ``context.proxy`` is the proxy's own address and ``context.proxy_header`` the
    header, with its TLVs. A v2 LOCAL header (a health check) or a v1 ``UNKNOWN``
    one relays no client: the peer stays the proxy.

    Only connections from `trusted` networks (``"10.0.0.1"``, ``"10.0.0.0/8"``,
    ``"::1"``) are served. A connection from elsewhere, with a malformed header or
    one over `max_size` bytes, or whose header is not complete within
    `header_timeout` seconds, is closed with one log line, before the handler.
    Wrap TLS outside: ``tls(proxy_protocol(tcp(...), trusted=...), ctx)``.
    """
    return ProxyProtocol(
        transport, trusted=trusted, header_timeout=header_timeout, max_size=max_size
    )
