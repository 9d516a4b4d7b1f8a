"""Transports: where a server's requests come from."""

from ._base import Cleanup, DatagramTooLargeError, DatagramTransport, StreamTransport, Transport
from ._inet import TCP, UDP, tcp, udp
from ._unix import UnixDatagram, UnixStream, unix_datagram, unix_stream

__all__ = [
    "TCP",
    "UDP",
    "Cleanup",
    "DatagramTooLargeError",
    "DatagramTransport",
    "StreamTransport",
    "Transport",
    "UnixDatagram",
    "UnixStream",
    "tcp",
    "udp",
    "unix_datagram",
    "unix_stream",
]
