"""The classic request handler classes."""

from __future__ import annotations

import contextlib
import io
import socket
from typing import Any, BinaryIO, cast

from composerv._connection import SocketWriter

__all__ = [
    "BaseRequestHandler",
    "DatagramRequestHandler",
    "StreamRequestHandler",
]


class BaseRequestHandler:
    """Serves one request: the constructor calls `setup`, `handle`, then `finish`.

    Subclasses override `handle` and find the request as ``self.request``, the
    client's address as ``self.client_address`` and the server as ``self.server``.
    """

    def __init__(self, request: Any, client_address: Any, server: Any) -> None:
        self.request = request
        self.client_address = client_address
        self.server = server
        self.setup()
        try:
            self.handle()
        finally:
            self.finish()

    def setup(self) -> None:
        """Prepare for `handle`."""

    def handle(self) -> None:
        """Serve the request; override this."""

    def finish(self) -> None:
        """Clean up after `handle`, even when it raised."""


class StreamRequestHandler(BaseRequestHandler):
    """Gives `handle` ``self.rfile`` and ``self.wfile`` over the connection."""

    rbufsize: int = -1
    """Buffer size of `rfile` (-1: the default buffer; buffered, since a read per byte is slow)."""
    wbufsize: int = 0
    """Buffer size of `wfile`; 0 means unbuffered: every write is sent in full at once."""
    timeout: float | None = None
    """A timeout for the connection's socket operations, if not None."""
    disable_nagle_algorithm: bool = False
    """Set TCP_NODELAY on the connection (useful with a buffered `wfile`)."""

    connection: socket.socket
    rfile: BinaryIO
    wfile: BinaryIO

    def setup(self) -> None:
        self.connection = self.request
        if self.timeout is not None:
            self.connection.settimeout(self.timeout)
        if self.disable_nagle_algorithm:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        # makefile with a buffer size that is only known at run time is typed as IOBase.
        self.rfile = cast("BinaryIO", self.connection.makefile("rb", self.rbufsize))
        if self.wbufsize == 0:
            self.wfile = cast("BinaryIO", SocketWriter(self.connection))
        else:
            self.wfile = cast("BinaryIO", self.connection.makefile("wb", self.wbufsize))

    def finish(self) -> None:
        if not self.wfile.closed:
            # OSError: the connection may have failed (e.g. ECONNABORTED); there is
            # nothing left to flush it to.
            with contextlib.suppress(OSError):
                self.wfile.flush()
        self.wfile.close()
        self.rfile.close()


class DatagramRequestHandler(BaseRequestHandler):
    """Gives `handle` the datagram as ``self.rfile``; what it writes to ``self.wfile``
    is sent back to the client as one datagram."""

    packet: bytes
    socket: socket.socket
    rfile: io.BytesIO
    wfile: io.BytesIO

    def setup(self) -> None:
        self.packet, self.socket = self.request
        self.rfile = io.BytesIO(self.packet)
        self.wfile = io.BytesIO()

    def finish(self) -> None:
        self.socket.sendto(self.wfile.getvalue(), self.client_address)
