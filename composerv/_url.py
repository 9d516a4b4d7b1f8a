"""Server addresses as URL strings, for configuration files and command lines.

==========================  =====================================
``tcp://127.0.0.1:8000``    `tcp` on IPv4
``tcp://[::1]:8000``        `tcp` on IPv6 (brackets, as in URLs)
``udp://0.0.0.0:5353``      `udp`
``unix:///run/app.sock``    `unix_stream` (an absolute path)
``unix-dgram:///tmp/x``     `unix_datagram`
``fd://3``                  `inherited` (a socket passed in by a supervisor)
``systemd://web``           the socket systemd passed as ``web``
                            (``FileDescriptorName=``, `LISTEN_FDNAMES`)
==========================  =====================================

A ``proxy+`` before a stream scheme reads a PROXY protocol header first (see
`proxy_protocol`), accepted from the networks of its ``trusted`` query, comma
separated: ``proxy+tcp://0.0.0.0:8000?trusted=10.0.0.0/8,127.0.0.1``,
``proxy+unix:///run/app.sock`` (a unix socket's peers are trusted: its file's
permissions decide who connects), ``proxy+systemd://web?trusted=10.0.0.0/8``.
"""

from __future__ import annotations

import functools
import socket
import urllib.parse
from typing import Any

from ._addresses import Address
from ._errors import ConfigurationError
from ._transports import (
    ProxyProtocol,
    StreamTransport,
    Transport,
    proxy_protocol,
    tcp,
    udp,
    unix_datagram,
    unix_stream,
)
from ._transports._inherited import (
    InheritedDatagram,
    InheritedStream,
    inherited,
    named_systemd_sockets,
)

__all__ = ["transport_from_url", "url_of"]

_SCHEMES = ("tcp", "udp", "unix", "unix-dgram", "fd", "systemd")
_PROXY = "proxy+"
# The schemes of stream transports, which the PROXY protocol can run over.
_STREAM_SCHEMES = ("tcp", "unix", "fd", "systemd")
_EXAMPLES = "tcp://127.0.0.1:8000, tcp://[::1]:8000, udp://127.0.0.1:5353, unix:///run/app.sock"


def transport_from_url(url: str) -> Transport[Any]:
    """The transport a URL names, e.g. ``transport_from_url("tcp://127.0.0.1:8000")``.

    Raises `ConfigurationError` naming the part of `url` that is wrong.
    """
    if not isinstance(url, str):
        raise ConfigurationError(f"url must be a str such as {_EXAMPLES}, not {url!r}")
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigurationError(
            f"url {url!r} has no scheme: write it as scheme://address, e.g. {_EXAMPLES}"
        )
    scheme = scheme.lower()
    if scheme.startswith(_PROXY):
        return _proxied(url, scheme.removeprefix(_PROXY), rest)
    if scheme not in _SCHEMES:
        raise ConfigurationError(
            f"url {url!r} has an unknown scheme {scheme!r}: use one of {', '.join(_SCHEMES)}, "
            f"or {_PROXY} before a stream one ({_PROXY}tcp...)"
        )
    if "?" in rest or "#" in rest:
        raise ConfigurationError(
            f"url {url!r} has a query or fragment, which composerv reads only after "
            f"{_PROXY} ({_PROXY}tcp://...?trusted=...); remove it"
        )
    return _plain(url, scheme, rest)


def _plain(url: str, scheme: str, rest: str) -> Transport[Any]:
    if scheme in ("tcp", "udp"):
        host, port = _host_port(url, rest)
        return tcp((host, port)) if scheme == "tcp" else udp((host, port))
    if scheme == "fd":
        return inherited(_fd(url, rest))
    if scheme == "systemd":
        return _systemd(url, rest)
    return _unix(url, scheme, rest)


def _proxied(url: str, scheme: str, rest: str) -> ProxyProtocol[Any]:
    if scheme not in _STREAM_SCHEMES:
        raise ConfigurationError(
            f"url {url!r} puts {_PROXY} before {scheme!r}: the PROXY protocol runs over "
            f"{', '.join(_PROXY + s for s in _STREAM_SCHEMES)}"
        )
    rest, _, query = rest.partition("?")
    if "#" in query or "#" in rest:
        raise ConfigurationError(f"url {url!r} has a fragment, which composerv does not read")
    try:
        fields = urllib.parse.parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ConfigurationError(
            f"url {url!r} has a query {query!r} that is not name=value pairs"
        ) from None
    unknown = sorted(set(fields) - {"trusted"})
    if unknown:
        raise ConfigurationError(
            f"url {url!r} has a query naming {', '.join(unknown)}; it takes trusted=CIDR[,CIDR]"
        )
    if len(fields.get("trusted", ())) > 1:
        raise ConfigurationError(
            f"url {url!r} names trusted more than once: join the networks with commas"
        )
    trusted = [n for n in fields.get("trusted", [""])[0].split(",") if n]
    if not trusted and scheme != "unix":
        raise ConfigurationError(
            f"url {url!r} has no trusted=CIDR[,CIDR] query naming the networks the proxy "
            f"connects from, e.g. {url.partition('?')[0]}?trusted=10.0.0.0/8"
        )
    transport = _plain(url, scheme, rest)
    assert isinstance(transport, StreamTransport)  # a stream scheme
    try:
        return proxy_protocol(transport, trusted=trusted)
    except ConfigurationError as error:
        raise ConfigurationError(f"url {url!r}: {error}") from None


