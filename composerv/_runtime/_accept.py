"""`Acceptor`: taking requests off a listening socket, the same way in every runtime."""

from __future__ import annotations

import errno
import socket
from typing import Any

from .._addresses import Address, peer_repr
from .._connection import RequestSocket, adopt_connection
from .._context import RequestContext
from .._errors import DatagramTooLargeError
from .._log import logger
from ._contract import Service
from ._gate import ACCEPT_BACK_OFF, ListenerGate

__all__ = ["ACCEPT_CAPACITY_ERRNOS", "Acceptor"]

ACCEPT_CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
"""What accept() fails with when the process or the system is out of a resource."""


class Acceptor:
    """Takes requests off a service's socket, counts them (`Service.tally`) and makes
    each one's `RequestContext`.

    A datagram over the size limit is logged and dropped. When accept() runs out
    of a resource, the episode is logged once when it starts and once when it
    ends (not ten times a second), and the gate backs off.
    """

    __slots__ = ("_failures", "_gate", "_get", "_limits", "_service", "_socket", "_tally")

    def __init__(self, service: Service[Any], gate: ListenerGate) -> None:
        self._service = service
        self._gate = gate
        self._get = service.transport.get_request
        self._socket = service.socket
        self._limits = service.limits
        self._tally = service.tally
        self._failures = 0

    def fileno(self) -> int:
        """The listening socket's descriptor."""
        return self._socket.fileno()

    def accept(self) -> tuple[Any, Address]:
        """One request and its peer; raises `OSError` (`BlockingIOError`: none ready)."""
        try:
            request, peer = self._get(self._socket)
        except DatagramTooLargeError as exc:
            self._service.outcomes.log(exc.peer, exc)
            raise
        except OSError as exc:
            if exc.errno in ACCEPT_CAPACITY_ERRNOS:
                if not self._failures:
                    logger.error(
                        "cannot accept connections on %s: %s; retrying every %.1fs",
                        peer_repr(self._socket.getsockname()),
                        exc.strerror,
                        ACCEPT_BACK_OFF,
                    )
                self._failures += 1
                self._gate.back_off()
            raise
        if self._failures:
            logger.warning(
                "accepting connections on %s again after %d failed attempts",
                peer_repr(self._socket.getsockname()),
                self._failures,
            )
            self._failures = 0
        self._tally.accepted()
        return request, peer

    def connection(self, sock: socket.socket, peer: Address) -> RequestSocket:
        """An accepted connection as a blocking handler gets it: reading through a
        new context with the service's limits."""
        context = self.context(peer)
        return adopt_connection(sock, context, timeouts_preset=self._service.timeouts_preset())

    def context(self, peer: Address) -> RequestContext:
        """A context for a request with no blocking connection: a datagram, or a
        connection an event loop serves (and times) itself."""
        context = RequestContext(None, peer, self._limits)
        context.outcomes = self._service.outcomes
        return context
