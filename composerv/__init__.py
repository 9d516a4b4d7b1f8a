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
    Workers,
    forking,
    sync,
    threaded,
    workers,
)
from ._connection import Connection
from ._datagram import Datagram
from ._errors import (
    ComposervError,
    ConfigurationError,
    HandlerMismatchError,
    SocketPathInUseError,
)
from ._handlers import (
    ClassicDatagramHandler,
    ClassicServer,
    ClassicStreamHandler,
    DatagramHandler,
    Handler,
    StreamHandler,
    datagram_handler,
    request_handler,
    stream_handler,
)
from ._limits import DrainReport, Limits, limits
from ._server import Server, serve
from ._transports import (
    TCP,
    TLS,
    UDP,
    DatagramTooLargeError,
    DatagramTransport,
    InheritedDatagram,
    InheritedStream,
    StreamTransport,
    Transport,
    UnixDatagram,
    UnixStream,
    inherited,
    systemd_sockets,
    tcp,
    tls,
    udp,
    unix_datagram,
    unix_stream,
)
from ._url import transport_from_url

__all__ = [
    "Address",
    "BlockingConcurrency",
    "ClassicDatagramHandler",
    "ClassicServer",
    "ClassicStreamHandler",
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
    "InheritedDatagram",
    "InheritedStream",
    "Limits",
    "Scheduler",
    "Server",
    "SocketPathInUseError",
    "StreamHandler",
    "StreamTransport",
    "Sync",
    "TCP",
    "TLS",
    "Threaded",
    "Transport",
    "UDP",
    "UnixDatagram",
    "UnixStream",
    "Workers",
    "datagram_handler",
    "forking",
    "inherited",
    "limits",
    "request_handler",
    "serve",
    "stream_handler",
    "sync",
    "systemd_sockets",
    "tcp",
    "threaded",
    "tls",
    "transport_from_url",
    "udp",
    "unix_datagram",
    "unix_stream",
    "workers",
]

__version__ = "0.1.0"
