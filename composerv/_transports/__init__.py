"""Transports: where a server's requests come from."""

from ._base import Cleanup, DatagramTransport, StreamTransport, Transport
from ._inet import TCP, UDP, tcp, udp
from ._inherited import InheritedDatagram, InheritedStream, inherited, systemd_sockets
from ._proxy import ProxyProtocol, proxy_protocol
from ._tls import TLS, tls
from ._unix import UnixDatagram, UnixStream, unix_datagram, unix_stream

__all__ = [
    "TCP",
    "TLS",
    "UDP",
    "Cleanup",
    "DatagramTransport",
    "InheritedDatagram",
    "InheritedStream",
    "ProxyProtocol",
    "StreamTransport",
    "Transport",
    "UnixDatagram",
    "UnixStream",
    "inherited",
    "proxy_protocol",
    "systemd_sockets",
    "tcp",
    "tls",
    "udp",
    "unix_datagram",
    "unix_stream",
]
