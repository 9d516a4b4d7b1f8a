"""`Datagram`: one received datagram, as a datagram handler sees it."""

from __future__ import annotations

import socket

import attrs

from ._addresses import Address
from ._errors import UnaddressablePeerError

__all__ = ["Datagram"]


@attrs.frozen
class Datagram:
    """One datagram that arrived on a datagram transport, with the means to answer it."""

    data: bytes
    """The payload, whole (a datagram longer than the transport's limit is dropped and logged)."""
    peer: Address
    """Who sent it: ``(host, port)`` for UDP, a path (or ``""`` for an unbound client) for unix."""
    socket: socket.socket = attrs.field(repr=False)
    """The server's socket the datagram arrived on; `reply` sends through it."""

    def reply(self, data: bytes) -> None:
        """Send `data` back to the peer as one datagram.

        Raises `UnaddressablePeerError` (a `ValueError`) if the peer is an unbound
        unix socket, which has no address to answer to.
        """
        if self.peer in ("", b"", None):
            raise UnaddressablePeerError(
                "cannot reply to an unbound unix datagram client (its socket has no path); "
                "the client must bind() before sending to get replies"
            )
        self.socket.sendto(data, self.peer)
