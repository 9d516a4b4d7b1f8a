"""Mistakes in a migrated program are mypy errors: the compat classes are typed, not Any.

Lines that must fail end with ``# E: <label>``; tests/test_compat_typing.py holds
the expected messages.
"""

import composerv.compat.socketserver as socketserver
from composerv.compat import SocketServer


class Echo(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        self.wfile.write("text")  # E: str-to-wfile


class Server(SocketServer.ThreadingMixIn, SocketServer.TCPServer):
    daemon_threads = 1  # E: int-as-bool


Server(("127.0.0.1", 0), Echo).serve_forever(poll_interval="0.5")  # E: str-as-interval
