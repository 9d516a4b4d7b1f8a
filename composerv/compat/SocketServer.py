"""``compat.SocketServer`` itself: ``from composerv.compat import SocketServer``.

Importing this module puts the module object `compat.SocketServer` in its place, so
``composerv.compat.SocketServer is compat.SocketServer``. The star import is what
type checkers read: the same names, from the module that defines them.
"""
# ruff: noqa: N999  # the module's name is Python 2's, which legacy code imports

import sys

import compat.SocketServer
from compat.socketserver import *  # noqa: F403  # the whole public API, for type checkers

sys.modules[__name__] = compat.SocketServer
