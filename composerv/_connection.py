"""`Connection`, its files, and the socket every stream handler is given.

All reading of a connection goes through one object, its `Connection`: `recv`,
`readline`, `read`, the `rfile` file and, under a classic handler, the socket's own
``recv`` and ``makefile`` (see `RequestSocket`). Bytes one of them received and did
not return go to the next, whichever it is, and every read keeps the request's
deadlines and drain state (`RequestContext`).
"""

# Underscore names here are private to the module, not to one class: ConnectionReader
# reads its Connection's buffer, and the request sockets get their routing set here.
# pyright: reportPrivateUsage=false

from __future__ import annotations

import io
import socket
import ssl
from collections.abc import Iterator
from typing import Any, BinaryIO

from ._addresses import Address
from ._context import RequestContext
from ._errors import MessageTooLargeError

__all__ = [
    "DEFAULT_LINE_LIMIT",
    "DEFAULT_RECV_SIZE",
    "Connection",
    "RequestSSLSocket",
    "RequestSocket",
    "SocketWriter",
    "adopt_connection",
    "connection_of",
    "route_tls_socket",
]

# Reads of at most 64 KiB stay under glibc's mmap threshold, so a fresh buffer per
# read comes from the heap instead of an mmap/munmap pair (docs/architecture.md).
DEFAULT_RECV_SIZE = 65536

DEFAULT_LINE_LIMIT = 65536
"""The longest line, newline included, that `Connection.readline` and
``rfile.readline`` return when not given a limit; a longer one raises
`MessageTooLargeError`. 64 KiB is http.server's own bound on a request line."""


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
    one line, `read` a number of bytes, and `rfile` is a binary file; bytes that one
    of them received and did not return go to the next read, whichever it is, so they
    can be mixed. Writing: `send_all` or `wfile`, both unbuffered.

    Inside a server, reads and writes keep the server's `limits` (a timeout raises
    `TimeoutError`, which ends the request and is logged without a traceback); made
    by hand, ``Connection(sock, peer)`` has no limits.
    """

    __slots__ = ("_pending", "_pending_start", "_reader", "_writer", "context", "socket")

    def __init__(
        self, sock: socket.socket, peer: Address, *, context: RequestContext | None = None
    ) -> None:
        self.socket = sock
        """The connected socket, for options such as TCP_NODELAY."""
        self.context = RequestContext.unlimited(sock, peer) if context is None else context
        """The request's context: its peer, limits and deadlines (see `RequestContext`)."""
        # Bytes received but not read yet: _pending[_pending_start:]. An offset rather
        # than a fresh slice per line, so that a receive full of short lines costs
        # time in proportion to its size, not to its size times its line count.
        self._pending = b""
        self._pending_start = 0
        # The files are made on first use: a short connection's whole exchange
        # through recv and send_all costs less than making them.
        self._reader: ConnectionReader | None = None
        self._writer: SocketWriter | None = None

    @property
    def peer(self) -> Address:
        """The client's address: ``(host, port)``, or a path (often ``""``) for unix."""
        return self.context.peer

    @property
    def rfile(self) -> BinaryIO:
        """A binary file reading from the connection, sharing its buffered bytes."""
        if self._reader is None:
            self._reader = ConnectionReader(self)
        return self._reader  # type: ignore[return-value]  # a BufferedIOBase is a binary file

    @property
    def wfile(self) -> BinaryIO:
        """An unbuffered binary file writing to the connection."""
        if self._writer is None:
            self._writer = SocketWriter(self.socket, self.context)
        return self._writer  # type: ignore[return-value]  # a BufferedIOBase is a binary file

    @property
    def buffered(self) -> int:
        """How many received bytes wait to be read."""
        return len(self._pending) - self._pending_start

    def recv(self, max_bytes: int = DEFAULT_RECV_SIZE) -> bytes:
        """Up to `max_bytes` of what has arrived, waiting for at least one byte; ``b""`` at EOF."""
        if self._pending:
            return self._take_pending(min(self._pending_start + max_bytes, len(self._pending)))
        return self.context.recv(max_bytes)

    def recv_into(self, buffer: Any, nbytes: int = 0) -> int:
        """`recv` into `buffer`, at most `nbytes` bytes (0: the buffer's size); the count."""
        if not self._pending:
            return self.context.recv_into(buffer, nbytes)
        with memoryview(buffer) as view, view.cast("B") as target:
            size = min(nbytes or target.nbytes, target.nbytes)
            data = self.recv(size)
            target[: len(data)] = data
            return len(data)

    def readline(self, limit: int | None = None) -> bytes:
        """One line including its ``b"\\n"`` (or what is left at EOF).

        With a `limit`, at most that many bytes: a longer line comes back cut, as from
        a file's ``readline(limit)`` (negative: no limit). Without one, a line longer
        than `DEFAULT_LINE_LIMIT` raises `MessageTooLargeError`, so a peer that never
        sends a newline cannot make the server buffer without bound.
        """
        # Lines are cut here from what `recv` returns: the Python layers of a
        # BufferedReader per line made 16 threads on 2 cores wait for the GIL more
        # often (0.88x ThreadingTCPServer, benchmarks/results/history/run-08.md).
        if limit is None:
            pending = self._pending
            if not pending:
                data = self.context.recv(DEFAULT_RECV_SIZE)
                if data.find(b"\n") + 1 == len(data):
                    return data  # the common case: one whole line per receive (or b"" at EOF)
                self._pending = pending = data
            # The next common case, inline: a whole line among the bytes received.
            start = self._pending_start
            end = pending.find(b"\n", start) + 1
            if 0 < end - start <= DEFAULT_LINE_LIMIT:
                if end < len(pending):
                    self._pending_start = end
                else:
                    self._pending = b""
                    self._pending_start = 0
                return pending[start:end]
            line = self._gather_line(DEFAULT_LINE_LIMIT)
            if len(line) == DEFAULT_LINE_LIMIT and not line.endswith(b"\n"):
                raise MessageTooLargeError(
                    len(line),
                    DEFAULT_LINE_LIMIT,
                    what="readline()'s default limit",
                    remedy="pass readline(limit) a larger limit (or -1 for none) to accept it",
                )
            return line
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
        context = self.context
        # With bytes of this line already here the connection is not idle: a drain
        # waits for the line, and the read clock bounds it.
        context.begin_read(size > 0)
        while data := context.receive(context.raw_recv, DEFAULT_RECV_SIZE, b""):
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

    def read(self, size: int = -1) -> bytes:
        """`size` bytes, fewer only at EOF (negative: everything until EOF)."""
        if 0 <= size <= self.buffered:
            return self._take_pending(self._pending_start + size)
        parts = [self._take_pending(len(self._pending))]
        have = len(parts[0])
        context = self.context
        context.begin_read(have > 0)
        while size < 0 or have < size:
            want = DEFAULT_RECV_SIZE if size < 0 else min(size - have, DEFAULT_RECV_SIZE)
            data = context.receive(context.raw_recv, want, b"")
            if not data:
                break
            parts.append(data)
            have += len(data)
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
        self.context.send_all(data)

    def close(self) -> None:
        """Close the files; the server closes the socket itself when the handler returns."""
        if self._reader is not None:
            self._reader.close()
        if self._writer is not None:
            self._writer.close()


