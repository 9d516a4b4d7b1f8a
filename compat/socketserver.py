"""The stdlib ``socketserver`` API, built on composerv.

Use it with ``import compat.socketserver as socketserver``.

Every public name of the stdlib module is here, including those newer than the
running Python (``ForkingUnixStreamServer``, ``ForkingUnixDatagramServer``), with
the same hooks, attributes and behaviour. The differences are fixes, listed in
docs/migrating.md: ``shutdown()`` is immediate and never deadlocks, only live
threads are tracked, only the server's own children are reaped, and an oversized
datagram is dropped and logged instead of silently cut.

The classes report ``__module__ == "socketserver"``, the module they stand in for,
so reprs, tracebacks and introspection read as they did (and CPython's
``test_socketserver.MiscTestCase.test_all`` holds when this module is installed as
``sys.modules["socketserver"]``).
"""

from __future__ import annotations

import os
import socket

from composerv._connection import SocketWriter

from ._handlers import (
    BaseRequestHandler,
    DatagramRequestHandler,
    StreamRequestHandler,
)
from ._mixins import ForkingMixIn, ThreadingMixIn
from ._servers import BaseServer, TCPServer, UDPServer, UnixDatagramServer, UnixStreamServer

__version__ = "0.4"

# The stdlib's name for the unbuffered writer of StreamRequestHandler.wfile, which
# code and tests reach for.
_SocketWriter = SocketWriter

__all__: list[str] = [
    "BaseRequestHandler",
    "BaseServer",
    "DatagramRequestHandler",
    "StreamRequestHandler",
    "TCPServer",
    "ThreadingMixIn",
    "ThreadingTCPServer",
    "ThreadingUDPServer",
    "UDPServer",
]
if hasattr(os, "fork"):
    __all__ += ["ForkingMixIn", "ForkingTCPServer", "ForkingUDPServer"]
if hasattr(socket, "AF_UNIX"):
    __all__ += [
        "ThreadingUnixDatagramServer",
        "ThreadingUnixStreamServer",
        "UnixDatagramServer",
        "UnixStreamServer",
    ]
    if hasattr(os, "fork"):
        __all__ += ["ForkingUnixDatagramServer", "ForkingUnixStreamServer"]


class ThreadingTCPServer(ThreadingMixIn, TCPServer):
    """A TCP server with a thread per connection."""


class ThreadingUDPServer(ThreadingMixIn, UDPServer):
    """A UDP server with a thread per datagram."""


class ForkingTCPServer(ForkingMixIn, TCPServer):
    """A TCP server with a child process per connection."""


class ForkingUDPServer(ForkingMixIn, UDPServer):
    """A UDP server with a child process per datagram."""


class ThreadingUnixStreamServer(ThreadingMixIn, UnixStreamServer):
    """A unix stream server with a thread per connection."""


class ThreadingUnixDatagramServer(ThreadingMixIn, UnixDatagramServer):
    """A unix datagram server with a thread per datagram."""


class ForkingUnixStreamServer(ForkingMixIn, UnixStreamServer):
    """A unix stream server with a child process per connection."""


class ForkingUnixDatagramServer(ForkingMixIn, UnixDatagramServer):
    """A unix datagram server with a child process per datagram."""


_PUBLIC_CLASSES = (
    BaseRequestHandler,
    BaseServer,
    DatagramRequestHandler,
    ForkingMixIn,
    ForkingTCPServer,
    ForkingUDPServer,
    ForkingUnixDatagramServer,
    ForkingUnixStreamServer,
    StreamRequestHandler,
    TCPServer,
    ThreadingMixIn,
    ThreadingTCPServer,
    ThreadingUDPServer,
    ThreadingUnixDatagramServer,
    ThreadingUnixStreamServer,
    UDPServer,
    UnixDatagramServer,
    UnixStreamServer,
)


def _present_as_stdlib() -> None:
    for cls in _PUBLIC_CLASSES:
        cls.__module__ = "socketserver"
    # Names this platform cannot support are not offered, as in the stdlib.
    for name in {cls.__name__ for cls in _PUBLIC_CLASSES} - set(__all__):
        del globals()[name]


_present_as_stdlib()
