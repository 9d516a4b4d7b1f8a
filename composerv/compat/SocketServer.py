"""``compat.SocketServer`` itself: ``from composerv.compat import SocketServer``.

Importing this module puts the module object `compat.SocketServer` in its place, so
``composerv.compat.SocketServer is compat.SocketServer``, also where a project's own
``compat`` shadows composerv's (see `composerv.compat._classic`).
"""
# ruff: noqa: N999  # the module's name is Python 2's, which legacy code imports

import sys
from typing import TYPE_CHECKING

from ._classic import classic

if TYPE_CHECKING:
    # Only type checkers read this: at run time the module object takes this one's place.
    # The names are compat.SocketServer's, read from the module that defines them.
    from compat.socketserver import *  # noqa: F403  # the whole public API

sys.modules[__name__] = classic("SocketServer")
