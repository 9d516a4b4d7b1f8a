"""The Python 2 name of `compat.socketserver`: ``from compat import SocketServer``.

The same objects as `compat.socketserver`, so ``SocketServer.TCPServer is
compat.socketserver.TCPServer``.
"""

from .socketserver import *  # noqa: F403  # re-export the whole public API under the old name
from .socketserver import __all__ as __all__
from .socketserver import __version__ as __version__
from .socketserver import _SocketWriter as _SocketWriter
