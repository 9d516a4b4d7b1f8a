"""compat: the classic ``socketserver`` API, built on composerv's core.

Migrate legacy code by changing one import line::

    import compat.socketserver as socketserver   # Python 3 code
    from compat import SocketServer              # Python 2 style code

Nothing here imports the stdlib ``socketserver``: the classes drive composerv's
request loop (`composerv._runtime.ServeLoop`), its transports and its
thread and fork schedulers, while calling every classic hook at the same moment and
with the same arguments as the stdlib.
"""
