"""The classes of the values composerv's factories return, for annotations.

``tcp(...)`` returns a `TCP`, ``threaded()`` a `Threaded`, ``stream_handler(fn)``
a `StreamHandler`, and so on; each is a frozen attrs class, so ``attrs.evolve``
makes variations. Annotate with these where a precise type helps::

    from composerv.types import Threaded

    def more_threads(base: Threaded) -> Threaded:
        return attrs.evolve(base, keep_idle=5.0)
"""

from ._concurrency import AsyncioLoop, Evented, Forking, Pooled, Sync, Threaded, Workers
from ._framing import Datagrams, LengthPrefixed, Lines
from ._handlers import (
    AsyncStreamHandler,
    ClassicDatagramHandler,
    ClassicServer,
    ClassicStreamHandler,
    DatagramHandler,
    DatagramMessageHandler,
    DatagramSessionHandler,
    SessionHandler,
    StreamHandler,
    StreamMessageHandler,
)
from ._handlers._async import AsyncStreamFn
from ._proxy import ProxyHeader, ProxySSL, ProxySSLClient, ProxySSLSubtype, ProxyTLVType
from ._transports import (
    TCP,
    TLS,
    UDP,
    InheritedDatagram,
    InheritedStream,
    ProxyProtocol,
    UnixDatagram,
    UnixStream,
)

__all__ = [
    "TCP",
    "TLS",
    "UDP",
    "AsyncStreamFn",
    "AsyncStreamHandler",
    "AsyncioLoop",
    "ClassicDatagramHandler",
    "ClassicServer",
    "ClassicStreamHandler",
    "DatagramHandler",
    "DatagramMessageHandler",
    "DatagramSessionHandler",
    "Datagrams",
    "Evented",
    "Forking",
    "InheritedDatagram",
    "InheritedStream",
    "LengthPrefixed",
    "Lines",
    "Pooled",
    "ProxyHeader",
    "ProxyProtocol",
    "ProxySSL",
    "ProxySSLClient",
    "ProxySSLSubtype",
    "ProxyTLVType",
    "SessionHandler",
    "StreamHandler",
    "StreamMessageHandler",
    "Sync",
    "Threaded",
    "UnixDatagram",
    "UnixStream",
    "Workers",
]
