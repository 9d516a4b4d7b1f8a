"""`allow_from` and `deny_from`: who may connect, by address."""

from __future__ import annotations

import ipaddress
import logging

import attrs

from .._addresses import peer_repr
from .._context import RequestContext
from .._errors import ConfigurationError, ConfigurationTypeError, RefusedError
from .._runtime import Layer
from .._runtime._episodes import Episodes

__all__ = ["AddressFilter", "allow_from", "deny_from", "networks", "peer_ip"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(values: tuple[str | Network, ...]) -> tuple[Network, ...]:
    """`values` as IP networks (``"10.0.0.0/8"``, ``"::1"``); `ConfigurationError` names
    one that is not."""
    parsed = []
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


@attrs.frozen
class AddressFilter(Layer):
    """Admits a peer by its address; build it with `allow_from` or `deny_from`."""

    networks: tuple[Network, ...]
    """The networks the filter is about."""
    allow: bool
    """True: only peers in `networks` may connect; False: peers in them may not."""
    unix: bool = False
    """Whether unix-socket peers (which have no address) are admitted."""
    _refusals: Episodes = attrs.field(
        init=False, eq=False, repr=False, factory=lambda: Episodes(level=logging.INFO)
    )

    def admit(self, context: RequestContext) -> None:
        address = peer_ip(context.peer)
        if address is None:
            admitted = self.unix
        else:
            inside = any(address in network for network in self.networks)
            admitted = inside == self.allow
        if not admitted:
            self._refusals.occurred(
                str(address),
                "refused %s: its address is %s",
                peer_repr(context.peer),
                "not allowed" if self.allow else "denied",
            )
            raise RefusedError(f"{peer_repr(context.peer)} may not connect")


def allow_from(*allowed: str | Network, unix: bool = True) -> AddressFilter:
    """Admit only peers whose address is in one of `allowed` (``"10.0.0.0/8"``,
    ``"::1"``); others are closed at once (a datagram from them is dropped), and
    logged once per address per minute. Unix-socket peers have no address: they are
    admitted unless ``unix=False``."""
    return AddressFilter(networks(allowed), allow=True, unix=unix)


def deny_from(*denied: str | Network) -> AddressFilter:
    """Refuse peers whose address is in one of `denied`; admit every other peer."""
    return AddressFilter(networks(denied), allow=False, unix=True)
