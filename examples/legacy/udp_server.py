"""The classic UDP server example: answer each datagram with it in upper case.

Legacy Python 2 code (it also runs on Python 3). To migrate it to composerv,
change only the import line to ``from compat import SocketServer``.
"""
# ruff: noqa: UP010  # legacy code that still runs on Python 2, as it did before migrating

from __future__ import print_function

import socket
import threading

import SocketServer


class MyUDPHandler(SocketServer.BaseRequestHandler):
    """self.request is a pair of the data and the socket to answer on."""

    def handle(self):
        data = self.request[0].strip()
        sock = self.request[1]
        print("{} wrote: {}".format(self.client_address[0], data.decode("ascii")))
        sock.sendto(data.upper(), self.client_address)


if __name__ == "__main__":
    server = SocketServer.UDPServer(("127.0.0.1", 0), MyUDPHandler)
    server_thread = threading.Thread(target=server.serve_forever)
    server_thread.start()

    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.settimeout(10)
    try:
        for word in (b"hello", b"datagram"):
            client.sendto(word + b"\n", server.server_address)
            print("Received: {}".format(client.recv(1024).decode("ascii")))
    finally:
        client.close()
        server.shutdown()
        server_thread.join()
        server.server_close()
