"""`free_port`: a port number nothing listens on, for what cannot take port 0."""

from __future__ import annotations

import socket

__all__ = ["free_port"]


def free_port(host: str = "127.0.0.1", kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    """A port on `host` that was free a moment ago, for sockets of `kind`.

    Racy by nature: the port is free when this returns, and anything on the
    machine may take it before the test does, so a test using it can fail now
    and then. Prefer port 0, which the kernel picks as it binds, and read the
    real port back from ``server.address``::

        server = serve(tcp(("127.0.0.1", 0)), threaded(), handler)
        host, port = server.address

    Use this only where the port must be known before anything binds (a
    configuration file, a command line for another process). `host` is an IPv4
    or an IPv6 address; `kind` is ``socket.SOCK_STREAM`` (TCP) or
    ``socket.SOCK_DGRAM`` (UDP).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
    return port
