"""`allow_from` and `deny_from`: who may connect, by address."""

from __future__ import annotations

import logging

import attrs

from .._addresses import Network, networks, peer_ip, peer_repr
from .._context import RequestContext
from .._episodes import Episodes
from .._errors import RefusedError
from .._runtime import Layer

__all__ = ["AddressFilter", "allow_from", "deny_from"]


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
