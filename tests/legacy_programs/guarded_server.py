"""Python 2 names, several per line, and an import split over lines.

Runs on Python 3 only once migrated, since Python 3 has no ``SocketServer``.
"""

import os, SocketServer
from SocketServer import (ThreadingMixIn,  # the classic pair
                          TCPServer)
import sys


class Handler(SocketServer.BaseRequestHandler):
    def handle(self):
        data = self.request.recv(1024)
        self.request.sendall(b"pid %d: %s" % (os.getpid(), data))


class Server(ThreadingMixIn, TCPServer):
    allow_reuse_address = True

    def verify_request(self, request, client_address):
        return client_address[0].startswith("127.")

    def handle_error(self, request, client_address):
        sys.stderr.write("request from %s failed\n" % (client_address,))


if __name__ == "__main__":
    server = Server(("127.0.0.1", 0), Handler)
    sys.stderr.write("listening on %s %d\n" % server.server_address)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    server.server_close()
