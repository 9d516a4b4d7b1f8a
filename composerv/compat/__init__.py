"""The classic ``socketserver`` API under composerv's own name.

Migrate legacy code by changing one import line::

    import composerv.compat.socketserver as socketserver   # Python 3 code
    from composerv.compat import SocketServer              # Python 2 style code

``composerv.compat.socketserver`` *is* the module ``compat.socketserver`` (and
``composerv.compat.SocketServer`` is ``compat.SocketServer``), so programs that mix
the two names share one set of classes. Where a project's own top-level ``compat``
comes first on ``sys.path``, this name still gives composerv's classes (loaded under
a private name) and the project's ``compat`` stays its own.
"""