class ConnectionReader(io.BufferedIOBase):
    """`Connection.rfile`: a binary file over the connection's reads.

    Every read keeps the connection's deadlines; bytes stay shared with
    `Connection.recv` and `readline`. Closing the file leaves the connection open.
    """

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._connection.socket.fileno()

    def read(self, size: int | None = -1) -> bytes:
        self._check_open()
        return self._connection.read(-1 if size is None else size)

    def read1(self, size: int = -1) -> bytes:
        self._check_open()
        return self._connection.recv(DEFAULT_RECV_SIZE if size < 0 else size) if size else b""

    def readline(self, size: int | None = -1) -> bytes:
        """One line; without a `size` (or a negative one) at most `DEFAULT_LINE_LIMIT`
        bytes, and a longer line raises `MessageTooLargeError`."""
        if self.closed:
            raise ValueError("I/O operation on closed file.")
        return self._connection.readline(None if size is None or size < 0 else size)

    def readinto(self, buffer: Any) -> int:
        data = self.read(memoryview(buffer).nbytes)
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def readinto1(self, buffer: Any) -> int:
        self._check_open()
        return self._connection.recv_into(buffer)

    def peek(self, size: int = 0) -> bytes:
        """The buffered bytes, receiving once if there are none (as BufferedReader.peek)."""
        self._check_open()
        connection = self._connection
        if not connection.buffered:
            data = connection.recv()
            connection._pending, connection._pending_start = data, 0
        return connection._pending[connection._pending_start :]

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self.closed:
            raise ValueError("I/O operation on closed file.")
        line = self._connection.readline()
        if not line:
            raise StopIteration
        return line

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file.")


class SocketWriter(io.BufferedIOBase):
    """A write-only file over a socket that sends every write in full at once.

    Like ``socket.makefile("wb", buffering=0)`` but with no short writes, so
    ``wfile.write(data)`` always sends all of `data`, within the request's
    ``write_timeout`` when it has one.
    """

    def __init__(self, sock: socket.socket, context: RequestContext | None = None) -> None:
        self._sock = sock
        self._context = context

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        if self._context is None:
            self._sock.sendall(b)
        else:
            self._context.send_all(b)
        with memoryview(b) as view:
            return view.nbytes

    def fileno(self) -> int:
        return self._sock.fileno()


class _RawWriter(io.RawIOBase):
    """The raw side of a buffered ``makefile("wb")``: each write is one send."""

    def __init__(self, sock: socket.socket, context: RequestContext) -> None:
        self._sock = sock
        self._context = context

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        return self._context.send(b)

    def fileno(self) -> int:
        return self._sock.fileno()


