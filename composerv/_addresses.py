"""Address types and the checks that turn bad addresses into clear errors."""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import sys
from typing import TypeGuard, cast

from ._errors import ConfigurationError, ConfigurationTypeError
from ._validate import is_tuple

__all__ = [
    "Address",
    "HostPort",
    "InetAddress",
    "Network",
    "check_inet_address",
    "check_unix_path",
    "family_of",
    "networks",
    "peer_ip",
    "peer_repr",
]

InetAddress = tuple[str, int] | tuple[str, int, int, int]
"""``(host, port)``, or ``(host, port, flowinfo, scope_id)`` for IPv6."""

HostPort = tuple[str, int]
"""``(host, port)``: where a TCP or UDP server listens (`Server.address`), in the
form ``socket.create_connection`` takes; an IPv6 scope is part of the host."""

Address = InetAddress | str | bytes
"""Any socket address a server binds to or a peer connects from."""

# sun_path is 108 bytes on Linux and 104 on the BSDs and macOS; one byte goes to the
# terminating NUL of a filesystem path.
UNIX_PATH_MAX = 108 if sys.platform.startswith("linux") else 104

_HOSTNAME_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)\Z")
_LOOKS_NUMERIC = re.compile(r"[0-9.]+\Z")


def check_inet_address(address: object) -> InetAddress:
    """Return `address` if it is a well-formed ``(host, port[, flowinfo, scope_id])``.

    Raises `ConfigurationError` naming what is wrong. Host names are checked for
    syntax only; they are resolved when the socket is bound.
    """
    if not is_tuple(address) or len(address) not in (2, 4):
        hint = " (for a string such as 'tcp://host:port' use transport_from_url)"
        error = ConfigurationError if isinstance(address, tuple) else ConfigurationTypeError
        raise error(
            f"address must be a (host, port) tuple, not {address!r}"
            + (hint if isinstance(address, str) else "")
        )
    host, port = address[0], address[1]
    if not isinstance(host, str):
        raise ConfigurationTypeError(f"address host must be a str, not {host!r}")
    if isinstance(port, bool) or not isinstance(port, int):
        raise ConfigurationTypeError(f"address port must be an int, not {port!r}")
    if not 0 <= port <= 65535:
        raise ConfigurationError(
            f"address port must be between 0 and 65535 (0 picks a free port), not {port}"
        )
    _check_host(host)
    if len(address) == 4:
        if family_of(host) != socket.AF_INET6:
            raise ConfigurationError(f"a 4-tuple address is for IPv6 hosts only, not {host!r}")
        for name, value in zip(("flowinfo", "scope_id"), address[2:], strict=True):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigurationTypeError(f"address {name} must be an int, not {value!r}")
            if value < 0:
                raise ConfigurationError(
                    f"address {name} must be a non-negative int, not {value!r}"
                )
    # Every item is checked above, but a check of one item does not narrow the tuple.
    return cast("InetAddress", address)


def _check_host(host: str) -> None:
    if host in ("", "localhost"):
        return
    if host.startswith("[") and host.endswith("]"):
        raise ConfigurationError(
            f"address host {host!r} must not have brackets; write {host[1:-1]!r}"
        )
    if ":" in host or _LOOKS_NUMERIC.match(host):
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            raise ConfigurationError(
                f"address host {host!r} is not a valid IPv4 or IPv6 address"
            ) from None
        return
    labels = host.rstrip(".").split(".")
    if len(host) > 253 or not all(_HOSTNAME_LABEL.match(label) for label in labels):
        raise ConfigurationError(f"address host {host!r} is not a valid host name")


def family_of(host: str) -> socket.AddressFamily:
    """The address family a literal host implies; AF_INET for names and ``""``."""
    if ":" in host:
        return socket.AF_INET6
    return socket.AF_INET


def _is_path_like(value: object) -> TypeGuard[os.PathLike[str] | os.PathLike[bytes]]:
    """``isinstance(value, os.PathLike)``, with what `os.fspath` of it can return."""
    return isinstance(value, os.PathLike)


def check_unix_path(path: object) -> str:
    """Return `path` as a str if it can name a unix socket; raise `ConfigurationError` if not.

    A path starting with a NUL byte names a socket in Linux's abstract namespace.
    """
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if _is_path_like(path):
        path = os.fspath(path)
    if not isinstance(path, str):
        raise ConfigurationTypeError(
            f"path must be a str or os.PathLike naming a unix socket, not {path!r}"
        )
    if not path:
        raise ConfigurationError("path must not be empty")
    size = len(os.fsencode(path))
    limit = UNIX_PATH_MAX if path.startswith("\0") else UNIX_PATH_MAX - 1
    if size > limit:
        raise ConfigurationError(
            f"path is {size} bytes, over the {limit}-byte limit of a unix socket address: "
            f"{path!r}; use a shorter path (e.g. under /run or /tmp)"
        )
    return path


Network = ipaddress.IPv4Network | ipaddress.IPv6Network
"""An IPv4 or IPv6 network, as `ipaddress` makes them."""


def networks(values: tuple[object, ...]) -> tuple[Network, ...]:
    """`values` as IP networks (``"10.0.0.0/8"``, ``"::1"``); `ConfigurationError` names
    one that is not."""
    parsed: list[Network] = []
    for value in values:
        if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
            parsed.append(value)
            continue
        if not isinstance(value, str):
            raise ConfigurationTypeError(
                f"networks must be strings such as '10.0.0.0/8' or '::1', "
                f"not {type(value).__name__} {value!r}"
            )
        try:
            parsed.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise ConfigurationError(
                f"network {value!r} is not an IPv4 or IPv6 address or network "
                "(such as '192.168.0.0/16' or '::1')"
            ) from None
    return tuple(parsed)


def peer_ip(peer: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address of an inet peer (an IPv4-mapped IPv6 address as IPv4); None for
    a unix peer."""
    if not isinstance(peer, tuple) or not peer or not isinstance(peer[0], str):
        return None
    try:
        address = ipaddress.ip_address(peer[0].split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def peer_repr(address: object) -> str:
    """A peer address as it reads best in a log line."""
    if is_tuple(address) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    if address in ("", b"", None):
        return "an unnamed unix peer"
    return repr(address)
