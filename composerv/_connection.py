"""`Connection`: one accepted stream connection, as a stream handler sees it."""

from __future__ import annotations

import io
import socket
from typing import BinaryIO

from ._addresses import Address

__all__ = ["Connection", "SocketWriter"]

# Reads of at most 64 KiB stay under glibc's mmap threshold, so a fresh buffer per
# read comes from the heap instead of an mmap/munmap pair (see docs/performance.md).
DEFAULT_RECV_SIZE = 65536


class SocketWriter(io.BufferedIOBase):
    """A write-only file over a socket that sends every write in full at once.

    Like ``socket.makefile("wb", buffering=0)`` but with no short writes, so
    ``wfile.write(data)`` always sends all of `data`.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def writable(self) -> bool:
        return True

    def write(self, b: bytes | bytearray | memoryview) -> int:  # type: ignore[override]  # io's buffer type is wider than we accept
        self._sock.sendall(b)
        with memoryview(b) as view:
            return view.nbytes

    def fileno(self) -> int:
        return self._sock.fileno()


class Connection:
    """A connected stream socket with blocking reads and writes.

    Reading: `recv` returns what has arrived (``b""`` at end of stream), `readline`
    one line, and `rfile` is a buffered binary file; all three share one buffer, so
    they can be mixed. Writing: `send_all` or `wfile`, both unbuffered.
    """

    __slots__ = ("peer", "rfile", "socket", "wfile")

    def __init__(self, sock: socket.socket, peer: Address) -> None:
        self.socket = sock
        """The connected socket, for options such as timeouts."""
        self.peer = peer
        """The client's address: ``(host, port)``, or a path (often ``""``) for unix."""
        self.rfile: BinaryIO = sock.makefile("rb")
        """A buffered binary file reading from the connection."""
        self.wfile: BinaryIO = SocketWriter(sock)  # type: ignore[assignment]  # a BufferedIOBase is a binary file
        """An unbuffered binary file writing to the connection."""

    def recv(self, max_bytes: int = DEFAULT_RECV_SIZE) -> bytes:
        """Up to `max_bytes` of what has arrived, waiting for at least one byte; ``b""`` at EOF."""
        return self.rfile.read1(max_bytes)  # type: ignore[attr-defined, no-any-return]  # makefile("rb") is a BufferedReader

    def readline(self, limit: int = -1) -> bytes:
        """One line including its ``b"\\n"`` (or what is left at EOF), at most `limit` bytes."""
        return self.rfile.readline(limit)

    def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send all of `data`, waiting while the peer is slow to read."""
        self.socket.sendall(data)

    def close(self) -> None:
        """Close the files; the server closes the socket itself when the handler returns."""
        self.rfile.close()
        self.wfile.close()
