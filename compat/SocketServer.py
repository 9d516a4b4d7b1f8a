"""The Python 2 name of `compat.socketserver`: ``from compat import SocketServer``.

The same objects as `compat.socketserver`, so ``SocketServer.TCPServer is
compat.socketserver.TCPServer``.
"""
# ruff: noqa: N999  # the module's name is Python 2's, which legacy code imports

from . import socketserver as _socketserver
from .socketserver import *  # noqa: F403  # the whole public API under the old name

# The form pyright reads as re-exporting the other module's names (a plain
# ``__all__ = _socketserver.__all__`` it cannot follow).
__all__: list[str] = []
__all__ += _socketserver.__all__
__version__ = _socketserver.__version__
# The stdlib's private name, which legacy code and tests reach for under both names.
_SocketWriter = _socketserver._SocketWriter  # pyright: ignore[reportPrivateUsage]