class _Routed:
    """What a request socket does differently from a plain one: its reads, writes,
    files and timeout go through the request's `Connection` and `RequestContext`.

    So a classic handler that calls ``self.request.recv(...)`` or reads
    ``makefile("rb")`` (as ``StreamRequestHandler.rfile`` does) keeps the limits:
    a timeout raises `TimeoutError`, never a short read that looks like the end
    of the stream, and a drain closes it when it waits for a new request.
    """

    __slots__ = ()

    request_context: RequestContext
    _connection: Connection | None

    @property
    def connection(self) -> Connection:
        """The one `Connection` every read of this socket goes through."""
        connection = self._connection
        if connection is None:
            context = self.request_context
            connection = Connection(
                self,  # type: ignore[arg-type]  # mixed into socket classes only
                context.peer,
                context=context,
            )
            self._connection = connection  # type: ignore[misc]  # a slot of the socket classes
        return connection

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        if flags:
            return super().recv(bufsize, flags)  # type: ignore[misc, no-any-return]  # mixed into socket classes only
        return self.connection.recv(bufsize)

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        if flags:
            return super().recv_into(buffer, nbytes, flags)  # type: ignore[misc, no-any-return]  # mixed into socket classes only
        return self.connection.recv_into(buffer, nbytes)

    def send(self, data: Any, flags: int = 0) -> int:
        if flags:
            return super().send(data, flags)  # type: ignore[misc, no-any-return]  # mixed into socket classes only
        return self.request_context.send(data)

    def sendall(self, data: Any, flags: int = 0) -> None:
        if flags:
            super().sendall(data, flags)  # type: ignore[misc]  # mixed into socket classes only
            return
        self.request_context.send_all(data)

    def settimeout(self, value: float | None) -> None:
        self.request_context.set_own_timeout(value)

    def setblocking(self, flag: bool) -> None:
        self.settimeout(None if flag else 0.0)

    def makefile(
        self,
        mode: str = "r",
        buffering: int | None = None,
        *,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
    ) -> Any:
        """A file over this connection, as ``socket.makefile`` makes, whose reads share
        the connection's buffered bytes and keep its deadlines."""
        if not set(mode) <= {"r", "w", "b"} or ("r" in mode and "w" in mode):
            raise ValueError(
                f"invalid mode {mode!r} for a composerv connection: use 'rb' or 'wb' "
                "(or 'r'/'w' for text), one file per direction"
            )
        binary = "b" in mode
        if "w" in mode:
            if buffering == 0:
                if not binary:
                    raise ValueError("unbuffered streams must be binary")
                return SocketWriter(self, self.request_context)  # type: ignore[arg-type]  # mixed into socket classes only
            size = io.DEFAULT_BUFFER_SIZE if buffering is None or buffering < 0 else buffering
            file: Any = io.BufferedWriter(_RawWriter(self, self.request_context), size)  # type: ignore[arg-type]  # mixed into socket classes only
        else:
            file = self.connection.rfile
        if binary:
            return file
        text = io.TextIOWrapper(file, encoding, errors, newline)
        text.mode = mode  # type: ignore[misc]  # as socket.makefile sets it
        return text


class RequestSocket(_Routed, socket.socket):
    """An accepted connection as handlers get it: a socket whose own methods keep the
    request's limits (see `_Routed`)."""

    __slots__ = ("_connection", "request_context")


class RequestSSLSocket(_Routed, ssl.SSLSocket):  # type: ignore[misc]  # SSLSocket names recv's arguments differently
    """A TLS connection as handlers get it: the TLS socket of its handshake, keeping
    the request's limits like `RequestSocket`."""


def adopt_connection(
    sock: socket.socket, context: RequestContext, *, timeouts_preset: bool = False
) -> RequestSocket:
    """The accepted `sock` as a `RequestSocket` reading through `context` (`sock`
    itself is detached: the descriptor moves, no system call is made).
    `timeouts_preset`: see `RequestContext.attach`."""
    request = RequestSocket(sock.family, sock.type, sock.proto, fileno=sock.detach())
    request._connection = None
    request.request_context = context
    context.attach(request, timeouts_preset=timeouts_preset)
    return request


def route_tls_socket(tls_socket: ssl.SSLSocket, context: RequestContext) -> RequestSSLSocket:
    """Make the TLS socket of a finished handshake read through `context` (in place:
    the class changes, the object and its TLS session stay)."""
    tls_socket.__class__ = RequestSSLSocket
    routed: RequestSSLSocket = tls_socket  # type: ignore[assignment]  # the class just changed
    routed._connection = None
    routed.request_context = context
    context.attach(routed)
    return routed


def connection_of(sock: socket.socket, context: RequestContext) -> Connection:
    """The `Connection` every read of `sock` goes through: a request socket's own, or
    a new one over a plain socket (a handler called by hand)."""
    if isinstance(sock, _Routed):
        return sock.connection
    return Connection(sock, context.peer, context=context)