def _host_port(url: str, rest: str) -> tuple[str, int]:
    if "/" in rest:
        raise ConfigurationError(f"url {url!r} has a path {rest[rest.index('/') :]!r}; remove it")
    if "@" in rest:
        raise ConfigurationError(f"url {url!r} has user info, which a server address cannot use")
    if rest.startswith("["):
        host, bracket, after = rest[1:].partition("]")
        if not bracket:
            raise ConfigurationError(f"url {url!r} has an IPv6 host without its closing ']'")
        if not after.startswith(":"):
            raise ConfigurationError(
                f"url {url!r} has no port after the host [{host}]: add one, e.g. [{host}]:8000"
            )
        port_text = after[1:]
    else:
        host, colon, port_text = rest.rpartition(":")
        if not colon:
            raise ConfigurationError(
                f"url {url!r} has no port: add one, e.g. {url}:8000 (0 picks a free port)"
            )
        if ":" in host:
            raise ConfigurationError(
                f"url {url!r} has an IPv6 host without brackets: write [{host}]:{port_text}"
            )
    if not host:
        raise ConfigurationError(
            f"url {url!r} has no host: use 127.0.0.1 (this machine only) or 0.0.0.0 (all)"
        )
    if not port_text.isdigit() or not port_text.isascii():
        raise ConfigurationError(f"url {url!r} has a port {port_text!r} that is not a number")
    port = int(port_text)
    if port > 65535:
        raise ConfigurationError(f"url {url!r} has a port {port} above 65535 (0 picks a free port)")
    return host, port


def _fd(url: str, rest: str) -> int:
    if not rest.isdigit() or not rest.isascii():
        raise ConfigurationError(
            f"url {url!r} has a descriptor {rest!r} that is not a number, e.g. fd://3"
        )
    return int(rest)


def _systemd(url: str, name: str) -> Transport[Any]:
    passed = _passed_sockets()
    found = passed.get(name, [])
    if len(found) != 1:
        names = ", ".join(f"{n!r} ({len(s)})" for n, s in passed.items()) or "none"
        raise ConfigurationError(
            f"url {url!r} names the socket systemd passed as {name!r}, but it passed "
            f"{len(found)} by that name (sockets passed, by name: {names}); set "
            "FileDescriptorName= in the .socket unit"
        )
    return found[0]


# Read once: reading takes the variables out of the environment (see
# `named_systemd_sockets`), and several --bind may name sockets from it.
@functools.cache
def _passed_sockets() -> dict[str, list[InheritedStream | InheritedDatagram]]:
    return named_systemd_sockets()


def _unix(url: str, scheme: str, rest: str) -> Transport[Any]:
    host, slash, tail = rest.partition("/")
    if host:
        raise ConfigurationError(
            f"url {url!r} has a host {host!r}; a unix path needs three slashes: {scheme}:///{rest}"
        )
    if not slash or not tail:
        raise ConfigurationError(f"url {url!r} has no path: e.g. {scheme}:///run/app.sock")
    path = urllib.parse.unquote("/" + tail)
    return unix_stream(path) if scheme == "unix" else unix_datagram(path)


def url_of(sock: socket.socket) -> str:
    """The URL of a bound socket, with the real port: what `transport_from_url` reads back."""
    address: Address = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        scheme = "unix" if sock.type == socket.SOCK_STREAM else "unix-dgram"
        path = address.decode() if isinstance(address, bytes) else str(address)
        return f"{scheme}://{urllib.parse.quote(path)}"
    scheme = "tcp" if sock.type == socket.SOCK_STREAM else "udp"
    assert isinstance(address, tuple)  # inet families give (host, port, ...)
    host = f"[{address[0]}]" if sock.family == socket.AF_INET6 else address[0]
    return f"{scheme}://{host}:{address[1]}"
