"""``compat.socketserver`` itself: ``import composerv.compat.socketserver as socketserver``.

Importing this module puts the module object `compat.socketserver` in its place, so
``composerv.compat.socketserver is compat.socketserver`` and a class imported under
either name is the same class. The star import is what type checkers read.
"""

import sys

import compat.socketserver
from compat.socketserver import *  # noqa: F403  # the whole public API, for type checkers

sys.modules[__name__] = compat.socketserver
