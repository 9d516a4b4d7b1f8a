"""``compat.socketserver`` itself: ``import composerv.compat.socketserver as socketserver``.

Importing this module puts the module object `compat.socketserver` in its place, so
``composerv.compat.socketserver is compat.socketserver`` and a class imported under
either name is the same class. Where a project's own ``compat`` shadows composerv's,
this name still gives composerv's (see `composerv.compat._classic`).
"""

import sys
from typing import TYPE_CHECKING

from ._classic import classic

if TYPE_CHECKING:
    # Only type checkers read this: at run time the module object takes this one's place.
    from compat.socketserver import *  # noqa: F403  # the whole public API

sys.modules[__name__] = classic("socketserver")
