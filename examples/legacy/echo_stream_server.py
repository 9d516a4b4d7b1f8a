"""The classic StreamRequestHandler example: echo each line back, in upper case.

Legacy Python 2 code (it also runs on Python 3). To migrate it to composerv,
change only the import line to ``from compat import SocketServer``.
"""
# ruff: noqa: UP010  # legacy code that still runs on Python 2, as it did before migrating

from __future__ import print_function

import socket
import threading

import SocketServer


class MyTCPHandler(SocketServer.StreamRequestHandler):
    """self.rfile and self.wfile are file-like objects over the connection."""

    def handle(self):
        for line in self.rfile:
            self.wfile.write(line.upper())


if __name__ == "__main__":
    server = SocketServer.TCPServer(("127.0.0.1", 0), MyTCPHandler)
    server_thread = threading.Thread(target=server.serve_forever)
    server_thread.start()

    client = socket.create_connection(server.server_address, timeout=10)
    try:
        reader = client.makefile("rb")
        for line in (b"hello\n", b"stream handler\n"):
            client.sendall(line)
            print("Received: {}".format(reader.readline().decode("ascii").strip()))
        reader.close()
    finally:
        client.close()
        server.shutdown()
        server_thread.join()
        server.server_close()
