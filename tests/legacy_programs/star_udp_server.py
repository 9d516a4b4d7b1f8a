"""``from socketserver import *`` at the top, another import inside a function."""

import sys
from socketserver import *


class Upper(DatagramRequestHandler):
    def handle(self):
        self.wfile.write(self.rfile.read().upper())


def make_server(address):
    from socketserver import ThreadingMixIn  # imported where it is used

    class Server(ThreadingMixIn, UDPServer):
        daemon_threads = True

    return Server(address, Upper)


if __name__ == "__main__":
    server = make_server(("127.0.0.1", 0))
    sys.stderr.write("listening on %s %d\n" % server.server_address)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    server.server_close()
