"""`Connection`: one accepted stream connection, as a stream handler sees it."""

from __future__ import annotations

import io
import socket
from typing import BinaryIO

from ._addresses import Address
from ._guard import NO_LIMITS, RequestGuard, current_guard

__all__ = ["Connection", "SocketReader", "SocketWriter"]

# Reads of at most 64 KiB stay under glibc's mmap threshold, so a fresh buffer per
# read comes from the heap instead of an mmap/munmap pair (see docs/performance.md).
DEFAULT_RECV_SIZE = 65536


class _GuardedSocketIO(io.RawIOBase):
    """The raw byte stream under `SocketReader`: receives through the request's guard."""

    def __init__(self, sock: socket.socket, guard: RequestGuard, leftover: bytes) -> None:
        self._sock = sock
        self._guard = guard
        self._recv_into = sock.recv_into
        self._leftover = leftover
        self.received = len(leftover)
        """Bytes received for the buffer, `leftover` included (`SocketReader.recv` bypasses it)."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]  # io's buffer type is wider
        if self._leftover:
            count = min(len(self._leftover), len(buffer))
            buffer[:count] = self._leftover[:count]
            self._leftover = self._leftover[count:]
            return count
        received = self._guard.receive(self._recv_into, buffer, 0)
        self.received += received
        return received

    def fileno(self) -> int:
        return self._sock.fileno()


_BufferedReader = io.BufferedReader


class SocketReader(io.BufferedReader):
    """A buffered binary file over a connection whose reads keep the server's deadlines.

    Each read waits up to ``idle_timeout`` for its first byte and must finish
    within ``read_timeout`` of it (see `limits`); when the server drains, a read
    that would wait for a new request sees end of stream instead. `leftover`:
    bytes the connection received before this reader was made, read first.
    """

    def __init__(self, sock: socket.socket, guard: RequestGuard, leftover: bytes = b"") -> None:
        self._sock = sock
        self._raw = _GuardedSocketIO(sock, guard, leftover)
        super().__init__(self._raw)
        self._guard = guard
        # Counted here rather than asked of tell(), which costs two calls per read:
        # received - consumed is what the buffer holds. Only the difference matters.
        # Each read passes `received > consumed` to the guard's begin_read: bytes
        # already buffered are part of a request that has begun, so the read clock
        # runs, and a drain does not take this read for idle.
        self._consumed = 0

    def recv(self, max_bytes: int) -> bytes:
        """`read1`, straight from the socket when nothing is buffered (the common case)."""
        if self._raw.received > self._consumed:
            return self.read1(max_bytes)
        # Past the buffer, which stays empty: received - consumed stays 0 uncounted.
        return self._guard.recv(self._sock, max_bytes)

    def read(self, size: int | None = -1) -> bytes:
        self._guard.begin_read(self._raw.received > self._consumed)
        data = _BufferedReader.read(self, size)
        self._consumed += len(data)
        return data

    def read1(self, size: int = -1) -> bytes:
        self._guard.begin_read(self._raw.received > self._consumed)
        data = _BufferedReader.read1(self, size)
        self._consumed += len(data)
        return data

    def readline(self, size: int | None = -1) -> bytes:
        self._guard.begin_read(self._raw.received > self._consumed)
        data = _BufferedReader.readline(self, size)
        self._consumed += len(data)
        return data

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]  # io's buffer type is wider
        self._guard.begin_read(self._raw.received > self._consumed)
        count = _BufferedReader.readinto(self, buffer)
        self._consumed += count
        return count

    def readinto1(self, buffer: memoryview) -> int:  # type: ignore[override]  # io's buffer type is wider
        self._guard.begin_read(self._raw.received > self._consumed)
        count = _BufferedReader.readinto1(self, buffer)
        self._consumed += count
        return count


class SocketWriter(io.BufferedIOBase):
    """A write-only file over a socket that sends every write in full at once.

    Like ``socket.makefile("wb", buffering=0)`` but with no short writes, so
    ``wfile.write(data)`` always sends all of `data`, within the server's
    ``write_timeout``.
    """

    def __init__(self, sock: socket.socket, guard: RequestGuard | None = None) -> None:
        self._sock = sock
        self._guard = guard or RequestGuard(sock, NO_LIMITS)

    def writable(self) -> bool:
        return True

    def write(self, b: bytes | bytearray | memoryview) -> int:  # type: ignore[override]  # io's buffer type is wider than we accept
        self._guard.send_all(self._sock, b)
        with memoryview(b) as view:
            return view.nbytes

    def fileno(self) -> int:
        return self._sock.fileno()


def _line_end(data: bytes, start: int, limit: int) -> int:
    """Where the line that starts at `start` in `data` ends: after its newline, or
    `limit` bytes on if `limit` is positive; 0 while it is incomplete."""
    end = data.find(b"\n", start) + 1
    if limit > 0 and (end > start + limit or (not end and len(data) - start >= limit)):
        return start + limit
    return end


class Connection:
    """A connected stream socket with blocking reads and writes.

    Reading: `recv` returns what has arrived (``b""`` at end of stream), `readline`
    one line, and `rfile` is a buffered binary file; bytes that one of them received
    and did not return go to the next read, whichever it is, so they can be mixed.
    Writing: `send_all` or `wfile`, both unbuffered.

    Inside a server, reads and writes keep the server's `limits` (a timeout
    raises `TimeoutError`, which ends the request and is logged without a
    traceback); made by hand, a connection has no limits.
    """

    __slots__ = ("_guard", "_pending", "_pending_start", "_reader", "_writer", "peer", "socket")

    def __init__(self, sock: socket.socket, peer: Address) -> None:
        self.socket = sock
        """The connected socket, for options such as timeouts."""
        self.peer = peer
        """The client's address: ``(host, port)``, or a path (often ``""``) for unix."""
        guard = current_guard()
        if guard is None or guard.socket is not sock:
            # Made by hand, or for another socket than the request's: no limits.
            guard = RequestGuard(sock, NO_LIMITS)
        self._guard = guard
        # The files are made on first use: the two cost about 8 us, more than a
        # short connection's whole exchange through recv and send_all.
        self._reader: SocketReader | None = None
        # Bytes received but not read yet: _pending[_pending_start:]. An offset rather
        # than a fresh slice per line, so that a receive full of short lines costs
        # time in proportion to its size, not to its size times its line count.
        self._pending = b""
        self._pending_start = 0
        self._writer: SocketWriter | None = None

    @property
    def rfile(self) -> BinaryIO:
        """A buffered binary file reading from the connection."""
        return self._reader if self._reader is not None else self._open_reader()

    def _open_reader(self) -> SocketReader:
        leftover = self._take_pending(len(self._pending))
        self._reader = SocketReader(self.socket, self._guard, leftover)
        return self._reader

    @property
    def wfile(self) -> BinaryIO:
        """An unbuffered binary file writing to the connection."""
        if self._writer is None:
            self._writer = SocketWriter(self.socket, self._guard)
        return self._writer  # type: ignore[return-value]  # a BufferedIOBase is a binary file

    def recv(self, max_bytes: int = DEFAULT_RECV_SIZE) -> bytes:
        """Up to `max_bytes` of what has arrived, waiting for at least one byte; ``b""`` at EOF."""
        if self._reader is not None:
            return self._reader.recv(max_bytes)
        if self._pending:
            return self._take_pending(min(self._pending_start + max_bytes, len(self._pending)))
        return self._guard.recv(self.socket, max_bytes)

    def readline(self, limit: int = -1) -> bytes:
        """One line including its ``b"\\n"`` (or what is left at EOF), at most `limit` bytes."""
        # Until `rfile` is opened, lines are cut here from what `recv` returns. Through
        # the BufferedReader, its Python layers per line made 16 threads on 2 cores
        # wait for the GIL more often: 0.88x ThreadingTCPServer (docs/performance.md).
        if self._reader is not None:
            return self._reader.readline(limit)
        if self._pending or limit >= 0:
            return self._gather_line(limit)
        data = self._guard.recv(self.socket, DEFAULT_RECV_SIZE)
        if data.find(b"\n") + 1 == len(data):
            return data  # the common case: one whole line per receive (or b"" at EOF)
        self._pending = data
        return self._gather_line(limit)

    def _gather_line(self, limit: int) -> bytes:
        """`readline` for a line that starts in bytes received before, spans receives,
        or has a limit."""
        if limit == 0:
            return b""
        start = self._pending_start
        end = _line_end(self._pending, start, limit)
        if end:
            return self._take_pending(end)
        parts = [self._take_pending(len(self._pending))]
        size = len(parts[0])
        guard = self._guard
        # With bytes of this line already here the connection is not idle: a drain
        # waits for the line, and the read clock bounds it.
        guard.begin_read(size > 0)
        while data := guard.receive(self.socket.recv, DEFAULT_RECV_SIZE, b""):
            # Searched on its own, so that a long receive completing a short line
            # is not copied whole; what is left past the line stays pending.
            end = _line_end(data, 0, limit - size if limit > 0 else limit)
            if end:
                self._pending = data
                parts.append(self._take_pending(end))
                return b"".join(parts)
            parts.append(data)
            size += len(data)
        return b"".join(parts)

    def _take_pending(self, end: int) -> bytes:
        """The pending bytes up to offset `end` of `_pending`, consumed."""
        pending = self._pending
        taken = pending[self._pending_start : end]
        if end < len(pending):
            self._pending_start = end
        else:
            self._pending = b""
            self._pending_start = 0
        return taken

    def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send all of `data`, waiting while the peer is slow to read (up to ``write_timeout``)."""
        self._guard.send_all(self.socket, data)

    def close(self) -> None:
        """Close the files; the server closes the socket itself when the handler returns."""
        if self._reader is not None:
            self._reader.close()
        if self._writer is not None:
            self._writer.close()
