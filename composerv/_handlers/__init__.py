"""Handlers: what a server does with each request."""

from ._base import Handler
from ._datagram import DatagramHandler, datagram_handler
from ._stream import StreamHandler, stream_handler

__all__ = ["DatagramHandler", "Handler", "StreamHandler", "datagram_handler", "stream_handler"]
