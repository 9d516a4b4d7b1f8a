"""Helpers shared by the tests: real sockets and deadlines on every wait.

`serving` and `wait_until` are composerv.testing's, re-exported for the suite; the
leak checks are the plugin's ``composerv_no_leaks`` fixture.
"""

from __future__ import annotations

import socket
from typing import Any

from composerv.testing import serving, wait_until

__all__ = ["DEADLINE", "connect", "recv_exactly", "recv_until_eof", "serving", "wait_until"]

# Every wait in the suite is bounded by this many seconds, so a bug shows up as a
# failure with a message, never as a hung CI run.
DEADLINE = 10.0


def connect(address: Any, *, kind: int = socket.SOCK_STREAM) -> socket.socket:
    """A client socket connected to `address` (inet tuple or unix path), with a timeout."""
    if isinstance(address, (str, bytes)):
        sock = socket.socket(socket.AF_UNIX, kind)
    else:
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        sock = socket.socket(family, kind)
    sock.settimeout(DEADLINE)
    try:
        sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    """Read exactly `size` bytes, failing on EOF (the socket's timeout bounds the wait)."""
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise AssertionError(f"EOF after {len(chunks)} of {size} bytes")
        chunks += chunk
    return bytes(chunks)


def recv_until_eof(sock: socket.socket) -> bytes:
    """Read until the peer closes (the socket's timeout bounds the wait)."""
    chunks = bytearray()
    while chunk := sock.recv(65536):
        chunks += chunk
    return bytes(chunks)
