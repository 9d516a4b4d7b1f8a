"""The handler protocol: what a server does with one request."""

from __future__ import annotations

import abc
from typing import ClassVar, Generic

from .._addresses import Address
from .._transports._base import R

__all__ = ["Handler"]


class Handler(Generic[R], metaclass=abc.ABCMeta):
    """What to do with one request of type `R` (an accepted socket or a `Datagram`).

    A handler is an immutable value. The server calls `handle` once per request,
    under its concurrency (inline, in a thread, in a child process...), and then
    releases the request itself: `handle` must not close it.
    """

    __slots__ = ()

    kind: ClassVar[str]
    """``"stream"`` or ``"datagram"``: the transports this handler can serve."""

    @abc.abstractmethod
    def handle(self, request: R, peer: Address) -> None:
        """Serve one request; an exception is logged with `peer` and ends only this request."""
