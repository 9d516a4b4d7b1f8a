"""composerv: network servers composed from small, immutable, typed values.

A server is a transport, a concurrency and a handler, put together by `serve`::

    from composerv import serve, stream_handler, tcp, threaded

    def echo(conn):
        while data := conn.recv():
            conn.send_all(data)

    with serve(tcp(("127.0.0.1", 8000)), threaded(), stream_handler(echo)) as server:
        server.serve_forever()
"""

from ._addresses import Address, InetAddress
from ._concurrency import (
    BlockingConcurrency,
    Concurrency,
    Forking,
    Scheduler,
    Sync,
    Threaded,
    forking,
    sync,
    threaded,
)
from ._connection import Connection
from ._datagram import Datagram
from ._errors import (
    ComposervError,
    ConfigurationError,
    HandlerMismatchError,
    SocketPathInUseError,
)
from ._handlers import DatagramHandler, Handler, StreamHandler, datagram_handler, stream_handler
from ._limits import DrainReport, Limits, limits
from ._server import Server, serve
from ._transports import (
    TCP,
    UDP,
    DatagramTooLargeError,
    DatagramTransport,
    StreamTransport,
    Transport,
    UnixDatagram,
    UnixStream,
    tcp,
    udp,
    unix_datagram,
    unix_stream,
)

__all__ = [
    "Address",
    "BlockingConcurrency",
    "ComposervError",
    "Concurrency",
    "ConfigurationError",
    "Connection",
    "Datagram",
    "DatagramHandler",
    "DatagramTooLargeError",
    "DatagramTransport",
    "DrainReport",
    "Forking",
    "Handler",
    "HandlerMismatchError",
    "InetAddress",
    "Limits",
    "Scheduler",
    "Server",
    "SocketPathInUseError",
    "StreamHandler",
    "StreamTransport",
    "Sync",
    "TCP",
    "Threaded",
    "Transport",
    "UDP",
    "UnixDatagram",
    "UnixStream",
    "datagram_handler",
    "forking",
    "limits",
    "serve",
    "stream_handler",
    "sync",
    "tcp",
    "threaded",
    "udp",
    "unix_datagram",
    "unix_stream",
]

__version__ = "0.1.0"
